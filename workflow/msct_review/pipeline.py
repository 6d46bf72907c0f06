"""The steps the Snakemake rules call: each reads its inputs, calls tested functions, writes atomically.

Nothing is written until a step's work has succeeded, so a failed step leaves no half-written output.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import atomic, config as config_mod, dictionary as dictionary_mod, harmonise as harmonise_mod
from . import sheets as sheets_mod, validation
from .sheets import ROW

VALIDATED = ("studies", "outcomes", "appraisal")


def run_resolve_config(config_path: str, out: str) -> dict:
    resolved = config_mod.load(config_path)
    config_mod.write_resolved(resolved, out)
    return resolved


def run_validate(resolved_config: str, out_dir: str, report: str) -> None:
    """Validate the raw sheets named in the resolved config; write typed copies and a report."""
    cfg = config_mod.load(resolved_config)
    data = cfg["data"]
    outcomes = dictionary_mod.load(data["outcome_dictionary"])
    sheets = sheets_mod.read_sheets(data["raw_dir"], data["workbook"])
    tables = validation.validate(sheets, outcomes)
    text = validation.report(tables, sheets, outcomes)
    for name in VALIDATED:
        frame = tables[name].rename(columns={ROW: "source_row"})
        atomic.write_csv(Path(out_dir) / f"{name}.csv", frame)
    atomic.write_text(report, text)


def read_validated(directory: str) -> dict[str, pd.DataFrame]:
    """Typed tables written by run_validate (text columns as object, numbers as float)."""
    return {name: pd.read_csv(Path(directory) / f"{name}.csv", dtype={"study_id": str})
            .astype(object).where(lambda f: f.notna(), None) for name in VALIDATED}


def run_harmonise(resolved_config: str, validated_dir: str, table_out: str, coverage_out: str) -> None:
    cfg = config_mod.load(resolved_config)
    outcomes = dictionary_mod.load(cfg["data"]["outcome_dictionary"])
    tables = read_validated(validated_dir)
    raw = tables["outcomes"]
    for column in ("time_value", "n", "mean", "sd", "se", "ci_lower", "ci_upper", "ci_level", "median", "q1",
                   "q3", "min", "max", "events", "total", "percent", "count", "value"):
        raw[column] = pd.to_numeric(raw[column], errors="raise")
    studies = tables["studies"]
    for column in ("n_msct", "n_control"):
        studies[column] = pd.to_numeric(studies[column], errors="raise")
    table = harmonise_mod.harmonise(raw, studies, outcomes, cfg["harmonisation"]["within_person_correlation"])
    cover = harmonise_mod.coverage(table, harmonise_mod.study_sets(studies), cfg["study_sets"])
    atomic.write_csv(table_out, table)
    atomic.write_csv(coverage_out, cover)
