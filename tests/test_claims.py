"""Claims check: one small hand-made table per verdict, plus the real claims file."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import yaml

from timecourse_meta.data import dictionary
from timecourse_meta.report import claims
from timecourse_meta.report import claims_file
from timecourse_meta.report.claims import (CONSISTENT_NO_INTERVAL, CONTRADICTED, NOT_ASSESSABLE, OPPOSITE_NO_INTERVAL,
                                 SUPPORTED)

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))  # the shipped review's set names

DICT = {
    "proteinuria_24h": {"label": "24-h urine protein", "direction_of_benefit": "decrease"},
    "serum_creatinine": {"label": "Serum creatinine", "direction_of_benefit": "decrease"},
    "gfr": {"label": "GFR", "direction_of_benefit": "increase"},
    "anti_dsdna": {"label": "Anti-dsDNA", "direction_of_benefit": "decrease"},
}
SETS = {"review": ["a", "b", "c"]}
LABELS = {"a": "A 2010", "b": "B 2015", "c": "C 2020"}


def claim(**kw):
    base = {"claim_id": "c1", "claim_text": "a claim", "outcome": "proteinuria_24h", "scope": "all_studies",
            "k": "", "visits": "", "visit_rule": "", "expected_direction": "improve", "study_set": "review"}
    base.update(kw)
    return pd.DataFrame([base])


def changes(*rows):
    """rows: (study_id, outcome, time, estimate, lower, upper)."""
    return pd.DataFrame(rows, columns=["study_id", "outcome", "time_months", "estimate", "lower", "upper"])


def run(claims_frame, study_changes, pooled=None, sets=SETS):
    return claims.check_claims(claims_frame, study_changes, pooled, DICT, config=CONFIG, study_sets=sets,
                               labels=LABELS)


def verdicts(result):
    claim_row = result[result["level"] == "claim"].iloc[0]
    per_study = dict(zip(result.loc[result["level"] == "study", "study_id"],
                         result.loc[result["level"] == "study", "verdict"]))
    return claim_row["verdict"], per_study, claim_row["reason"]


# ---------------------------------------------------------------------------------------------- improve, all studies

def test_improve_all_studies_supported():
    sc = changes(("a", "proteinuria_24h", 6, -2.0, -3.0, -1.0), ("b", "proteinuria_24h", 3, -1.0, -1.5, -0.5),
                 ("c", "proteinuria_24h", 12, -0.8, -1.2, -0.1))
    verdict, per_study, reason = verdicts(run(claim(), sc))
    assert verdict == SUPPORTED
    assert per_study == {"a": SUPPORTED, "b": SUPPORTED, "c": SUPPORTED}
    assert "supported in 3 of 3 studies" in reason


def test_improve_all_studies_contradicted_by_a_study_without_improvement():
    sc = changes(("a", "proteinuria_24h", 6, -2.0, -3.0, -1.0), ("b", "proteinuria_24h", 6, -0.2, -0.9, 0.5),
                 ("c", "proteinuria_24h", 6, 0.8, 0.2, 1.4))
    res = run(claim(), sc)
    verdict, per_study, reason = verdicts(res)
    assert verdict == CONTRADICTED
    assert per_study == {"a": SUPPORTED, "b": CONTRADICTED, "c": CONTRADICTED}
    why_b = res.loc[res["study_id"] == "b", "reason"].iloc[0]
    assert "no clear change" in why_b and "no improvement" in why_b
    why_c = res.loc[res["study_id"] == "c", "reason"].iloc[0]
    assert "(worsening)" in why_c
    assert "contradicted in 2 (B 2015, C 2020)" in reason


def test_improve_all_studies_not_assessable_when_a_study_has_no_data_or_no_interval():
    sc = changes(("a", "proteinuria_24h", 6, -2.0, -3.0, -1.0), ("b", "proteinuria_24h", 1, 0.0, np.nan, np.nan))
    res = run(claim(), sc)
    verdict, per_study, reason = verdicts(res)
    assert verdict == NOT_ASSESSABLE
    assert per_study == {"a": SUPPORTED, "b": NOT_ASSESSABLE, "c": NOT_ASSESSABLE}
    assert "no estimate with an interval or a direction" in res.loc[res["study_id"] == "b", "reason"].iloc[0]
    assert "in the data" in res.loc[res["study_id"] == "c", "reason"].iloc[0]
    assert "not assessable in 2 (B 2015, C 2020)" in reason


def test_visit_rule_any_versus_all_and_visit_tolerance():
    sc = changes(("a", "proteinuria_24h", 0.92, -0.2, -0.6, 0.2), ("a", "proteinuria_24h", 6, -2.0, -3.0, -1.0))
    one = {"review": ["a"]}
    assert verdicts(run(claim(visit_rule="any"), sc, sets=one))[0] == SUPPORTED
    assert verdicts(run(claim(visit_rule="all"), sc, sets=one))[0] == CONTRADICTED
    # 0.92 months matches the claimed 1-month visit (tolerance 0.5 months); 9 months has no estimate
    assert verdicts(run(claim(visits="1"), sc, sets=one))[0] == CONTRADICTED
    res = run(claim(visits="6;9"), sc, sets=one)
    assert verdicts(res)[0] == NOT_ASSESSABLE
    assert "9 months" in res.loc[res["level"] == "study", "reason"].iloc[0]
    assert verdicts(run(claim(visits=">3"), sc, sets=one))[0] == SUPPORTED


# ---------------------------------------------------------------------------------------------- worsen, at least k

def test_worsen_at_least_one_study_supported():
    sc = changes(("a", "serum_creatinine", 6, 30, 10, 50), ("a", "serum_creatinine", 9, 40, 5, 75),
                 ("b", "serum_creatinine", 6, -7, -17, 3))
    c = claim(outcome="serum_creatinine", scope="at_least_k_studies", k="1", visits="6;9",
              expected_direction="worsen")
    res = run(c, sc)
    verdict, per_study, _ = verdicts(res)
    assert verdict == SUPPORTED
    # b has no 9-month visit: it cannot be the study the claim speaks of, so it is not assessable, never contradicting
    assert per_study == {"a": SUPPORTED, "b": NOT_ASSESSABLE, "c": NOT_ASSESSABLE}
    assert res.loc[res["study_id"] == "b", "reason"].iloc[0].startswith("no estimate at 9 months in the data")


def test_worsen_at_least_one_study_contradicted_when_no_study_can_reach_k():
    sc = changes(("a", "gfr", 6, 5, 1, 9), ("b", "gfr", 6, 2, -1, 5), ("c", "gfr", 6, 11, 5.5, 16.4),
                 ("c", "gfr", 12, 11, 5.5, 16.4))
    c = claim(outcome="gfr", scope="at_least_k_studies", k="1", visits="6", visit_rule="any",
              expected_direction="worsen")
    verdict, per_study, reason = verdicts(run(c, sc))
    assert verdict == CONTRADICTED
    assert set(per_study.values()) == {CONTRADICTED}
    assert "cannot reach" in reason


def test_worsen_at_least_two_not_assessable_when_the_rest_lack_data():
    sc = changes(("a", "gfr", 6, -5, -9, -1))
    c = claim(outcome="gfr", scope="at_least_k_studies", k="2", expected_direction="worsen", visit_rule="any")
    verdict, per_study, _ = verdicts(run(c, sc))
    assert verdict == NOT_ASSESSABLE
    assert per_study == {"a": SUPPORTED, "b": NOT_ASSESSABLE, "c": NOT_ASSESSABLE}


# ---------------------------------------------------------------------------------------------- inconsistent

def _inconsistent(**kw):
    return claim(outcome="gfr;serum_creatinine", expected_direction="inconsistent", visits=">1", **kw)


def test_inconsistent_supported_only_for_the_same_measure_at_comparable_visits():
    sc = changes(("a", "gfr", 12, 11, 5.5, 16.4), ("b", "gfr", 12.3, 1, -4, 6),
                 ("b", "serum_creatinine", 6, -7, -17, 3),
                 ("c", "gfr", 1, -3, -5, -1))  # c only at 1 month: outside 'after 1 month'
    res = run(_inconsistent(), sc)
    assert list(res["level"]) == ["claim"]  # a claim about the set, not per study
    verdict, _, reason = verdicts(res)
    assert verdict == SUPPORTED
    # the reason names the comparison: which measure, which two studies, which visits
    assert ("GFR: A 2010 11.0 [5.5, 16.4] at 12 months (improvement) vs B 2015 1.00 [\u22124.00, 6.00] at 12.3 months "
            "(no clear change)") in reason


def test_inconsistent_different_measures_or_distant_visits_are_not_a_disagreement():
    # improvement in GFR at 12 months, no clear change in creatinine at 6 months, no clear GFR change at 6 months:
    # nothing is measured twice at comparable visits, so agreement cannot be judged
    sc = changes(("a", "gfr", 12, 11, 5.5, 16.4), ("b", "serum_creatinine", 6, -7, -17, 3),
                 ("c", "gfr", 6, 2, -1, 5))
    verdict, _, reason = verdicts(run(_inconsistent(), sc))
    assert verdict == NOT_ASSESSABLE
    assert "no two studies report the same measure" in reason
    assert "A 2010: GFR at 12 months" in reason and "B 2015: serum creatinine at 6 months" in reason


def test_inconsistent_contradicted_when_all_comparable_studies_agree():
    sc = changes(("a", "gfr", 12, 11, 5.5, 16.4), ("b", "gfr", 12, 8, 2, 14),
                 ("c", "serum_creatinine", 6, 30, 10, 50))  # c has nothing to be compared with
    verdict, _, reason = verdicts(run(_inconsistent(), sc))
    assert verdict == CONTRADICTED
    assert "agree in every comparison" in reason and "(improvement)" in reason


def test_inconsistent_not_assessable_with_fewer_than_two_studies_with_an_interval():
    sc = changes(("a", "gfr", 12, 11, 5.5, 16.4), ("b", "gfr", 12, 3, np.nan, np.nan))
    verdict, _, reason = verdicts(run(_inconsistent(), sc))
    assert verdict == NOT_ASSESSABLE
    assert "no data from C 2020" in reason


# ---------------------------------------------------------------------------------------------- named visits / windows

def _worsen_6_9(**kw):
    return claim(outcome="serum_creatinine", scope="at_least_k_studies", k="1", visits="6;9",
                 expected_direction="worsen", **kw)


def test_rule_all_a_study_without_one_of_the_named_visits_is_never_contradicting():
    # a: no clear change at 6 months but no 9-month visit; b: a fall at 12 months only (another visit)
    sc = changes(("a", "serum_creatinine", 6, -7, -17, 3), ("b", "serum_creatinine", 12, -30, -50, -10))
    res = run(_worsen_6_9(), sc, sets={"review": ["a", "b"]})
    verdict, per_study, reason = verdicts(res)
    assert per_study == {"a": NOT_ASSESSABLE, "b": NOT_ASSESSABLE}
    assert verdict == NOT_ASSESSABLE and "contradicted" not in reason
    why = dict(zip(res["study_id"], res["reason"]))
    assert why["a"].startswith("no estimate at 9 months in the data")
    assert why["b"] == "no estimate at 6 and 9 months in the data (estimates at 12 months)"


def test_rule_all_with_every_named_visit_present_still_contradicts():
    sc = changes(("a", "serum_creatinine", 6, 30, 10, 50), ("a", "serum_creatinine", 9, -1, -9, 7))
    res = run(_worsen_6_9(), sc, sets={"review": ["a"]})
    verdict, per_study, _ = verdicts(res)
    assert per_study == {"a": CONTRADICTED} and verdict == CONTRADICTED
    assert res.loc[res["level"] == "study", "reason"].iloc[0].startswith("no worsening at 9 months")


def test_rule_any_window_is_not_contradicted_by_a_later_visit_alone():
    # a rise of GFR at 12 months does not rule out a fall at another visit after 3 months
    c = claim(outcome="gfr", scope="at_least_k_studies", k="1", visits=">3", visit_rule="any",
              expected_direction="worsen")
    sc = changes(("a", "gfr", 12, 11, 5.5, 16.4))
    res = run(c, sc, sets={"review": ["a"]})
    verdict, per_study, _ = verdicts(res)
    assert per_study == {"a": NOT_ASSESSABLE} and verdict == NOT_ASSESSABLE
    why = res.loc[res["level"] == "study", "reason"].iloc[0]
    assert why.startswith("no worsening at 12 months (the visits after 3 months in the data); one at other visits "
                          "after 3 months is not ruled out")
    # a fall inside the window supports it
    sc2 = changes(("a", "gfr", 6, -9, -14, -4), ("a", "gfr", 12, 11, 5.5, 16.4))
    assert verdicts(run(c, sc2, sets={"review": ["a"]}))[0] == SUPPORTED


# ---------------------------------------------------------------------------------------------- no interval

def test_median_only_fall_is_consistent_in_direction_and_cannot_support_alone():
    # medians 16 -> 6 (a difference of -10, no spread) for a claim that SLEDAI-like scores improve
    sc = changes(("a", "proteinuria_24h", 6, -10, np.nan, np.nan))
    res = run(claim(), sc, sets={"review": ["a"]})
    verdict, per_study, reason = verdicts(res)
    assert per_study == {"a": CONSISTENT_NO_INTERVAL}
    assert verdict == NOT_ASSESSABLE  # never 'supported' on its own
    assert reason == "supported in 0 of 1 studies; consistent in direction without an interval in 1 (A 2010)"
    assert res.loc[res["level"] == "study", "reason"].iloc[0].startswith(
        "moves in the claimed direction, but without an interval")


def test_median_only_rise_is_opposite_in_direction_and_cannot_contradict():
    sc = changes(("a", "proteinuria_24h", 6, -2.0, -3.0, -1.0), ("b", "proteinuria_24h", 6, 0.4, np.nan, np.nan),
                 ("c", "proteinuria_24h", 6, -1.0, -1.5, -0.5))
    verdict, per_study, reason = verdicts(run(claim(), sc))
    assert per_study == {"a": SUPPORTED, "b": OPPOSITE_NO_INTERVAL, "c": SUPPORTED}
    assert verdict == NOT_ASSESSABLE  # neither supported by all nor contradicted
    assert "opposite in direction without an interval in 1 (B 2015)" in reason


def test_no_interval_studies_count_as_possible_at_least_k():
    # k = 2: one study supports, one leans the claimed way without an interval, one contradicts:
    # two could still show it, so 'not assessable' rather than 'contradicted'
    c = claim(outcome="gfr", scope="at_least_k_studies", k="2", visits="6", visit_rule="any",
              expected_direction="worsen")
    sc = changes(("a", "gfr", 6, -5, -9, -1), ("b", "gfr", 6, -3, np.nan, np.nan), ("c", "gfr", 6, 2, -1, 5))
    verdict, per_study, reason = verdicts(run(c, sc))
    assert per_study == {"a": SUPPORTED, "b": CONSISTENT_NO_INTERVAL, "c": CONTRADICTED}
    assert verdict == NOT_ASSESSABLE
    sc_b = changes(("a", "gfr", 6, -5, -9, -1), ("b", "gfr", 6, 3, np.nan, np.nan), ("c", "gfr", 6, 2, -1, 5))
    assert verdicts(run(c, sc_b))[1]["b"] == OPPOSITE_NO_INTERVAL


def test_rule_all_mixed_interval_and_no_interval_visits():
    c = claim(visits="1;6", visit_rule="all")
    one = {"review": ["a"]}
    both = changes(("a", "proteinuria_24h", 1, -1.0, -1.5, -0.5), ("a", "proteinuria_24h", 6, -0.8, np.nan, np.nan))
    assert verdicts(run(c, both, sets=one))[1] == {"a": CONSISTENT_NO_INTERVAL}
    against = changes(("a", "proteinuria_24h", 1, -0.1, -1.5, 1.3), ("a", "proteinuria_24h", 6, -0.8, np.nan,
                                                                              np.nan))
    assert verdicts(run(c, against, sets=one))[1] == {"a": CONTRADICTED}  # an interval against still counts


# ---------------------------------------------------------------------------------------------- reader-facing text

def test_reasons_use_labels_and_plain_words_not_identifiers():
    sc = pd.DataFrame({"study_id": ["gu2014", "gu2014"], "label": ["Gu 2014", "Gu 2014"],
                       "outcome": ["proteinuria_24h"] * 2, "cohort": ["seen_at_1m", "all"],
                       "time_months": [1, 6], "estimate": [-1.2, -10], "lower": [-2.0, np.nan],
                       "upper": [-0.4, np.nan], "unit": ["g/24 h", "as reported"],
                       "basis": ["change score as reported", "medians only, no spread: 16 at baseline, 6 at 6 months"
                                 " (as reported); no interval"]})
    c = pd.concat([claim(), claim(claim_id="c2", visits=">1", expected_direction="inconsistent"),
                   claim(claim_id="c3", scope="pooled")])
    res = claims.check_claims(c, sc, None, DICT, config=CONFIG, study_sets={"review_2023": ["gu2014"]},
                              study_set_override="review_2023")
    text = " ".join(res["reason"])
    for bad in ("gu2014", "seen_at_1m", "review_2023", "proteinuria_24h", "time_months"):
        assert bad not in text, bad
    assert not re.search(r"\[[A-Za-z_]", text)  # no bracketed tags such as [seen_at_1m]
    assert "Gu 2014" in text and "subgroup seen at 1 month" in text
    assert "medians only, no spread: 16 at baseline, 6 at 6 months" in text
    table = claims.claims_table(res, config=CONFIG)
    assert "review_2023" not in " ".join(table["Assessed over"])
    assert table["Assessed over"].iloc[0] == "The reconstructed study set of the 2023 review"
    # another review's name for the set, from its config; a set it does not name reads as its id in words
    other = {"review": {"study_sets": {"review_2023": {"name": "the trials of the first search"}}}}
    assert claims.claims_table(res, config=other)["Assessed over"].iloc[0] == "The trials of the first search"
    assert claims.set_words("later_trials", other) == "later trials"


# ---------------------------------------------------------------------------------------------- decrease then not

def _dtn(k="1"):
    return claim(outcome="anti_dsdna", scope="at_least_k_studies", k=k, visits="1",
                 expected_direction="decrease_then_not")


def test_decrease_then_not_supported():
    sc = changes(("a", "anti_dsdna", 1, -40, -60, -20), ("a", "anti_dsdna", 3, -10, -30, 10),
                 ("a", "anti_dsdna", 6, 5, -15, 25))
    verdict, per_study, _ = verdicts(run(_dtn(), sc))
    assert verdict == SUPPORTED and per_study["a"] == SUPPORTED


def test_decrease_then_not_contradicted_when_the_decrease_persists():
    sc = changes(("a", "anti_dsdna", 1, -40, -60, -20), ("a", "anti_dsdna", 6, -30, -50, -10),
                 ("b", "anti_dsdna", 1, -5, -20, 10), ("b", "anti_dsdna", 6, -1, -20, 18),
                 ("c", "anti_dsdna", 1, -40, -60, -20), ("c", "anti_dsdna", 6, -30, -50, -10))
    res = run(_dtn(), sc)
    verdict, per_study, _ = verdicts(res)
    assert verdict == CONTRADICTED
    assert per_study == {"a": CONTRADICTED, "b": CONTRADICTED, "c": CONTRADICTED}
    assert "persists" in res.loc[res["study_id"] == "a", "reason"].iloc[0]
    assert "no decrease up to 1 month" in res.loc[res["study_id"] == "b", "reason"].iloc[0]


def test_decrease_then_not_not_assessable_without_later_visits():
    sc = changes(("a", "anti_dsdna", 1, -40, -60, -20), ("b", "anti_dsdna", 1, -40, -60, -20))
    res = run(_dtn(k="2"), sc)
    verdict, per_study, _ = verdicts(res)
    assert verdict == NOT_ASSESSABLE
    assert per_study["a"] == NOT_ASSESSABLE
    assert "after 1 month" in res.loc[res["study_id"] == "a", "reason"].iloc[0]


# ---------------------------------------------------------------------------------------------- pooled scope

def test_pooled_scope_each_verdict():
    c = claim(scope="pooled", visits="6")
    pooled = pd.DataFrame({"outcome": ["proteinuria_24h"] * 2, "study_set": ["review", "other"],
                           "time_months": [6, 6], "estimate": [-1.5, 2.0], "lower": [-2.5, 1.0],
                           "upper": [-0.5, 3.0]})
    res = run(c, changes(), pooled)
    assert list(res["level"]) == ["claim"]
    assert verdicts(res)[0] == SUPPORTED
    assert verdicts(run(c, changes(), pooled.assign(upper=[0.4, 3.0])))[0] == CONTRADICTED
    assert verdicts(run(c, changes(), None))[0] == NOT_ASSESSABLE
    assert verdicts(run(claim(scope="pooled", visits="12"), changes(), pooled))[0] == NOT_ASSESSABLE


# ---------------------------------------------------------------------------------------------- the claims table

def test_invalid_claims_are_reported_together():
    bad = pd.concat([claim(scope="some_studies"), claim(claim_id="c2", expected_direction="decrease_then_not",
                                                         visits="1;3", outcome="nonsense")])
    with pytest.raises(claims_file.ClaimsError) as err:
        claims_file.validate_claims(bad, DICT)
    text = str(err.value)
    assert "scope 'some_studies'" in text and "exactly one visit" in text and "nonsense" in text


def test_study_set_without_membership_uses_studies_with_data_and_says_so():
    sc = changes(("a", "proteinuria_24h", 6, -2.0, -3.0, -1.0))
    res = claims.check_claims(claim(), sc, None, DICT, config=CONFIG)
    verdict, per_study, reason = verdicts(res)
    assert verdict == SUPPORTED and per_study == {"a": SUPPORTED}
    assert "membership not given" in reason


def test_real_claims_file_is_valid_and_covers_the_abstract():
    d = dictionary.load(ROOT / "data" / "review" / "outcomes.yaml")
    c = claims_file.load_claims(ROOT / "data" / "review" / "claims_2023.csv", d)
    assert len(c) == 6 and c["claim_id"].is_unique
    assert set(c["expected_direction"]) == {"improve", "worsen", "inconsistent", "decrease_then_not"}
    assert set(c["study_set"]) == {"review_2023"}
    # with no data at all every claim is 'not assessable', never silently supported
    res = claims.check_claims(c, changes(), None, d, config=CONFIG,
                              study_sets={"review_2023": ["gu2014", "deng2017"]})
    assert set(res["verdict"]) == {NOT_ASSESSABLE}
    table = claims.claims_table(res, config=CONFIG)
    assert table["Claim"].str.startswith("\u201c").sum() == 6
