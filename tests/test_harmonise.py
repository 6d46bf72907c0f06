"""Harmonisation: canonical units, statistics to mean/SD, missing-n rule, change scores, provenance."""

import math

import pandas as pd
import pytest

from conftest import FIXTURE_REVIEW, read_fixture, review_config
from timecourse_meta.core import review
from timecourse_meta.data import harmonise
from timecourse_meta.data import sheets as sheets_mod
from timecourse_meta.data import validation

ARMS = review.arms(review_config())


@pytest.fixture
def table(fixture_dictionary, sheet_dir):
    tables = validation.validate(sheets_mod.read_sheets(sheet_dir), fixture_dictionary, review_config())
    return harmonise.harmonise(tables["outcomes"], tables["studies"], fixture_dictionary, correlation=0.5, arms=ARMS)


def row(table, raw_id, origin="reported"):
    hit = table[(table["raw_row_ids"] == raw_id) & (table["origin"] == origin)]
    assert len(hit) == 1, hit
    return hit.iloc[0]


def test_units_are_converted_to_canonical(table):
    base = row(table, "alpha2020-001")
    assert base["unit"] == "g/24 h"
    assert base["mean"] == pytest.approx(2.5) and base["sd"] == pytest.approx(1.3)
    assert "mg/24 h x 0.001" in base["method"]


def test_weeks_become_months(table):
    assert row(table, "alpha2020-004")["time_months"] == pytest.approx(6.0)  # 26 weeks x 12/52


def test_ci_and_se_become_sd(table):
    ci = row(table, "beta2021-001")
    # Cochrane Handbook 6.5.2.2: SD = sqrt(n) (upper - lower) / (2 t_{0.975, n-1}); t_{0.975,11} = 2.200985
    assert ci["sd"] == pytest.approx(math.sqrt(12) * 2.2 / (2 * 2.200985), rel=1e-6)
    assert ci["method"] == "sd_from_ci_t"
    se = row(table, "beta2021-002")
    assert se["sd"] == pytest.approx(0.45 * math.sqrt(6)) and se["method"] == "sd_from_se"


def test_median_iqr_uses_luo_and_wan(table):
    r = row(table, "alpha2020-003")
    # symmetric IQR: Luo's mean is the median; Wan's SD = IQR / eta(20); qnorm(14.875/20.25) = 0.6266874 (R)
    assert r["mean"] == pytest.approx(14.0)
    assert r["sd"] == pytest.approx(8 / (2 * 0.6266874), rel=1e-6)
    assert r["method"].startswith("luo2018_mean+wan2014_sd")


def test_median_only_is_listed_not_pooled(table):
    r = row(table, "beta2021-003")
    assert not r["poolable"]
    assert r["median"] == 6
    assert "median reported without any spread" in r["not_poolable_reason"]
    assert "raw row marked not usable" in r["not_poolable_reason"]


def test_binary_counts_are_kept(table):
    r = row(table, "alpha2020-005")
    assert (r["events"], r["total"], bool(r["poolable"])) == (9, 20, True)


def test_change_score_from_baseline_and_followup(table):
    change = row(table, "alpha2020-001;alpha2020-002", origin="derived")
    assert change["measure"] == "change_from_baseline"
    assert change["mean"] == pytest.approx(0.9 - 2.5)
    # sqrt(1.3^2 + 0.8^2 - 2 * 0.5 * 1.3 * 0.8)
    assert change["sd"] == pytest.approx(math.sqrt(1.69 + 0.64 - 1.04))
    assert change["n"] == 18  # patients seen at both visits: at most the smaller n
    assert "r = 0.5" in change["assumption"]


def test_correlation_changes_only_the_change_sd(fixture_dictionary, sheet_dir):
    tables = validation.validate(sheets_mod.read_sheets(sheet_dir), fixture_dictionary, review_config())
    low = harmonise.harmonise(tables["outcomes"], tables["studies"], fixture_dictionary, correlation=0.2, arms=ARMS)
    high = harmonise.harmonise(tables["outcomes"], tables["studies"], fixture_dictionary, correlation=0.8, arms=ARMS)
    derived = low["origin"] == "derived"
    assert (low.loc[derived, "sd"] > high.loc[derived, "sd"]).all()
    pd.testing.assert_frame_equal(low[~derived], high[~derived])


def test_missing_n_uses_cohort_baseline_then_arm_size(fixture_dictionary, sheet_dir):
    frame = read_fixture("outcomes")
    frame.loc[1, "n"] = ""  # follow-up n missing; the cohort baseline reports 20
    frame.loc[0, "n"] = ""  # and the baseline too: falls back to the arm's enrolled n (studies sheet: 20)
    frame.to_csv(sheet_dir / "outcomes.csv", index=False)
    tables = validation.validate(sheets_mod.read_sheets(sheet_dir), fixture_dictionary, review_config())
    table = harmonise.harmonise(tables["outcomes"], tables["studies"], fixture_dictionary, correlation=0.5, arms=ARMS)
    follow = row(table, "alpha2020-002")
    assert follow["n"] == 20 and "enrolled in the arm" in follow["assumption"]
    frame.loc[0, "n"] = "17"
    frame.to_csv(sheet_dir / "outcomes.csv", index=False)
    tables = validation.validate(sheets_mod.read_sheets(sheet_dir), fixture_dictionary, review_config())
    table = harmonise.harmonise(tables["outcomes"], tables["studies"], fixture_dictionary, correlation=0.5, arms=ARMS)
    follow = row(table, "alpha2020-002")
    assert follow["n"] == 17 and "same cohort's baseline (row alpha2020-001)" in follow["assumption"]


def test_unit_not_reported_is_not_poolable(fixture_dictionary, sheet_dir):
    frame = read_fixture("outcomes")
    frame.loc[1, "unit"] = "not reported"
    frame.to_csv(sheet_dir / "outcomes.csv", index=False)
    tables = validation.validate(sheets_mod.read_sheets(sheet_dir), fixture_dictionary, review_config())
    table = harmonise.harmonise(tables["outcomes"], tables["studies"], fixture_dictionary, correlation=0.5, arms=ARMS)
    r = row(table, "alpha2020-002")
    assert not r["poolable"] and "unit not reported" in r["not_poolable_reason"]
    assert r["unit"] == "not reported"
    assert "alpha2020-001;alpha2020-002" not in set(table["raw_row_ids"])  # no change score from it


def test_every_row_keeps_its_source(table):
    assert table["source"].str.contains("https://example.org/").all()
    assert table["analysis_id"].is_unique


def test_coverage_counts_poolable_studies_and_visits(table):
    sets = {"review_2023": ["alpha2020"], "all_candidates": ["alpha2020", "beta2021"]}
    cover = harmonise.coverage(table, sets, ["review_2023", "all_candidates"], arms=ARMS)
    prot = cover[(cover["outcome"] == "proteinuria_24h")].set_index("study_set")
    assert prot.loc["review_2023", "studies"] == 1 and prot.loc["all_candidates", "studies"] == 2
    assert prot.loc["all_candidates", "visit_months"] == "6;12"


# ------------------------------------------------------------------ estimates with only an SE or a variance

def _with_rows(sheet_dir, rows: list[dict]) -> None:
    """Append outcome rows (a copy of alpha2020-001 with the given cells) and a variance column to the sheet."""
    frame = read_fixture("outcomes")
    template = frame.iloc[0].to_dict()
    blank = {c: "" for c in ("n", "mean", "sd", "se", "median", "q1", "q3", "min", "max")}
    extra = [{**template, **blank, **r} for r in rows]
    frame = pd.concat([frame, pd.DataFrame(extra)], ignore_index=True).fillna("")
    frame.to_csv(sheet_dir / "outcomes.csv", index=False)


def _harmonised(sheet_dir, fixture_dictionary):
    tables = validation.validate(sheets_mod.read_sheets(sheet_dir), fixture_dictionary, review_config())
    return harmonise.harmonise(tables["outcomes"], tables["studies"], fixture_dictionary, correlation=0.5, arms=ARMS)


def test_estimate_with_only_a_variance_or_se_is_poolable_with_its_se(fixture_dictionary, sheet_dir):
    _with_rows(sheet_dir, [
        # the cohort 'pub' reported as published meta-analyses give it: estimate and variance, then estimate and SE
        {"row_id": "alpha2020-101", "cohort": "pub", "time_value": "0", "statistic": "estimate_variance",
         "mean": "2500", "variance": "40000", "unit": "mg/24 h"},
        {"row_id": "alpha2020-102", "cohort": "pub", "time_value": "12", "statistic": "estimate_se",
         "mean": "1.2", "se": "0.3", "unit": "g/24 h"},
        {"row_id": "alpha2020-103", "cohort": "bare", "time_value": "12", "statistic": "mean_only",
         "mean": "1.1", "unit": "g/24 h"},
    ])
    table = _harmonised(sheet_dir, fixture_dictionary)
    variance = row(table, "alpha2020-101")
    # variance 40000 (mg/24 h)^2 -> se 200 mg/24 h = 0.2 g/24 h; the estimate is the mean; no n or SD invented
    assert (variance["mean"], variance["se"]) == (pytest.approx(2.5), pytest.approx(0.2))
    assert pd.isna(variance["sd"]) and pd.isna(variance["n"]) and bool(variance["poolable"])
    assert variance["method"] == "estimate_variance; se = sqrt(variance); unit mg/24 h x 0.001"
    se = row(table, "alpha2020-102")
    assert (se["mean"], se["se"], bool(se["poolable"])) == (pytest.approx(1.2), pytest.approx(0.3), True)
    assert pd.isna(se["sd"]) and pd.isna(se["n"])
    # the change from SE-only means: sqrt(0.2^2 + 0.3^2 - 2 * 0.5 * 0.2 * 0.3), same patients assumed
    change = row(table, "alpha2020-101;alpha2020-102", origin="derived")
    assert change["mean"] == pytest.approx(1.2 - 2.5)
    assert change["se"] == pytest.approx(math.sqrt(0.04 + 0.09 - 0.06)) and pd.isna(change["sd"])
    assert change["method"] == "change_se_from_r" and "same patients at both visits" in change["assumption"]
    bare = row(table, "alpha2020-103")  # an estimate without SE, SD or n cannot be weighted
    assert not bare["poolable"] and pd.isna(bare["se"])
    assert bare["not_poolable_reason"] == "mean reported without any spread: listed, not pooled"


def test_se_of_a_mean_with_sd_and_n_is_sd_over_root_n(table):
    base = row(table, "alpha2020-001")  # sd 1.3 g/24 h, n 20
    assert base["se"] == pytest.approx(1.3 / math.sqrt(20))
    change = row(table, "alpha2020-001;alpha2020-002", origin="derived")  # n = min(20, 18)
    assert change["se"] == pytest.approx(math.sqrt(1.69 + 0.64 - 1.04) / math.sqrt(18))
    assert pd.isna(row(table, "alpha2020-005")["se"])  # binary rows have no SE of a mean


def test_arms_named_by_the_review_give_enrolled_n_and_coverage(fixture_dictionary, sheet_dir):
    """Arm ids and patient-count columns are the config's: here 'treated' / 'usual_care' with n_treated, n_usual."""
    outcomes = read_fixture("outcomes")
    outcomes["arm"] = outcomes["arm"].map({"MSCT": "treated", "control": "usual_care"})
    outcomes.loc[[0, 1], "n"] = ""  # alpha2020 proteinuria: no n at either visit -> the arm's enrolled n
    outcomes.to_csv(sheet_dir / "outcomes.csv", index=False)
    studies = read_fixture("studies").rename(columns={"n_msct": "n_treated", "n_control": "n_usual"})
    studies.loc[0, "n_treated"] = "21"
    studies.to_csv(sheet_dir / "studies.csv", index=False)
    arms = {"intervention": {"id": "treated", "n_column": "n_treated"},
            "comparator": {"id": "usual_care", "n_column": "n_usual"}}
    config = review_config(review={**FIXTURE_REVIEW, "arms": arms})
    tables = validation.validate(sheets_mod.read_sheets(sheet_dir), fixture_dictionary, config)
    own = review.arms(config)
    table = harmonise.harmonise(tables["outcomes"], tables["studies"], fixture_dictionary, correlation=0.5, arms=own)
    follow = row(table, "alpha2020-002")
    assert follow["arm"] == "treated" and follow["n"] == 21 and "enrolled in the arm" in follow["assumption"]
    cover = harmonise.coverage(table, {"all_candidates": ["alpha2020", "beta2021"]}, ["all_candidates"], arms=own)
    assert cover.set_index("outcome").loc["proteinuria_24h", "studies"] == 2  # the intervention arm's rows
    assert harmonise.coverage(table, {"all_candidates": ["alpha2020"]}, ["all_candidates"], arms=ARMS).empty
