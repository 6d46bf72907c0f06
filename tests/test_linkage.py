"""timecourse_meta.data.linkage: reports of the same patients are counted once (studies, not reports)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import read_fixture, review_config
from timecourse_meta.core import review
from timecourse_meta.data import dictionary as dictionary_mod
from timecourse_meta.data import harmonise
from timecourse_meta.data import linkage
from timecourse_meta.model import model_data
from timecourse_meta.steps import data as data_steps
from timecourse_meta.steps import model as model_steps
from timecourse_meta.data import sheets as sheets_mod
from timecourse_meta.data import validation

ROOT = Path(__file__).resolve().parents[1]
ARMS = review.arms(review_config())
GRID = [0, 1, 3, 6, 9, 12]

# Alpha 2014 and Beta 2016 report the same cohort ('cohort_g'); Gamma 2015 is an independent study.
STUDIES = pd.DataFrame({
    "study_id": ["alpha2014", "beta2016", "gamma2015"],
    "first_author": ["Alpha A", "Beta B", "Gamma C"],
    "year": [2014, 2016, 2015],
    "n_msct": [30, 30, 10],
    "n_control": [0, 0, 0],
    "patient_group": ["cohort_g", "cohort_g", "gamma2015"],
    "overlap": ["partial", "later_follow_up", "none"],
    "study_sets": ["all", "all", "all"],
})
IDS = ["alpha2014", "beta2016", "gamma2015"]
SPEC = {"kind": "continuous", "analysis_scale": "identity", "canonical_unit": "score", "label": "Score",
        "direction_of_benefit": "decrease"}
BINARY = {"kind": "binary", "analysis_scale": "logit", "canonical_unit": "%", "label": "Survival",
          "direction_of_benefit": "increase"}


def row(aid, study, t, n, mean=None, outcome="score", kind="continuous", events=None, total=None, poolable=True):
    return {"analysis_id": aid, "study_id": study, "arm": "MSCT", "outcome": outcome, "kind": kind,
            "measure": "absolute", "origin": "reported", "cohort": "all", "time_months": t, "n": n,
            "mean": mean, "sd": 3.0 if mean is not None else None, "events": events, "total": total,
            "unit": "score" if kind == "continuous" else "%", "poolable": poolable}


ALPHA = [row("a0", "alpha2014", 0, 30, 12.0), row("a6", "alpha2014", 6, 30, 8.0), row("a12", "alpha2014", 12, 28, 6.0)]
GAMMA = [row("g0", "gamma2015", 0, 10, 14.0), row("g6", "gamma2015", 6, 10, 9.0)]
# a duplicate report of Alpha's patients: the same baseline and 12-month numbers, nothing more
BETA_DUPLICATE = [row("b0", "beta2016", 0, 30, 12.0), row("b12", "beta2016", 12, 28, 6.0)]
# a later follow-up of the same cohort: fewer patients at 12 months, and a 24-month visit Alpha lacks
BETA_LATER = [row("b0", "beta2016", 0, 30, 12.0), row("b12", "beta2016", 12, 25, 6.5),
              row("b24", "beta2016", 24, 20, 6.0)]


def table(*parts):
    return pd.DataFrame([r for part in parts for r in part])


def test_two_reports_of_one_cohort_pool_like_one():
    one = table(ALPHA, GAMMA)
    both = table(ALPHA, BETA_DUPLICATE, GAMMA)
    kept, dropped = linkage.select_reports(both, STUDIES, IDS)
    assert list(kept["analysis_id"]) == list(one["analysis_id"])
    md_one = model_data.build_model_data(one, "score", IDS, SPEC, {"arms": {"intervention": "MSCT"}})
    md_kept = model_data.build_model_data(kept, "score", IDS, SPEC, {"arms": {"intervention": "MSCT"}})
    md_both = model_data.build_model_data(both, "score", IDS, SPEC, {"arms": {"intervention": "MSCT"}})
    assert md_kept.studies == md_one.studies == ["alpha2014", "gamma2015"]
    pd.testing.assert_frame_equal(md_kept.obs.reset_index(drop=True), md_one.obs.reset_index(drop=True))
    assert md_kept.total_patients() == md_one.total_patients() == 40
    assert md_kept.patients_at_visit() == md_one.patients_at_visit()
    assert md_both.patients_at_visit()[md_both.visits.tolist().index(12)] == 56
    # without the selection the duplicate would enter as a third study, its 28 patients counted twice at 12 months
    assert "beta2016" in md_both.studies
    assert sorted(dropped["analysis_id"]) == ["b0", "b12"]


def test_dropped_report_is_named_with_the_report_kept():
    kept, dropped = linkage.select_reports(table(ALPHA, BETA_DUPLICATE, GAMMA), STUDIES, IDS)
    by_id = dropped.set_index("analysis_id")
    # 12 months: Alpha and Beta both 28 patients; Alpha has more visits (6 and 12) than Beta (12)
    assert by_id.loc["b12", "reason"] == "overlapping patients: Cohort G, Alpha 2014 used at 12 months"
    assert by_id.loc["b12", "kept_study_id"] == "alpha2014"
    assert by_id.loc["b12", "patient_group"] == "cohort_g"
    # Beta is used at no follow-up visit, so its baseline goes too
    assert by_id.loc["b0", "reason"] == ("overlapping patients: Cohort G, baseline of a report not used at any "
                                         "follow-up visit (Alpha 2014 used at the follow-up visits)")
    assert list(dropped.columns) == linkage.DROPPED_COLUMNS


def test_most_complete_per_visit_keeps_each_visit_from_its_most_complete_report():
    kept, dropped = linkage.select_reports(table(ALPHA, BETA_LATER, GAMMA), STUDIES, IDS)
    # 12 months: Alpha 28 patients > Beta 25; 24 months only Beta, which keeps its baseline
    assert list(dropped["analysis_id"]) == ["b12"]
    assert dropped["reason"].iloc[0] == "overlapping patients: Cohort G, Alpha 2014 used at 12 months"
    assert set(kept["analysis_id"]) == {"a0", "a6", "a12", "b0", "b24", "g0", "g6"}
    per_visit = kept.groupby("time_months")["study_id"].apply(lambda s: sorted(s)).to_dict()
    assert per_visit[12] == ["alpha2014"] and per_visit[24] == ["beta2016"]


def test_one_report_per_group_keeps_the_single_most_complete_report():
    kept, dropped = linkage.select_reports(table(ALPHA, BETA_LATER, GAMMA), STUDIES, IDS, rule="one_report_per_group")
    # patient-visits over follow-ups: Alpha 30 + 28 = 58, Beta 25 + 20 = 45
    assert sorted(dropped["analysis_id"]) == ["b0", "b12", "b24"]
    assert set(dropped["reason"]) == {"overlapping patients: Cohort G, Alpha 2014 used (one report per patient group)"}
    assert set(kept["study_id"]) == {"alpha2014", "gamma2015"}


def test_ties_go_to_more_visits_then_to_the_later_report():
    a = [row("a0", "alpha2014", 0, 30, 12.0), row("a12", "alpha2014", 12, 28, 6.0)]
    b = [row("b0", "beta2016", 0, 30, 12.0), row("b12", "beta2016", 12, 28, 6.0)]
    kept, dropped = linkage.select_reports(table(a, b), STUDIES, IDS)
    assert set(kept["study_id"]) == {"beta2016"}  # full tie: the later report (2016)
    no_year = STUDIES.assign(year=[2014, None, 2015])
    kept, _ = linkage.select_reports(table(a, b), no_year, IDS)
    assert set(kept["study_id"]) == {"alpha2014"}  # a report without a year counts as the earliest
    more_patients = [row("b0", "beta2016", 0, 30, 12.0), row("b12", "beta2016", 12, 29, 6.0)]
    kept, _ = linkage.select_reports(table(ALPHA, more_patients), STUDIES, IDS)
    assert set(kept.loc[kept["time_months"] == 12, "study_id"]) == {"beta2016"}  # 29 > 28 beats more visits
    assert set(kept.loc[kept["time_months"] == 6, "study_id"]) == {"alpha2014"}


def test_binary_outcomes_are_selected_in_the_models_follow_up_durations():
    surv = [row("a12", "alpha2014", 12, None, outcome="surv", kind="binary", events=77, total=81),
            row("b60", "beta2016", 60, None, outcome="surv", kind="binary", events=68, total=81),
            row("b12", "beta2016", 12.4, None, outcome="surv", kind="binary", events=70, total=75),
            row("g12", "gamma2015", 12, None, outcome="surv", kind="binary", events=9, total=10)]
    t = table(surv)
    kept, dropped = linkage.select_reports(t, STUDIES, IDS, visit_grid=GRID, tolerance=0.5)
    # 12.4 months is within 0.5 of the 12-month visit: Beta's row competes there with Alpha's (81 > 75 patients);
    # 60 months is its own follow-up duration, never pooled with 12 months, so Beta's 60-month row stays
    assert list(dropped["analysis_id"]) == ["b12"]
    assert dropped["reason"].iloc[0] == "overlapping patients: Cohort G, Alpha 2014 used at 12 months"
    assert dropped["visit_months"].iloc[0] == 12
    md = model_data.build_model_data(kept, "surv", IDS, BINARY, {"visit_grid_months": GRID, "arms": {"intervention": "MSCT"}})
    at12 = md.obs[md.obs["bin_months"] == 12] if "bin_months" in md.obs else md.obs
    assert sorted(set(at12["study_id"])) == ["alpha2014", "gamma2015"]  # one report of Cohort G at 12 months
    kept_raw, dropped_raw = linkage.select_reports(t, STUDIES, IDS)  # on raw times 12 and 12.4 differ
    assert dropped_raw.empty


def test_only_reports_of_the_study_set_compete_and_others_are_untouched():
    t = table(ALPHA, BETA_DUPLICATE, GAMMA)
    kept, dropped = linkage.select_reports(t, STUDIES, ["beta2016", "gamma2015"])
    assert dropped.empty and len(kept) == len(t)
    with pytest.raises(ValueError, match="reports.rule = 'newest'; expected one of most_complete_per_visit"):
        linkage.select_reports(t, STUDIES, IDS, rule="newest")


def test_not_poolable_rows_do_not_compete_but_leave_with_their_report():
    a = ALPHA
    b = [row("b0", "beta2016", 0, 30, 12.0), row("b12", "beta2016", 12, 80, None, poolable=False)]
    kept, dropped = linkage.select_reports(table(a, b), STUDIES, IDS)
    assert list(dropped["analysis_id"]) == ["b0", "b12"]  # 80 'patients' of a median-only row do not win


# ------------------------------------------------------------------------------------- the shipped sheet

def shipped_studies():
    return pd.read_csv(ROOT / "data/raw/studies.csv", dtype=str, keep_default_na=False)


def test_unique_patients_on_the_shipped_sheet():
    studies = shipped_studies()
    sets = harmonise.study_sets(studies)
    # review_2023: gu2014 81 + ranjbar2022 9 + barbado2018 3 + deng2017 (12 MSCT + 6 control) 18 = 111,
    # four reports in four patient groups (Gu 2014 is the only Nanjing Drum Tower report in this set).
    assert linkage.unique_patients(studies, sets["review_2023"], arms=ARMS) == 111
    assert linkage.set_counts(studies, sets["review_2023"], arms=ARMS) == {
        "n_studies": 4, "n_reports": 4, "n_patients_unique": 111, "n_patients_reports": 111,
        "patients_basis": "each patient group counted once, by its largest report"}
    # updated_review: 16 analysed reports; the nine Nanjing Drum Tower reports (liang2010 15, sun2010 16,
    # sun_cn_ucmsc12 12, gu2014 81, wang2013 87, wang2014 40, wang2018 81, wen2019 69, bao2023 92) count once, by the
    # largest (bao2023, 92); Tang 2016 (12) counts inside Deng 2017's group (18); plus ranjbar2022 9, barbado2018 3,
    # li2016 20, zhou_xy2017 67, zeng2016 15: 92 + 9 + 3 + 18 + 20 + 67 + 15 = 224 patients in 7 studies. Summed over
    # reports: 637 (the count that counted people more than once). Registry records and studies outside the
    # question are not analysed.
    counts = linkage.set_counts(studies, sets["updated_review"], arms=ARMS)
    assert (counts["n_studies"], counts["n_reports"], counts["n_patients_unique"], counts["n_patients_reports"]) \
        == (7, 16, 224, 637)
    groups = linkage.study_groups(studies, sets["updated_review"], arms=ARMS).set_index("patient_group")
    nanjing = groups.loc["nanjing_drum_tower"]
    assert (nanjing["label"], nanjing["n_reports"], nanjing["largest_report"], nanjing["patients"]) == \
        ("Nanjing Drum Tower", 9, "bao2023", 92)
    assert "Gu 2014 (81, partial overlap)" in nanjing["reports"]
    assert "Wang 2018 (81, later follow-up)" in nanjing["reports"]
    assert "Bao 2023 (92, partial overlap)" in nanjing["reports"]
    assert groups.loc["deng2017", "n_reports"] == 2 and groups.loc["deng2017", "patients"] == 18
    assert groups.loc["li2016", "reports"] == "Li 2016 (20)"


def test_shipped_sheet_overlap_is_filled_and_consistent():
    studies = shipped_studies()
    assert set(studies["overlap"]) <= set(linkage.OVERLAPS)
    assert (studies["overlap_reason"].str.len() > 20).all()
    nanjing = set(studies.loc[studies["patient_group"] == "nanjing_drum_tower", "study_id"])
    assert nanjing == {"liang2010", "sun2010", "sun_cn_ucmsc12", "gu2014", "wang2013", "wang2014", "wang2018",
                       "wen2019", "bao2023"}
    assert studies.set_index("study_id").loc["wang2018", "overlap"] == "later_follow_up"


# ------------------------------------------------------------------------------------- validation report

def _validated_fixture(tmp_path, cells=None):
    frames = {name: read_fixture(name) for name in sheets_mod.SHEETS}
    for (row_index, column), value in (cells or {}).items():
        frames["studies"].loc[row_index, column] = value
    for name, frame in frames.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    return frames


def test_unclear_overlap_is_a_warning_naming_the_reports(tmp_path):
    _validated_fixture(tmp_path, {(0, "patient_group"): "shared", (1, "patient_group"): "shared",
                                  (0, "overlap"): "unclear", (1, "overlap"): "same_patients",
                                  (0, "overlap_source"): "https://example.org/alpha",
                                  (1, "overlap_source"): "https://example.org/beta"})
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**review_config(data={"raw_dir": str(tmp_path)})}))
    out = tmp_path / "validated"
    data_steps.run_validate(settings=str(config), report=str(out / "report.md"), tables_dir=str(out))
    text = (out / "report.md").read_text()
    assert "All sheets passed validation." in text
    assert "2 analysed reports in 1 patient groups; patients counted once per group (its largest report): 20." in text
    assert "| Shared | Alpha 2020 (20, unclear), Beta 2021 (18, same patients) | 20 |" in text
    warnings = [line for line in text.splitlines() if line.startswith("- WARNING:")]
    assert warnings == ["- WARNING: Alpha 2020 (alpha2020): overlap unclear; other reports of patient group "
                        "'shared': Beta 2021 (beta2021). No other report in the sheets describes these patients."]


def test_no_warning_section_when_nothing_is_open(tmp_path):
    _validated_fixture(tmp_path)
    tables = validation.validate(sheets_mod.read_sheets(tmp_path),
                                 dictionary_mod.load(ROOT / "tests/fixtures/outcome_dictionary.yaml"),
                                 review_config())
    assert linkage.warnings_markdown(tables["studies"]) == ""
    partial = tables["studies"].assign(overlap=["partial", "none"])
    assert linkage.overlap_warnings(partial) == []  # partial alone in its group is not an open overlap here


# ------------------------------------------------------------------------------------- wiring in run_fit

def test_run_fit_fits_the_kept_rows_and_writes_the_dropped_ones(tmp_path, monkeypatch):
    from timecourse_meta.model import fit as models

    seen = {}

    def fake_run_model(tab, dictionary, settings, outcome, study_set, study_ids, idata_out, summary_out, seed=None):
        seen.update(table=tab, study_ids=study_ids)
        return pd.DataFrame()

    monkeypatch.setattr(models, "run_model", fake_run_model)
    slice_csv = tmp_path / "slice.csv"
    table(ALPHA, BETA_DUPLICATE, GAMMA).to_csv(slice_csv, index=False)
    studies_csv = tmp_path / "studies.csv"
    STUDIES.to_csv(studies_csv, index=False)
    settings = tmp_path / "settings.yaml"
    settings.write_text(yaml.safe_dump({"sampling": {"seed": 1}, "reports": {"rule": "most_complete_per_visit"}}))
    dictionary = tmp_path / "dictionary.yaml"
    dictionary.write_text(yaml.safe_dump({"outcomes": {"score": {
        "label": "Score", "kind": "continuous", "canonical_unit": "score", "units": {"score": 1.0},
        "direction_of_benefit": "decrease", "analysis_scale": "identity"}}}))
    summary = tmp_path / "m" / "summary.csv"
    summary.parent.mkdir()
    model_steps.run_fit_model(table=str(slice_csv), settings=str(settings), studies=str(studies_csv),
                              dictionary=str(dictionary), outcome="score", study_set="all",
                              idata=str(tmp_path / "m" / "idata.nc"), summary=str(summary))
    assert sorted(seen["table"]["analysis_id"]) == ["a0", "a12", "a6", "g0", "g6"]
    assert seen["study_ids"] == IDS
    dropped = pd.read_csv(tmp_path / "m" / "dropped_reports.csv")
    assert sorted(dropped["analysis_id"]) == ["b0", "b12"]
    assert np.all(dropped["kept_study_id"] == "alpha2014")


def test_run_fit_selects_binary_rows_in_the_default_follow_up_durations(tmp_path, monkeypatch):
    from timecourse_meta.model import fit as models

    seen = {}
    monkeypatch.setattr(models, "run_model", lambda tab, *a, **k: seen.update(table=tab) or pd.DataFrame())
    slice_csv = tmp_path / "slice.csv"
    table([row("a12", "alpha2014", 12, None, outcome="surv", kind="binary", events=77, total=81),
           row("b60", "beta2016", 60, None, outcome="surv", kind="binary", events=68, total=81),
           row("b12", "beta2016", 11.8, None, outcome="surv", kind="binary", events=70, total=79)]
          ).to_csv(slice_csv, index=False)
    STUDIES.to_csv(tmp_path / "studies.csv", index=False)
    (tmp_path / "settings.yaml").write_text(yaml.safe_dump({"sampling": {"seed": 1}}))  # no grid, no rule: defaults
    (tmp_path / "dictionary.yaml").write_text(yaml.safe_dump({"outcomes": {"surv": {
        "label": "Survival", "kind": "binary", "canonical_unit": "%", "units": {"%": None},
        "direction_of_benefit": "increase", "analysis_scale": "logit"}}}))
    model_steps.run_fit_model(table=str(slice_csv), settings=str(tmp_path / "settings.yaml"),
                              studies=str(tmp_path / "studies.csv"), dictionary=str(tmp_path / "dictionary.yaml"),
                              outcome="surv", study_set="all", idata=str(tmp_path / "idata.nc"),
                              summary=str(tmp_path / "summary.csv"))
    # 11.8 months joins the default grid's 12-month visit (tolerance 0.5): Alpha's 81 patients are kept there;
    # 60 months is a duration of its own and stays
    assert list(seen["table"]["analysis_id"]) == ["a12", "b60"]
    dropped = pd.read_csv(tmp_path / "dropped_reports.csv")
    assert list(dropped["reason"]) == ["overlapping patients: Cohort G, Alpha 2014 used at 12 months"]


def test_validation_report_counts_analysed_reports_and_lists_the_others(tmp_path):
    """A record with an exclusion_reason is listed with its reason, and its patients are not counted."""
    frames = _validated_fixture(tmp_path)
    assert list(frames["studies"]["study_id"]) == ["alpha2020", "beta2021"]
    frames["studies"]["exclusion_reason"] = ["", "no_usable_data"]
    frames["studies"].to_csv(tmp_path / "studies.csv", index=False)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**review_config(data={"raw_dir": str(tmp_path)})}))
    out = tmp_path / "validated"
    data_steps.run_validate(settings=str(config), report=str(out / "report.md"), tables_dir=str(out))
    text = (out / "report.md").read_text()
    assert "1 analysed reports in 1 patient groups; patients counted once per group (its largest report): 20." \
        in text
    assert "1 further records are listed, not analysed (column `exclusion_reason`): Beta 2021 (beta2021): " \
        "no_usable_data." in text
