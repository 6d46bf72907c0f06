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


def test_one_outcome_row_per_source_row_with_its_source(raw, source):
    outcomes = raw["outcomes"]
    assert len(outcomes) == len(source)
    for i, (src, row) in enumerate(zip(source.itertuples(), outcomes.itertuples()), start=1):
        assert row.notes.startswith(f"source row {i}"), (i, row.row_id)
        assert row.source_url == src.source_url and row.locator == src.locator, row.row_id


def test_every_source_number_is_in_its_row(raw, source):
    value_columns = ["n", "time_value", "mean", "sd", "median", "q1", "q3", "min", "max", "events", "total",
                     "percent", "count", "value"]
    for src, row in zip(source.to_dict("records"), raw["outcomes"].to_dict("records")):
        wanted = numbers([src["value1"], src["value2"], src["value3"], src["n"]])
        have = numbers(row[c] for c in value_columns)
        assert wanted <= have, (row["row_id"], wanted - have)
        if row["time_unit"] == "months":
            assert numbers([src["timepoint_months"]]) <= have, row["row_id"]
        elif row["time_unit"] == "weeks":  # the source converted weeks to months as weeks * 12/52
            assert round(float(row["time_value"]) * 12 / 52, 2) == round(float(src["timepoint_months"]), 2)


def test_unusable_rows_say_why(raw):
    outcomes = raw["outcomes"]
    unusable = outcomes[outcomes["usable"] == "no"]
    assert len(unusable) > 0 and (unusable["not_usable_reason"].str.len() > 10).all()


def test_all_studies_present_and_appraised(raw):
    expected = set(pd.read_csv(SOURCES / "studies.csv")["study_id"])
    assert set(raw["studies"]["study_id"]) == expected
    assert set(raw["appraisal"]["study_id"]) == expected
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
