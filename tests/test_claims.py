"""Claims check: one small hand-made table per verdict, plus the real claims file."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from msct_review import claims, dictionary
from msct_review.claims import CONTRADICTED, NOT_ASSESSABLE, SUPPORTED

ROOT = Path(__file__).resolve().parents[1]

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
    return claims.check_claims(claims_frame, study_changes, pooled, DICT, study_sets=sets, labels=LABELS)


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
    sc = changes(("a", "proteinuria_24h", 6, -2.0, -3.0, -1.0), ("b", "proteinuria_24h", 1, -780, np.nan, np.nan))
    res = run(claim(), sc)
    verdict, per_study, reason = verdicts(res)
    assert verdict == NOT_ASSESSABLE
    assert per_study == {"a": SUPPORTED, "b": NOT_ASSESSABLE, "c": NOT_ASSESSABLE}
    assert "no estimate with an interval" in res.loc[res["study_id"] == "b", "reason"].iloc[0]
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
    verdict, per_study, _ = verdicts(run(c, sc))
    assert verdict == SUPPORTED
    assert per_study == {"a": SUPPORTED, "b": CONTRADICTED, "c": NOT_ASSESSABLE}


def test_worsen_at_least_one_study_contradicted_when_no_study_can_reach_k():
    sc = changes(("a", "gfr", 6, 5, 1, 9), ("b", "gfr", 6, 2, -1, 5), ("c", "gfr", 12, 11, 5.5, 16.4))
    c = claim(outcome="gfr", scope="at_least_k_studies", k="1", visits=">3", visit_rule="any",
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


def test_inconsistent_supported_when_studies_disagree():
    sc = changes(("a", "gfr", 12, 11, 5.5, 16.4), ("b", "serum_creatinine", 6, -7, -17, 3),
                 ("c", "gfr", 1, -3, -5, -1))  # c only at 1 month: outside 'after 1 month'
    res = run(_inconsistent(), sc)
    assert list(res["level"]) == ["claim"]  # a claim about the set, not per study
    verdict, _, reason = verdicts(res)
    assert verdict == SUPPORTED
    assert "A 2010: GFR 11.0 [5.5, 16.4] at 12 months (improvement)" in reason
    assert "C 2020: no estimate at the claimed visits" in reason


def test_inconsistent_contradicted_when_all_studies_agree():
    sc = changes(("a", "gfr", 12, 11, 5.5, 16.4), ("b", "serum_creatinine", 6, -30, -50, -10))
    verdict, _, reason = verdicts(run(_inconsistent(), sc))
    assert verdict == CONTRADICTED
    assert "agree (improvement)" in reason


def test_inconsistent_not_assessable_with_fewer_than_two_studies():
    sc = changes(("a", "gfr", 12, 11, 5.5, 16.4), ("b", "gfr", 6, 3, np.nan, np.nan))
    verdict, _, reason = verdicts(run(_inconsistent(), sc))
    assert verdict == NOT_ASSESSABLE
    assert "fewer than two studies" in reason


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
    with pytest.raises(claims.ClaimsError) as err:
        claims.validate_claims(bad, DICT)
    text = str(err.value)
    assert "scope 'some_studies'" in text and "exactly one visit" in text and "nonsense" in text


def test_study_set_without_membership_uses_studies_with_data_and_says_so():
    sc = changes(("a", "proteinuria_24h", 6, -2.0, -3.0, -1.0))
    res = claims.check_claims(claim(), sc, None, DICT)
    verdict, per_study, reason = verdicts(res)
    assert verdict == SUPPORTED and per_study == {"a": SUPPORTED}
    assert "membership not given" in reason


def test_real_claims_file_is_valid_and_covers_the_abstract():
    d = dictionary.load()
    c = claims.load_claims(ROOT / "data" / "claims" / "review_2023_claims.csv", d)
    assert len(c) == 6 and c["claim_id"].is_unique
    assert set(c["expected_direction"]) == {"improve", "worsen", "inconsistent", "decrease_then_not"}
    assert set(c["study_set"]) == {"review_2023"}
    # with no data at all every claim is 'not assessable', never silently supported
    res = claims.check_claims(c, changes(), None, d, study_sets={"review_2023": ["gu2014", "deng2017"]})
    assert set(res["verdict"]) == {NOT_ASSESSABLE}
    table = claims.claims_table(res)
    assert table["Claim"].str.startswith("\u201c").sum() == 6
