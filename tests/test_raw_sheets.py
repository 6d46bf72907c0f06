"""The shipped extraction sheets hold every number of the shared sources, each with its source."""

import math

import pandas as pd
import pytest

from conftest import ROOT
from timecourse_meta.core import config as config_mod
from timecourse_meta.data import dictionary
from timecourse_meta.data import sheets as sheets_mod
from timecourse_meta.data import validation

SOURCES = ROOT.parent / "shared" / "sources"


@pytest.fixture(scope="module")
def raw():
    return {name: pd.read_csv(ROOT / "data/raw" / f"{name}.csv", dtype=str, keep_default_na=False)
            for name in sheets_mod.SHEETS}


@pytest.fixture(scope="module")
def source():
    return pd.read_csv(SOURCES / "reported_outcomes.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def update_source():
    return pd.read_csv(SOURCES / "update_reported_outcomes.csv", dtype=str, keep_default_na=False)


def numbers(values) -> set[float]:
    out = set()
    for v in values:
        try:
            x = float(v)
        except ValueError:
            continue
        if math.isfinite(x):
            out.add(round(x, 6))
    return out


def test_shipped_sheets_pass_validation():
    cfg = config_mod.load(ROOT / "config.yaml")
    cfg["data"]["vocabulary"] = str(ROOT / cfg["data"]["vocabulary"])
    tables = validation.validate(sheets_mod.read_sheets(ROOT / "data/raw"),
                                 dictionary.load(ROOT / "data/review/outcomes.yaml"), cfg)
    assert len(tables["outcomes"]) > 0


def paired(raw, source, update_source):
    """(source row, sheet row, its note prefix) for the first extraction and then the update batch, in order."""
    outcomes = raw["outcomes"].to_dict("records")
    assert len(outcomes) == len(source) + len(update_source) == 131 + 46
    first = [(s, o, f"source row {i}") for i, (s, o) in enumerate(zip(source.to_dict("records"), outcomes), 1)]
    update = [(s, o, f"update source row {i}") for i, (s, o) in
              enumerate(zip(update_source.to_dict("records"), outcomes[len(source):]), 1)]
    return first + update


def test_one_outcome_row_per_source_row_with_its_source(raw, source, update_source):
    for src, row, prefix in paired(raw, source, update_source):
        assert row["notes"].startswith(prefix), (prefix, row["row_id"])
        # the preliminary congress abstract of Ranjbar 2022 is kept under the trial's study_id
        assert row["study_id"] == {"ranjbar_prelim_conf": "ranjbar2022"}.get(src["study_id"], src["study_id"])
        assert row["source_url"] == src["source_url"] and row["locator"] == src["locator"], row["row_id"]


def test_update_rows_keep_the_sources_words(raw, update_source):
    update = raw["outcomes"].iloc[131:]
    for src, row in zip(update_source.to_dict("records"), update.to_dict("records")):
        assert src["verbatim_quote"] in row["notes"], row["row_id"]
        if "[secondary source" in src["outcome"]:
            assert "secondary source" in row["not_usable_reason"] + row["notes"] + row["outcome_reported"]
    news = update[update["notes"].str.contains("news summary")]
    assert list(news["study_id"]) == ["qiu2016"] and (news["usable"] == "no").all()


def test_every_source_number_is_in_its_row(raw, source, update_source):
    value_columns = ["n", "time_value", "mean", "sd", "median", "q1", "q3", "min", "max", "events", "total",
                     "percent", "count", "value"]
    for src, row, _ in paired(raw, source, update_source):
        wanted = numbers([src["value1"], src["value2"], src["value3"], src["n"]])
        have = numbers(row[c] for c in value_columns)
        assert wanted <= have, (row["row_id"], wanted - have)
        if row["time_unit"] == "months" and src["timepoint_months"]:
            assert numbers([src["timepoint_months"]]) <= have, row["row_id"]
        elif row["time_unit"] == "weeks" and src["timepoint_months"]:  # the source converted weeks * 12/52
            assert round(float(row["time_value"]) * 12 / 52, 2) == round(float(src["timepoint_months"]), 2)


def test_conflicting_and_truncated_numbers_are_recorded_not_resolved(raw):
    rows = raw["outcomes"].set_index("row_id")
    li = rows.loc["li2016-009"]  # '3 relapses, 20% (1/15)'
    assert li["usable"] == "no" and "1/15" in li["not_usable_reason"] and "3/15" in li["not_usable_reason"]
    wen = rows.loc["wen2019-003"]  # '16 (23%) achieve...' is cut off
    assert wen["usable"] == "no" and "truncated" in wen["not_usable_reason"]
    assert "inference" in wen["assumption"]


def test_unusable_rows_say_why(raw):
    outcomes = raw["outcomes"]
    unusable = outcomes[outcomes["usable"] == "no"]
    assert len(unusable) > 0 and (unusable["not_usable_reason"].str.len() > 10).all()


def test_all_studies_present_and_appraised(raw):
    first = set(pd.read_csv(SOURCES / "studies.csv")["study_id"])
    update = set(pd.read_csv(SOURCES / "update_studies.csv")["study_id"])
    assert set(raw["studies"]["study_id"]) == first | update and len(raw["studies"]) == 27
    assert set(raw["appraisal"]["study_id"]) == first  # the update's studies are not appraised yet
    sets = raw["studies"].set_index("study_id")["study_sets"]
    review = {s for s, v in sets.items() if "review_2023" in v.split(";")}
    assert review == {"gu2014", "ranjbar2022", "barbado2018", "deng2017"}


def test_known_discrepancies_are_recorded(raw):
    text = " ".join(raw["outcomes"]["notes"]) + " " + " ".join(raw["outcomes"]["assumption"]) + " " + \
        " ".join(raw["studies"]["notes"])
    for phrase in ("11/81", "SD", "per 1.73"):
        assert phrase in text, phrase
    liang = raw["outcomes"][(raw["outcomes"]["study_id"] == "liang2010") & (raw["outcomes"]["outcome"] == "sledai")]
    assert liang["assumption"].str.contains("SD").all()
