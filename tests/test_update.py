"""The living-review update on the shipped sheets: every record of the second search is in the sheets with its
source, its overlap and why it is (not) analysed; the study sets; each patient group counted once; the safety
table built from the sheet rows."""

import math

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from timecourse_meta.core import config as config_mod
from timecourse_meta.core import review
from timecourse_meta.data import dictionary as dictionary_mod
from timecourse_meta.data import harmonise, linkage
from timecourse_meta.data import sheets as sheets_mod
from timecourse_meta.data import validation
from timecourse_meta.report import safety

SOURCES = ROOT.parent / "shared" / "sources"
REGISTRY = {"nct04318600", "nct03580291", "nct03458156", "nct04835883", "nct06737380", "nct07041801", "misle"}
OUTSIDE = {"yang2014", "zhu2016", "qiu2016", "bai2017"}
NANJING = {"liang2010", "sun2010", "sun_cn_ucmsc12", "gu2014", "wang2013", "wang2014", "wang2018", "wen2019",
           "bao2023"}


@pytest.fixture(scope="module")
def cfg():
    c = config_mod.load(ROOT / "config.yaml")
    c["data"]["vocabulary"] = str(ROOT / c["data"]["vocabulary"])
    return c


@pytest.fixture(scope="module")
def studies():
    return pd.read_csv(ROOT / "data/raw/studies.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def update_studies():
    return pd.read_csv(SOURCES / "update_studies.csv", dtype=str, keep_default_na=False)


def test_every_update_record_is_in_the_sheet_with_its_search_and_record_type(studies, update_studies):
    assert len(update_studies) == 16
    sheet = studies.set_index("study_id")
    assert set(update_studies["study_id"]) <= set(sheet.index)
    assert len(sheet) == 11 + 16
    original = set(pd.read_csv(SOURCES / "studies.csv")["study_id"])
    assert set(sheet.index[sheet["search"] == "original"]) == original
    assert set(sheet.index[sheet["search"] == "update"]) == set(update_studies["study_id"])
    assert set(sheet.index[sheet["record_type"] == "registry_record"]) == REGISTRY
    assert sheet.loc["zhou_xy2017", "record_type"] == "thesis"
    assert set(sheet.index[sheet["record_type"] == "secondary_table"]) == {"sun2010", "tang2016", "zeng2016",
                                                                           "yang2014", "zhu2016", "qiu2016"}
    # the sources' numbers of the studies sheet are copied, not re-estimated
    for src in update_studies.to_dict("records"):
        row = sheet.loc[src["study_id"]]
        assert row["n_msct"] == src["n_msc"] and row["n_control"] == src["n_control"], src["study_id"]


def test_registry_records_and_studies_outside_the_question_are_listed_not_analysed(studies):
    sheet = studies.set_index("study_id")
    assert set(sheet.index[sheet["exclusion_reason"] == "registry_no_results"]) == REGISTRY
    assert set(sheet.index[sheet["exclusion_reason"] == "outside_question"]) == OUTSIDE
    analysed = harmonise.study_sets(studies)
    everything = harmonise.study_sets(studies, analysed_only=False)
    assert len(everything["updated_review"]) == 27 and len(analysed["updated_review"]) == 16
    assert not (REGISTRY | OUTSIDE) & set(analysed["updated_review"])
    assert analysed["review_2023"] == ["gu2014", "ranjbar2022", "barbado2018", "deng2017"]
    assert set(analysed["updated_review"]) == set(sheet.index) - REGISTRY - OUTSIDE


def test_overlap_of_the_update_is_recorded(studies):
    sheet = studies.set_index("study_id")
    assert set(sheet.index[sheet["patient_group"] == "nanjing_drum_tower"]) == NANJING
    for sid in ("wen2019", "bao2023"):
        assert sheet.loc[sid, "overlap"] == "partial" and sheet.loc[sid, "overlap_basis"] == "judgement"
        assert len(sheet.loc[sid, "overlap_reason"]) > 50 and sheet.loc[sid, "overlap_source"].startswith("http")
    # Tang 2016 vs Deng 2017: a possible duplicate publication, recorded and left unresolved
    assert sheet.loc["tang2016", "patient_group"] == "deng2017"
    assert sheet.loc["tang2016", "overlap"] == "unclear" == sheet.loc["deng2017", "overlap"]
    assert "duplicate" in sheet.loc["tang2016", "overlap_reason"]
    groups = linkage.study_groups(studies, harmonise.study_sets(studies)["updated_review"],
                                  arms=review.arms(config_mod.load(ROOT / "config.yaml"))).set_index("patient_group")
    assert groups.loc["deng2017", "label"] == "Deng 2017"  # a group named after its report is named by it


def test_each_patient_group_is_counted_once_in_the_updated_review(studies, cfg):
    arms = review.arms(cfg)
    ids = harmonise.study_sets(studies)["updated_review"]
    # Nanjing Drum Tower: 9 reports counted once, by the largest (Bao 2023, 92); Ranjbar 9, Barbado 3,
    # Deng 2017 with Tang 2016 (18), Li 2016 20, Zhou 2017 (32 + 35), Zeng 2016 (7 + 8): 92 + 9 + 3 + 18 + 20 +
    # 67 + 15 = 224 patients in 7 studies; summed over the 16 reports they would be 637
    counts = linkage.set_counts(studies, ids, arms=arms)
    assert (counts["n_studies"], counts["n_reports"], counts["n_patients_unique"], counts["n_patients_reports"]) \
        == (7, 16, 224, 637)
    # per outcome and visit, the selection keeps one report of each patient group (the harmonised shipped rows)
    tables = validation.validate(sheets_mod.read_sheets(ROOT / "data/raw"),
                                 dictionary_mod.load(ROOT / "data/review/outcomes.yaml"), cfg)
    table = harmonise.harmonise(tables["outcomes"], tables["studies"],
                                dictionary_mod.load(ROOT / "data/review/outcomes.yaml"), 0.5, arms=arms)
    table = table[table["study_id"].isin(ids)]
    groups = linkage.groups_of(studies)
    for binary, grid in ((False, None), (True, cfg["model"]["visit_grid_months"])):
        part = table[(table["kind"] == "binary") == binary]
        kept, dropped = linkage.select_reports(part, studies, ids, visit_grid=grid)
        pool = kept[kept["poolable"] & (kept["time_months"] > 0)].copy()
        visit = np.round(pool["time_months"].astype(float), 3) if grid is None else [
            linkage._visits(pd.Series([t]), grid)[0] for t in pool["time_months"]]
        pool["visit"], pool["group"] = visit, pool["study_id"].map(groups)
        per = pool.groupby(["outcome", "arm", "visit", "group"])["study_id"].nunique()
        assert (per == 1).all(), per[per > 1]
    # the Nanjing reports do compete: at 12 months of overall survival Gu 2014 (81) and Wang 2014 (40) both
    # report, and only one of them is kept
    surv = table[(table["outcome"] == "overall_survival") & table["poolable"]]
    kept, dropped = linkage.select_reports(surv, studies, ids, visit_grid=cfg["model"]["visit_grid_months"])
    assert "wang2014" in set(dropped["study_id"]) and "gu2014" in set(kept["study_id"])


def test_config_leads_with_the_updated_review_and_checks_claims_on_2023(cfg):
    assert cfg["study_sets"] == ["review_2023", "updated_review"]
    assert cfg["main_study_set"] == "updated_review"
    assert cfg["data"]["claims_study_set"] == "review_2023"
    assert set(cfg["review"]["searches"]) == {"original", "update"}
    with pytest.raises(config_mod.ConfigError, match="claims_study_set"):
        config_mod.resolve({**{k: cfg[k] for k in ("study_sets", "main_study_set", "review")},
                            "data": {"claims_study_set": "all_candidates"}})


# ------------------------------------------------------------------------------------------- safety table

ARMS = review.Arms(review.Arm("MSCT", "MSC", "MSCT", "MSC arm", "n_msct"),
                   review.Arm("control", "control", "control", "control arm", "n_control"))


def _rows():
    base = {"arm": "MSCT", "unit": "patients", "usable": "no", "time_value": "", "time_unit": "", "n": "",
            "events": "", "total": "", "count": "", "percent": "", "value": "", "relation": ""}
    return pd.DataFrame([
        {**base, "row_id": "b-001", "study_id": "b", "outcome": "death", "outcome_reported": "death",
         "statistic": "events_total", "events": "1", "total": "12", "usable": "yes", "time_value": "6",
         "time_unit": "months"},
        {**base, "row_id": "a-001", "study_id": "a", "outcome": "death", "outcome_reported": "death, patient 9",
         "statistic": "count", "count": "1", "n": "40", "time_value": "7", "time_unit": "days",
         "relation": "not_related"},
        {**base, "row_id": "a-002", "study_id": "a", "arm": "control", "outcome": "adverse_event",
         "outcome_reported": "fever", "statistic": "count", "count": "2", "unit": "cases", "relation": "related"},
        {**base, "row_id": "a-003", "study_id": "a", "outcome": "sledai", "outcome_reported": "SLEDAI",
         "statistic": "mean_sd"},
        {**base, "row_id": "c-001", "study_id": "c", "outcome": "death", "outcome_reported": "death",
         "statistic": "events_total", "events": "0", "total": "20", "usable": "yes"},
    ])


def test_safety_events_table_lists_each_reported_event_as_reported():
    events = safety.events_table(_rows(), ["a", "b"], ["death", "adverse_event"], labels={"a": "A 2014"},
                                 outcome_labels={"death": "Death"}, arms=ARMS, pooled_outcomes=["death"])
    assert list(events["row_id"]) == ["a-001", "a-002", "b-001"]  # study order, then sheet order; c not in set
    a1, a2, b1 = events.to_dict("records")
    assert (a1["study"], a1["count"], a1["timing"], a1["relation"], a1["pooled"]) == \
        ("A 2014", "1 patient of 40", "day 7", "not related", "no")
    assert (a2["arm"], a2["count"], a2["timing"], a2["relation"]) == ("control arm", "2 cases", "not reported",
                                                                      "related")
    assert (b1["study"], b1["count"], b1["timing"], b1["pooled"]) == ("b", "1/12 (8%)", "by 6 months", "yes")
    assert safety.counts(events) == {"n_studies": 2, "n_rows": 3, "n_related": 1, "n_not_related": 1,
                                     "n_not_stated": 1, "n_pooled_rows": 1}


def test_safety_pooled_table_reads_the_binary_model_summary():
    summary = pd.DataFrame([
        {"quantity": "proportion", "study_id": np.nan, "visit_months": 12.0, "median": 0.05, "lower": 0.01,
         "upper": 0.2, "label": "pooled from 2 studies", "n_studies": 2, "n_patients": 107},
        {"quantity": "proportion", "study_id": "b", "visit_months": 6.0, "median": 1 / 12, "lower": 0.002,
         "upper": 0.385, "label": "study's own estimate", "n_studies": 1, "n_patients": 12},
        {"quantity": "tau", "study_id": np.nan, "visit_months": np.nan, "median": 0.5, "lower": 0.1, "upper": 1.0,
         "label": "", "n_studies": 2, "n_patients": 107},
    ])
    pooled = safety.pooled_table({"death": summary, "relapse": None}, {"death": "Death"})
    assert list(pooled["follow_up_months"]) == ["6", "12"]
    assert pooled.iloc[0]["estimate"] == "8.3 (95% CI 0.2 to 38.5) %"
    assert pooled.iloc[1]["estimate"].startswith("5.0 (95% CrI 1.0 to 20.0)")
    assert (pooled.iloc[1]["n_studies"], pooled.iloc[1]["what_it_is"]) == ("2", "pooled from 2 studies")


def test_shipped_safety_rows_of_the_update(cfg):
    outcomes = pd.read_csv(ROOT / "data/raw/outcomes.csv", dtype=str, keep_default_na=False)
    studies = pd.read_csv(ROOT / "data/raw/studies.csv", dtype=str, keep_default_na=False)
    ids = harmonise.study_sets(studies)["updated_review"]
    events = safety.events_table(outcomes, ids, cfg["safety"]["outcomes"], labels={}, outcome_labels={},
                                 arms=review.arms(cfg), pooled_outcomes=cfg["safety"]["pooled"])
    wang = events[events["study_id"] == "wang2014"]
    # Wang 2014 Table 2: three deaths (days 7, 192, 256), herpesvirus on days 135, 187, 291, tuberculosis on
    # day 326, all judged 'No relation'; plus the three count rows of the first extraction
    assert sorted(t for t in wang["timing"] if t.startswith("day")) == sorted(
        f"day {d}" for d in (7, 192, 256, 135, 187, 291, 326))
    assert set(wang["relation"]) == {"not related"}
    pooled_deaths = events[(events["outcome"] == "death") & (events["pooled"] == "yes")]
    assert set(pooled_deaths["study_id"]) == {"deng2017", "wang2013", "li2016"}
    assert math.isclose(len(events[events["study_id"] == "li2016"]), 7)


def test_safety_variables_count_the_table(tmp_path):
    """The manuscript's `<set>.safety.*` are the safety table's counts, with the table's raw rows as lineage."""
    from types import SimpleNamespace

    from timecourse_meta.manuscript.variables.context import Collector
    from timecourse_meta.manuscript.variables.safety import put_safety

    events = safety.events_table(_rows(), ["a", "b"], ["death", "adverse_event"], labels={"a": "A 2014"},
                                 outcome_labels={}, arms=ARMS, pooled_outcomes=["death"])
    path = tmp_path / "safety.csv"
    events.to_csv(path, index=False)
    ctx = SimpleNamespace(files=SimpleNamespace(safety={"s": path}, config=tmp_path / "c.yaml"),
                          raw_index={"a-001": {"row_id": "a-001", "source_url": "u", "locator": "l"}},
                          labels={"a": "A 2014", "b": "B 2016"})
    c = Collector(str)
    put_safety(c, ctx, "s", ["main"])
    flat = c.nested()["main"]["safety"]
    assert (flat["n_studies"], flat["n_rows"], flat["n_related"], flat["n_not_related"], flat["n_not_stated"],
            flat["n_pooled_rows"], flat["studies"]) == ("2", "3", "1", "1", "1", "1", "A 2014 and B 2016")
    assert {"row_id": "a-001", "source_url": "u", "locator": "l"} in c.lineage["main.safety.n_rows"]["raw_rows"]
    ctx.files.safety = {}
    c = Collector(str)
    put_safety(c, ctx, "s", ["main"])
    assert c.nested()["main"]["safety"]["n_rows"] == "not reported (no safety table)"


def test_review_inclusion_not_applicable_is_shown_once():
    from timecourse_meta.report import tables

    vocabulary = review.load_vocabulary(ROOT / "data/review/vocabulary.yaml")
    column = vocabulary.characteristics[1]
    assert tables._review_cell({"review_inclusion": "not_applicable",
                                "review_inclusion_confidence": "not_applicable"}, column, vocabulary) == \
        "not applicable"
    assert tables._review_cell({"review_inclusion": "candidate", "review_inclusion_confidence": "low"}, column,
                               vocabulary) == "candidate (low confidence)"


def test_a_count_of_one_reads_in_the_singular():
    from timecourse_meta.report.safety import count_text
    assert count_text({"statistic": "count", "count": "1", "unit": "patients", "n": "40"}) == "1 patient of 40"
    assert count_text({"statistic": "count", "count": "3", "unit": "events", "n": ""}) == "3 events"
