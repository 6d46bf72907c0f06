"""Adapters from model summaries and the analysis table to figure inputs: scale, key visit, pooled rows."""

import math

import numpy as np
import pandas as pd
import pytest

from functools import partial

from timecourse_meta.core.review import Arm, Arms
from timecourse_meta.data.dictionary import Outcome
from timecourse_meta.report import figure_data

ARMS = Arms(Arm("MSCT", "MSC transplantation", "MSCT", "MSC arm", "n_msct"),
            Arm("control", "control", "control", "control arm", "n_control"))  # as in the shipped config.yaml
study_changes = partial(figure_data.study_changes, arms=ARMS)


def spec(scale="identity"):
    return Outcome(name="x", label="X", kind="continuous", canonical_unit="g/24 h", units={"g/24 h": 1.0},
                   direction_of_benefit="decrease", analysis_scale=scale)


def summary(status="pooled"):
    rows = []
    for t, (m, lo, hi), (plo, phi) in ((1.0, (-0.2, -0.4, 0.0), (-0.8, 0.4)), (6.0, (-0.5, -0.9, -0.1), (-1.2, 0.2))):
        rows.append(dict(status=status, quantity="delta", visit_months=t, median=m, lower=lo, upper=hi,
                         p_improvement=0.9, n_studies=2, n_patients=30, label="pooled"))
        rows.append(dict(status=status, quantity="prediction", visit_months=t, median=m, lower=plo, upper=phi,
                         p_improvement=0.8, n_studies=2, n_patients=30, label="pooled"))
    rows.append(dict(status=status, quantity="tau", visit_months=np.nan, median=0.3, lower=0.1, upper=0.7,
                     p_improvement=np.nan, n_studies=2, n_patients=30, label="pooled"))
    return pd.DataFrame(rows)


def analysis_rows():
    base = dict(arm="MSCT", outcome="x", kind="continuous", poolable=True, cohort="all", unit="g/24 h",
                origin="derived", assumption="", method="change_sd_from_r")
    return pd.DataFrame([
        {**base, "analysis_id": "h1", "study_id": "a", "measure": "absolute", "time_months": 0.0, "n": 10,
         "mean": 2.0, "sd": 1.0, "origin": "reported"},
        {**base, "analysis_id": "h2", "study_id": "a", "measure": "absolute", "time_months": 6.0, "n": 10,
         "mean": 1.0, "sd": 1.0, "origin": "reported"},
        {**base, "analysis_id": "h3", "study_id": "a", "measure": "change_from_baseline", "time_months": 6.0,
         "n": 10, "mean": -1.0, "sd": 1.0},
        {**base, "analysis_id": "h4", "study_id": "b", "measure": "change_from_baseline", "time_months": 5.54,
         "n": 20, "mean": -0.5, "sd": 2.0, "origin": "reported"},
        {**base, "analysis_id": "h5", "study_id": "b", "measure": "absolute", "time_months": 5.54, "n": 20,
         "mean": 1.5, "sd": 1.0, "origin": "reported"},
        {**base, "analysis_id": "h6", "study_id": "c", "measure": "change_from_baseline", "time_months": 1.0,
         "n": 8, "mean": -0.2, "sd": 0.5},
    ])


def test_pooled_curve_starts_at_zero_and_converts_log_to_percent():
    identity = figure_data.pooled_curve(summary(), spec())
    assert list(identity["time_months"]) == [0.0, 1.0, 6.0]
    assert identity.loc[2, "estimate"] == -0.5 and identity.loc[2, "pi_lower"] == -1.2
    log = figure_data.pooled_curve(summary(), spec("log"))
    assert log.loc[2, "estimate"] == pytest.approx(100 * (math.exp(-0.5) - 1))


def test_no_pooled_curve_without_a_pooled_model():
    assert figure_data.pooled_curve(summary("single_study"), spec()).empty


def test_study_changes_on_log_scale_are_percent_of_baseline():
    changes = study_changes(analysis_rows(), ["a", "b", "c"], spec("log"), {})
    a = changes[changes["study_id"] == "a"].iloc[0]
    assert a["estimate"] == pytest.approx(-50.0)  # -1 / 2 baseline
    b = changes[changes["study_id"] == "b"].iloc[0]
    assert b["estimate"] == pytest.approx(-0.5 / 2.0 * 100)  # baseline = follow-up 1.5 - change -0.5 = 2.0
    assert "c" not in set(changes["study_id"])  # no baseline or follow-up mean: cannot be put in percent


def test_key_visit_is_the_grid_visit_with_most_studies():
    changes = study_changes(analysis_rows(), ["a", "b", "c"], spec(), {})
    assert figure_data.key_visit(summary(), changes, [0, 1, 3, 6, 9, 12]) == 6.0  # a at 6, b at 5.54
    rows = figure_data.at_visit(changes, 6.0)
    assert list(rows["study_id"]) == ["a", "b"]


def test_finding_uses_pooled_numbers_only_with_two_studies():
    changes = study_changes(analysis_rows(), ["a", "b", "c"], spec(), {})
    row = figure_data.finding(summary(), changes, spec(), 6.0)
    assert row["n_studies"] == 2 and row["estimate"] == -0.5 and row["p_improvement"] == 0.9
    single = figure_data.finding(summary(), changes, spec(), 1.0)
    assert single["n_studies"] == 1 and single["estimate"] == -0.2 and math.isnan(single["pi_lower"])


def test_forest_visits_are_grid_visits_with_data_plus_off_grid_times():
    changes = pd.DataFrame({"study_id": ["a", "a", "b", "b", "c"],
                            "time_months": [0.92, 6.0, 5.54, 24.0, 12.0]})
    # 0.92 and 5.54 fall within 0.5 months of 1 and 6; 24 is near no grid visit and gets its own plot;
    # 3 and 9 have no study
    assert figure_data.forest_visits(changes, [0, 1, 3, 6, 9, 12]) == [1.0, 6.0, 12.0, 24.0]
    assert figure_data.forest_visits(changes.iloc[0:0], [0, 1, 3]) == []


def test_log_scale_study_changes_use_the_models_ratio_of_means_when_given():
    own = pd.DataFrame([dict(status="pooled", quantity="study_observed", study_id="a", visit_months=6.0,
                             median=math.log(0.3), lower=math.log(0.1), upper=math.log(0.9), p_improvement=0.99,
                             n_studies=1, n_patients=10, label="study's own estimate")])
    changes = study_changes(analysis_rows(), ["a", "b", "c"], spec("log"), {},
                                        pd.concat([summary(), own], ignore_index=True))
    a = changes[changes["study_id"] == "a"].iloc[0]
    # exp(log 0.3) - 1 = -70%, CI exp(log 0.1) - 1 = -90% to exp(log 0.9) - 1 = -10%: never below -100%
    assert (a["estimate"], a["lower"], a["upper"]) == pytest.approx((-70.0, -90.0, -10.0))
    assert "ratio of means" in a["basis"]
    b = changes[changes["study_id"] == "b"].iloc[0]   # not in the summary: percent of baseline as before
    assert b["estimate"] == pytest.approx(-25.0)


def delta_rows(spec_rows):
    """Summary delta rows from (visit, n_studies, n_patients)."""
    return pd.DataFrame([dict(status="pooled", quantity="delta", visit_months=t, median=-0.3, lower=-0.6,
                              upper=0.0, p_improvement=0.9, n_studies=k, n_patients=n, n_studies_model=4,
                              n_patients_model=56, evidence="pooled" if k >= 2 else "interpolated",
                              label=f"label {t}") for t, k, n in spec_rows])


def test_key_visit_rule_most_studies_then_most_patients_ties_later():
    empty = pd.DataFrame(columns=["study_id", "time_months", "n"])
    # most studies at a visit (a pooled estimate) wins, even over a later visit with one large study
    assert figure_data.key_visit(delta_rows([(1, 2, 20), (3, 3, 30), (6, 1, 80), (12, 2, 40)]), empty, []) == 3.0
    # ties in the number of studies: the later visit
    assert figure_data.key_visit(delta_rows([(1, 2, 20), (6, 1, 80), (12, 2, 15)]), empty, []) == 12.0
    # no visit with >= 2 studies: the most patients, ties later; visits without a study never count
    assert figure_data.key_visit(delta_rows([(1, 1, 30), (6, 1, 12), (9, 0, 0)]), empty, []) == 1.0
    assert figure_data.key_visit(delta_rows([(1, 1, 12), (6, 1, 12), (9, 0, 0)]), empty, []) == 6.0
    assert figure_data.key_visit(delta_rows([]), empty, [0, 1]) is None


def test_pooled_rows_and_findings_carry_the_evidence_and_its_label():
    changes = study_changes(analysis_rows(), ["a", "b", "c"], spec(), {})
    summ = summary()
    summ["evidence"], summ["label"] = "pooled", "pooled at 6 months from 2 studies (30 patients)"
    summ["n_studies_model"], summ["n_patients_model"] = 3, 38
    curve = figure_data.pooled_curve(summ, spec())
    p = figure_data.pooled_at(curve, 6.0)
    assert p["evidence"] == "pooled" and p["label"].startswith("pooled at 6 months")
    assert p["n_studies_model"] == 3 and p["n_patients_model"] == 38
    row = figure_data.finding(summ, changes, spec(), 6.0)
    assert row["evidence"] == "pooled" and row["label"] == "pooled at 6 months from 2 studies (30 patients)"
    single = figure_data.finding(summ, changes, spec(), 1.0)
    assert single["evidence"] == "study_estimate" and single["label"] == "study's own estimate (c, 8 patients)"


def test_study_changes_are_the_intervention_arm_of_the_review_and_control_rows_named_by_it():
    other = Arms(Arm("drug_a", "Drug A", "Drug A", "Drug A arm", "n_drug"),
                 Arm("placebo", "placebo", "placebo", "placebo arm", "n_placebo"))
    rows = analysis_rows()
    renamed = rows.assign(arm=rows["arm"].replace({"MSCT": "drug_a"}))
    mine = figure_data.study_changes(renamed, ["a", "b", "c"], spec(), {}, arms=other)
    assert mine[["study_id", "time_months", "estimate"]].equals(
        study_changes(rows, ["a", "b", "c"], spec(), {})[["study_id", "time_months", "estimate"]])
    assert figure_data.study_changes(renamed, ["a", "b", "c"], spec(), {}, arms=ARMS).empty
    forest_rows = pd.DataFrame([dict(study_id="a", label="A 2001", time_months=6.0, estimate=-1.0)])
    controls = pd.DataFrame([dict(study_id="a", label="A 2001", time_months=6.0, n=5.0, estimate=-0.2,
                                  lower=-0.5, upper=0.1, control=True)])
    out = figure_data.with_control_rows(forest_rows, controls, 6.0, arms=other)
    assert list(out["label"]) == ["A 2001", "A 2001, placebo arm"] and list(out["control"]) == [False, True]
