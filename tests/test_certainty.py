"""GRADE certainty: each rule downgrades on a constructed case and not on its opposite; ratings follow from the
counts."""

from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

from timecourse_meta.core.config import load_schema
from timecourse_meta.data import dictionary
from timecourse_meta.data.dictionary import Outcome
from timecourse_meta.report import certainty as c

SCORE_MID = {"value": 4, "scale": "absolute", "rationale": "a published response threshold"}
PCT_MID = {"value": 50, "scale": "percent", "rationale": "a published response threshold"}


def _spec(mid=None, scale="identity", direction="decrease", kind="continuous", name="score_a"):
    return Outcome(name=name, label="Score A", kind=kind, canonical_unit="score", units={},
                   direction_of_benefit=direction, analysis_scale=scale, important_difference=mid)


def _ev(lower, upper, *, n=(500,), evidence="study_estimate", design=c.BEFORE_AFTER, estimate=None, pi=(None, None),
        percent=False, secondary=()):
    cs = tuple(c.Contribution(f"s{i}", f"Study {i}", float(k), secondary=i in secondary) for i, k in enumerate(n))
    est = (lower + upper) / 2 if estimate is None else estimate
    nan = float("nan")
    return c.Evidence(design=design, evidence=evidence, estimate=est, lower=lower, upper=upper, contributions=cs,
                      pi_lower=nan if pi[0] is None else pi[0], pi_upper=nan if pi[1] is None else pi[1],
                      percent=percent)


CFG = c.settings()


# ------------------------------------------------------------------------------------------ starting level

def test_randomised_difference_starts_high_and_before_after_low():
    precise = dict(n=(500,))
    rct = c.rate(_ev(-9, -6, design=c.RANDOMISED, **precise), _spec(SCORE_MID), risks={"s0": "low"})
    before_after = c.rate(_ev(-9, -6, **precise), _spec(SCORE_MID), risks={"s0": "low"})
    assert (rct.start, rct.level) == ("high", "high")
    assert (before_after.start, before_after.level) == ("low", "low")
    assert c.design_of("rct") == c.RANDOMISED and c.design_of("cohort") == c.NON_RANDOMISED
    moved = c.rate(_ev(-9, -6, **precise), _spec(SCORE_MID), risks={"s0": "low"},
                   certainty={"starting_level": {"before_after": "moderate"}})
    assert moved.level == "moderate"


# ------------------------------------------------------------------------------------------ risk of bias

@pytest.mark.parametrize("concerns, risk", [(["low", "high", "low"], "high"),
                                            (["unclear", "unclear", "low"], "unclear"), (["unclear", "low"], "low"),
                                            (["none", "low"], "low"), (["none"], "unclear")])
def test_study_risk_from_item_concerns(concerns, risk):
    assert c.study_risk(concerns, CFG["risk_of_bias"]) == risk


def test_study_risks_read_the_vocabulary_concern_and_skip_ignored_items():
    vocab = SimpleNamespace(judgements={"yes": SimpleNamespace(concern="low"), "no": SimpleNamespace(concern="high"),
                                        "unclear": SimpleNamespace(concern="unclear")})
    sheet = pd.DataFrame({"study_id": ["a", "a", "b", "b"], "item_id": ["i1", "design_item", "i1", "i2"],
                          "judgement": ["yes", "no", "unclear", "unclear"]})
    assert c.study_risks(sheet, vocab, CFG["risk_of_bias"]) == {"a": "high", "b": "unclear"}
    cfg = {**CFG["risk_of_bias"], "ignore_items": ["design_item"]}
    assert c.study_risks(sheet, vocab, cfg)["a"] == "low"
    with pytest.raises(c.CertaintyError, match="study 'a', item 'i1': judgement 'maybe'"):
        c.study_risks(sheet.assign(judgement="maybe"), vocab, CFG["risk_of_bias"])


def test_risk_of_bias_high_downgrades_twice_low_not_at_all():
    ev = _ev(-9, -6, n=(300, 200))
    both = c.risk_of_bias(ev, {"s0": "high", "s1": "high"}, CFG["risk_of_bias"])
    assert both.downgrade == 2 and both.reason.startswith("all patients come from studies at high risk of bias: "
                                                          "Study 0, Study 1 (an appraisal item of high concern)")
    assert c.risk_of_bias(ev, {"s0": "low", "s1": "low"}, CFG["risk_of_bias"]).downgrade == 0
    # most patients (60%) in a study at high risk, the rest at low risk: once
    mixed = c.risk_of_bias(ev, {"s0": "high", "s1": "low"}, CFG["risk_of_bias"])
    assert mixed.downgrade == 1 and mixed.reason.startswith("60% of the patients")
    assert "Study 0 (an appraisal item of high concern)" in mixed.reason
    # the study at high risk holds the minority: no downgrade
    assert c.risk_of_bias(ev, {"s0": "low", "s1": "high"}, CFG["risk_of_bias"]).downgrade == 0
    # a study without appraisal counts as unclear
    unappraised = c.risk_of_bias(ev, {"s1": "low"}, CFG["risk_of_bias"])
    assert unappraised.downgrade == 1 and "Study 0 (not appraised)" in unappraised.reason


# ------------------------------------------------------------------------------------------ inconsistency

def test_inconsistency_prediction_interval_against_credible_interval():
    pooled = dict(n=(20, 20), evidence="pooled")
    spec = _spec()
    assert c.inconsistency(_ev(-10, -5, pi=(-14, 2), **pooled), spec, CFG["inconsistency"]).downgrade == 1
    assert c.inconsistency(_ev(-10, -5, pi=(-12, -3), **pooled), spec, CFG["inconsistency"]).downgrade == 0
    # with an important difference of 4 points: a PI from an important benefit to an important harm is very
    # serious; one that reaches no change but no important benefit is not downgraded
    mid = _spec(SCORE_MID)
    assert c.inconsistency(_ev(-10, -5, pi=(-14, 5), **pooled), mid, CFG["inconsistency"]).downgrade == 2
    assert c.inconsistency(_ev(-10, -5, pi=(-14, 2), **pooled), mid, CFG["inconsistency"]).downgrade == 1
    assert c.inconsistency(_ev(-3, -1, pi=(-3.5, 0.5), **pooled), mid, CFG["inconsistency"]).downgrade == 0


def test_inconsistency_of_a_single_study_is_not_assessable():
    d = c.inconsistency(_ev(-10, -5, pi=(-30, 30)), _spec(), CFG["inconsistency"])
    assert (d.downgrade, d.assessed, d.reason) == (0, False, "a single study")


# ------------------------------------------------------------------------------------------ imprecision

@pytest.mark.parametrize("lower, upper, n, mid, level", [
    (-3, 1, 500, None, 1),       # includes no change
    (-3, -1, 500, None, 0),      # excludes it, enough patients
    (-3, -1, 100, None, 1),      # excludes it, too few patients
    (-3, 1, 100, None, 2),       # both
    (-6, -2, 500, SCORE_MID, 1),  # crosses the important benefit
    (-9, -5, 500, SCORE_MID, 0),  # all important
    (-1, 2, 500, SCORE_MID, 0),   # all unimportant: precisely no important effect
    (-6, 5, 500, SCORE_MID, 2),   # important benefit and important harm
    (-6, -2, 100, SCORE_MID, 2),  # crosses one threshold and too few patients
])
def test_imprecision(lower, upper, n, mid, level):
    assert c.imprecision(_ev(lower, upper, n=(n,)), _spec(mid), CFG["imprecision"]).downgrade == level


def test_imprecision_against_a_percent_difference_on_the_ratio_scale():
    spec = _spec(PCT_MID, scale="log")
    cfg = CFG["imprecision"]
    assert c.imprecision(_ev(-60, -55, percent=True), spec, cfg).downgrade == 0
    assert c.imprecision(_ev(-60, -20, percent=True), spec, cfg).downgrade == 1
    # a 50% fall is a halving; its mirror harm is a doubling (+100%), not +50%
    assert c.imprecision(_ev(-60, 80, percent=True), spec, cfg).downgrade == 1
    assert c.imprecision(_ev(-60, 120, percent=True), spec, cfg).downgrade == 2
    with pytest.raises(c.CertaintyError, match="scale = 'percent'"):
        c.imprecision(_ev(-6, -2), spec, cfg)


def test_prior_dominated_estimate_is_downgraded_twice_for_imprecision():
    assert c.imprecision(_ev(-9, -6, evidence="prior_dominated"), _spec(), CFG["imprecision"]).downgrade == 2


# ------------------------------------------------------------------------------------------ indirectness

def test_indirectness_from_marked_studies_and_secondary_sources():
    ev = _ev(-9, -6, n=(70, 30))
    marked = {**CFG["indirectness"], "studies": {"s0": "a wider population"}}
    d = c.indirectness(ev, marked)
    assert d.downgrade == 1
    assert d.reason == "70% of the patients come from indirect evidence (Study 0: a wider population)"
    assert c.indirectness(ev, {**CFG["indirectness"], "studies": {"s1": "a wider population"}}).downgrade == 0
    nothing = c.indirectness(ev, CFG["indirectness"])
    assert nothing.downgrade == 0 and "marks no study" in nothing.reason
    pattern = {**CFG["indirectness"], "secondary_source_pattern": "secondary source"}
    assert c.indirectness(_ev(-9, -6, n=(70, 30), secondary=(0,)), pattern).downgrade == 1
    assert c.indirectness(_ev(-9, -6, n=(70, 30), secondary=(1,)), pattern).downgrade == 0
    assert c.secondary(["https://x.org#Table 1 (secondary source)"], "secondary source")
    assert not c.secondary(["https://x.org#abstract"], "secondary source") and not c.secondary(["x"], None)


# ------------------------------------------------------------------------------------------ publication bias

def test_publication_bias_not_assessable_below_ten_studies_and_downgraded_when_suspected():
    few = c.publication_bias(_ev(-9, -6, n=(10,) * 3), _spec(), CFG["publication_bias"])
    assert (few.downgrade, few.assessed) == (0, False)
    many = c.publication_bias(_ev(-9, -6, n=(10,) * 12), _spec(), CFG["publication_bias"])
    assert (many.downgrade, many.assessed) == (0, True)
    cfg = {**CFG["publication_bias"], "suspected": {"score_a": "only positive abstracts were found"}}
    assert c.publication_bias(_ev(-9, -6, n=(10,) * 12), _spec(), cfg).downgrade == 1


# ------------------------------------------------------------------------------------------ worked cases

def test_worked_before_after_case_low_then_imprecise_is_very_low():
    """Before-after starts low (2); one study of 81 patients at low risk, interval excluding no change:
    imprecision once (81 < 400) -> 2 + 1 = 3 = very low."""
    r = c.rate(_ev(-9, -6, n=(81,)), _spec(), risks={"s0": "low"})
    assert [d.downgrade for d in r.domains] == [0, 0, 0, 1, 0]
    assert r.level == "very low"
    assert r.notes()[0].startswith("Started at low certainty")
    assert ("Downgraded once for imprecision: 81 patients are fewer than the optimal information size of 400."
            in r.notes())


def test_worked_randomised_case():
    """An RCT of 18 patients with most appraisal items unclear: high (0), risk of bias once, interval crossing
    no change and too few patients: imprecision twice -> 0 + 1 + 2 = 3 = very low; the same trial with 500
    patients and a precise interval: moderate."""
    small = c.rate(_ev(-4, 2, n=(18,), design=c.RANDOMISED), _spec(), risks={"s0": "unclear"})
    assert [d.downgrade for d in small.domains] == [1, 0, 0, 2, 0] and small.level == "very low"
    large = c.rate(_ev(-9, -6, n=(500,), design=c.RANDOMISED), _spec(), risks={"s0": "unclear"})
    assert large.level == "moderate"


# ------------------------------------------------------------------------------------------ footnotes

def test_footnotes_share_letters_and_follow_first_use():
    a = c.rate(_ev(-9, -6, n=(81,)), _spec(), risks={"s0": "low"})
    b = c.rate(_ev(-9, -6, n=(500,), design=c.RANDOMISED), _spec(), risks={"s0": "low"})
    cells, lines = c.footnotes([a, None, b])
    assert cells == ["Very low (a, b, c, d)", "\u2014", "High (b, d)"]
    assert lines[0] == ("a. Started at low certainty: a change from baseline in the treated arm without a "
                        "comparator (before-after evidence, observational).")
    assert lines[3] == "d. Publication bias not assessable: fewer than 10 studies; not downgraded."
    assert [c._letter(i) for i in (0, 25, 26, 27)] == ["a", "z", "aa", "ab"]


# ------------------------------------------------------------------------------------------ settings

def _keys(schema, path=""):
    for name, sub in schema.get("properties", {}).items():
        yield f"{path}{name}", sub
        yield from _keys(sub, f"{path}{name}.")


def test_every_certainty_key_has_a_description_and_a_default():
    section = load_schema()["properties"]["certainty"]
    missing = [k for k, sub in _keys(section) if "description" not in sub or "default" not in sub]
    assert missing == []


def test_settings_fill_nested_defaults():
    cfg = c.settings({"imprecision": {"min_patients": {"continuous": 100}}})
    assert cfg["imprecision"]["min_patients"] == {"continuous": 100, "binary": 400}
    assert cfg["risk_of_bias"]["serious_share"] == 0.5


def test_dictionary_checks_the_scale_of_the_important_difference(tmp_path):
    entry = {"label": "Score A", "kind": "continuous", "canonical_unit": "score", "units": {"score": 1},
             "direction_of_benefit": "decrease", "analysis_scale": "identity",
             "important_difference": {"value": 4, "scale": "percent", "rationale": "a source"}}
    path = tmp_path / "outcomes.yaml"
    path.write_text(yaml.safe_dump({"outcomes": {"score_a": entry}}), encoding="utf-8")
    with pytest.raises(dictionary.DictionaryError, match="outcome 'score_a': key 'important_difference.scale' = "
                                                         "'percent': expected absolute"):
        dictionary.load(path)
    entry["important_difference"]["scale"] = "absolute"
    path.write_text(yaml.safe_dump({"outcomes": {"score_a": entry}}), encoding="utf-8")
    assert dictionary.load(path)["score_a"].important_difference["value"] == 4
    del entry["important_difference"]["rationale"]
    path.write_text(yaml.safe_dump({"outcomes": {"score_a": entry}}), encoding="utf-8")
    with pytest.raises(dictionary.DictionaryError, match="rationale"):
        dictionary.load(path)


def test_an_estimate_without_a_study_at_the_visit_is_imprecise():
    ev = c.Evidence(design=c.BEFORE_AFTER, evidence="interpolated", estimate=-7, lower=-9, upper=-5,
                    contributions=())
    d = c.imprecision(ev, _spec(), CFG["imprecision"])
    assert (d.downgrade, d.reason) == (1, "no study reports at this visit")
    assert c.risk_of_bias(ev, {}, CFG["risk_of_bias"]).assessed is False
