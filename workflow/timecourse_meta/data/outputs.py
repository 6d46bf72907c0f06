"""The exact text each data step writes, computed from its inputs without touching the disk.

The steps (`steps.data`) write these texts; `data.incremental` computes the same texts when the workflow is
parsed, so that a slice is rewritten only when its content changes.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from timecourse_meta.core import atomic
from timecourse_meta.core import review
from timecourse_meta.data import columns
from timecourse_meta.data import dictionary as dictionary_mod
from timecourse_meta.data import harmonise as harmonise_mod
from timecourse_meta.data import linkage
from timecourse_meta.data import sheets as sheets_mod
from timecourse_meta.data import validation
from timecourse_meta.data.sheets import ROW

VALIDATED = ("studies", "outcomes", "appraisal")
HARMONISED_FROM = ("studies", "outcomes")  # the harmonise rule's inputs


def validate_settings(cfg: dict) -> dict:
    """The resolved keys validation reads (the sheets and review files, the review's arms and study sets, the
    analysed outcomes), so that e.g. a sampling change does not revalidate."""
    return {k: cfg[k] for k in ("data", "review", "study_sets", "outcomes", "binary_outcomes")}


def validated_texts(cfg: dict) -> tuple[dict[str, str], str, str]:
    """The exact text run_validate writes: the typed sheets' CSVs (by name), the report and warnings.csv.

    Also computed when the workflow is parsed (timecourse_meta.data.incremental), so it must not touch the disk."""
    data = cfg["data"]
    outcomes = dictionary_mod.load(data["outcome_dictionary"])
    sheets = sheets_mod.read_sheets(data["raw_dir"], data["workbook"])
    notices: list = []
    tables = validation.validate(sheets, outcomes, cfg, notices)
    report = validation.report(tables, sheets, outcomes, notices) + linkage.report_section(
        tables["studies"], arms=review.arms(cfg))
    csvs = {name: atomic.csv_text(tables[name].rename(columns={ROW: "source_row"})) for name in VALIDATED}
    return csvs, report, atomic.csv_text(validation.warnings_frame(notices))


def read_validated(directory: str | None = None, texts: dict[str, str] | None = None,
                   names=VALIDATED) -> dict[str, pd.DataFrame]:
    """Typed tables written by run_validate (text columns as object, numbers as float), from their folder or
    from their text (validated_texts, when the workflow is parsed)."""
    def source(name):
        return io.StringIO(texts[name]) if texts is not None else Path(directory) / f"{name}.csv"
    return {name: pd.read_csv(source(name), dtype={"study_id": str})
            .astype(object).where(lambda f: f.notna(), None) for name in names}


def harmonise_settings(cfg: dict) -> dict:
    """The resolved keys harmonisation reads (and nothing else, so that e.g. a prior change does not rerun it)."""
    return {"outcome_dictionary": cfg["data"]["outcome_dictionary"],
            "within_person_correlation": cfg["harmonisation"]["within_person_correlation"],
            "study_sets": cfg["study_sets"], "review": {"arms": cfg["review"]["arms"]}}


def harmonised_texts(settings: dict, tables: dict[str, pd.DataFrame]) -> tuple[str, str]:
    """The exact text run_harmonise writes (analysis table, coverage) from the validated tables."""
    outcomes = dictionary_mod.load(settings["outcome_dictionary"])
    arms = review.arms(settings)
    raw = tables["outcomes"]
    for column in ("time_value", "n", *columns.VALUE_COLUMNS):
        raw[column] = pd.to_numeric(raw[column], errors="raise")
    studies = tables["studies"]
    for column in (arms.intervention.n_column, arms.comparator.n_column):
        studies[column] = pd.to_numeric(studies[column], errors="raise")
    table = harmonise_mod.harmonise(raw, studies, outcomes, settings["within_person_correlation"], arms=arms)
    cover = harmonise_mod.coverage(table, harmonise_mod.study_sets(studies), settings["study_sets"], arms=arms)
    return atomic.csv_text(table), atomic.csv_text(cover)


def outcome_slice_text(table: pd.DataFrame, outcome: str) -> str:
    """The exact text of one outcome's slice of the analysis table (as read back from its CSV)."""
    return atomic.csv_text(table[table["outcome"] == outcome])
