"""The randomised comparison table: Deng 2017's serum albumin (Table 2 of the trial, 6 months) as the worked
example, its numbers computed by hand in the comments."""

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml
from scipy import stats

from timecourse_meta.core import review
from timecourse_meta.core.review import Arm, Arms
from timecourse_meta.data.dictionary import Outcome
from timecourse_meta.report import between_arm

ROOT = Path(__file__).resolve().parents[1]
ARMS = review.arms(yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8")))  # the shipped review's
OTHER_ARMS = Arms(Arm("drug_a", "Drug A", "Drug A", "treated arm", "n_drug"),
                  Arm("placebo", "placebo", "placebo", "placebo arm", "n_placebo"))

MINUS = "\u2212"
T16 = stats.t.ppf(0.975, 16)  # 12 + 6 patients - 2


def _spec(name, kind="continuous", scale="identity", unit="g/L", label="Serum albumin"):
    return Outcome(name=name, label=label, kind=kind, canonical_unit=unit, direction_of_benefit="increase",
                   analysis_scale=scale, units={})


def _albumin_summary():
    # follow-up means 39 (SD 5, n 12) vs 36 (SD 7, n 6): 3, SE sqrt(25/12 + 49/6) = 3.2016
    # change scores 14 (SD 6) vs 9 (SD 6): 5, SE sqrt(36/12 + 36/6) = 3
    se_f, se_c = math.sqrt(25 / 12 + 49 / 6), 3.0
    rows = [
        dict(quantity="between_arm_difference", study_id="deng2017", visit_months=6.0, median=3.0,
             lower=3 - T16 * se_f, upper=3 + T16 * se_f, estimand="follow-up means", primary=True),
        dict(quantity="between_arm_difference", study_id="deng2017", visit_months=6.0, median=5.0,
             lower=5 - T16 * se_c, upper=5 + T16 * se_c, estimand="change scores", primary=False),
        dict(quantity="study_observed", study_id="deng2017", visit_months=6.0, median=14.0,
             lower=14 - stats.t.ppf(0.975, 11) * 6 / math.sqrt(12), upper=14 + stats.t.ppf(0.975, 11) * 6 / math.sqrt(12)),
        dict(quantity="control_observed", study_id="deng2017", visit_months=6.0, median=9.0,
             lower=9 - stats.t.ppf(0.975, 5) * 6 / math.sqrt(6), upper=9 + stats.t.ppf(0.975, 5) * 6 / math.sqrt(6)),
    ]
    return pd.DataFrame(rows)


def test_albumin_row_shows_both_arms_and_both_estimands_with_the_primary_named():
    table = between_arm.between_arm_table({"serum_albumin": _albumin_summary()},
                                          {"serum_albumin": _spec("serum_albumin")}, {"deng2017": "Deng 2017"},
                                          arms=ARMS)
    assert len(table) == 1
    r = table.iloc[0]
    assert r["Study"] == "Deng 2017" and r["Visit (months)"] == "6"
    # 3 +/- 2.120 x 3.2016 = -3.8 to 9.8; 5 +/- 2.120 x 3 = -1.4 to 11.4
    assert r["Difference at follow-up"] == f"3.0 (95% CI {MINUS}3.8 to 9.8)"
    assert r["Difference in change from baseline"] == f"5.0 (95% CI {MINUS}1.4 to 11.4)"
    assert r["Primary estimand"] == "follow-up means"
    # MSC arm 14 +/- 2.201 x 6/sqrt(12) = 10.2 to 17.8; placebo 9 +/- 2.571 x 6/sqrt(6) = 2.7 to 15.3
    assert r["MSC arm"] == "14.0 (95% CI 10.2 to 17.8)"
    assert r["Control arm"] == "9.0 (95% CI 2.7 to 15.3)"
    (rec,) = between_arm.comparisons(_albumin_summary(), _spec("serum_albumin"), arms=ARMS)
    assert (rec["intervention"], rec["comparator"]) == (r["MSC arm"], r["Control arm"])
    other = between_arm.between_arm_table({"serum_albumin": _albumin_summary()},
                                          {"serum_albumin": _spec("serum_albumin")}, {}, arms=OTHER_ARMS)
    assert list(other.columns)[3:5] == ["Treated arm", "Placebo arm"]
    assert other.iloc[0]["Treated arm"] == r["MSC arm"]


def test_log_scale_outcome_is_shown_as_percent_difference_of_the_mean():
    # proteinuria follow-up means 1.0 (SD 1.0, n 12) vs 3.1 (SD 2.7, n 6): log ratio ln(1/3.1) = -1.1314,
    # SE sqrt(1/12 + (2.7/3.1)^2/6) = 0.4579; ratio 0.323 -> -68%, CI exp(-1.1314 +/- 2.120 x 0.4579) - 1
    lr, se = math.log(1 / 3.1), math.sqrt(1 / 12 + (2.7 / 3.1) ** 2 / 6)
    summary = pd.DataFrame([dict(quantity="between_arm_difference", study_id="deng2017", visit_months=6.0,
                                 median=lr, lower=lr - T16 * se, upper=lr + T16 * se, estimand="follow-up means",
                                 primary=True)])
    spec = _spec("proteinuria_24h", scale="log", unit="g/24 h", label="24-h urine protein")
    r = between_arm.between_arm_table({"proteinuria_24h": summary}, {"proteinuria_24h": spec}, {},
                                      arms=ARMS).iloc[0]
    assert r["Outcome"] == "24-h urine protein (%)"
    assert r["Difference at follow-up"] == f"{MINUS}68% (95% CI {MINUS}88% to {MINUS}15%)"
    assert r["Difference in change from baseline"] == "not reported"
    assert r["MSC arm"] == "not reported"


def test_binary_outcome_shows_events_per_arm_and_the_risk_difference_in_percentage_points():
    # death: 1/12 vs 0/6; a risk difference of 8.3 percentage points (interval as given by the summary)
    summary = pd.DataFrame([dict(quantity="between_arm_difference", study_id="deng2017", visit_months=6.0,
                                 median=1 / 12, lower=-0.31, upper=0.35, estimand="risk difference", primary=True)])
    analysis = pd.DataFrame([
        dict(outcome="death", study_id="deng2017", arm="MSCT", time_months=6.0, events=1, total=12),
        dict(outcome="death", study_id="deng2017", arm="control", time_months=6.0, events=0, total=6)])
    spec = _spec("death", kind="binary", scale="logit", unit="%", label="Death")
    r = between_arm.between_arm_table({"death": summary}, {"death": spec}, {"deng2017": "Deng 2017"},
                                      analysis, arms=ARMS).iloc[0]
    assert r["MSC arm"] == "1/12 (8%)" and r["Control arm"] == "0/6 (0%)"
    # another review's arm ids pick its own rows: events per arm follow `arm`, not a fixed name
    renamed = analysis.assign(arm=["drug_a", "placebo"])
    o = between_arm.between_arm_table({"death": summary}, {"death": spec}, {}, renamed, arms=OTHER_ARMS).iloc[0]
    assert o["Treated arm"] == "1/12 (8%)" and o["Placebo arm"] == "0/6 (0%)"
    assert r["Difference at follow-up"] == f"8 (95% CI {MINUS}31 to 35)"
    assert r["Primary estimand"] == "risk difference"


def test_no_controlled_study_gives_an_empty_table_with_its_columns():
    summary = pd.DataFrame([dict(quantity="delta", study_id=None, visit_months=6.0, median=1.0, lower=0.0,
                                 upper=2.0)])
    out = between_arm.between_arm_table({"serum_albumin": summary}, {"serum_albumin": _spec("serum_albumin")}, {},
                                        arms=ARMS)
    assert out.empty and list(out.columns) == between_arm.columns(arms=ARMS)
    assert list(out.columns) == ["Outcome", "Study", "Visit (months)", "MSC arm", "Control arm",
                                 "Difference at follow-up", "Difference in change from baseline", "Primary estimand"]
