"""The steps the Snakemake rules call: each reads its inputs, calls tested functions, writes atomically.

Nothing is written until a step's work has succeeded, so a failed step leaves no half-written output.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from . import atomic, config as config_mod, dictionary as dictionary_mod, harmonise as harmonise_mod
from . import linkage, sheets as sheets_mod, validation
from .sheets import ROW

VALIDATED = ("studies", "outcomes", "appraisal")


def run_resolve_config(config_path: str, out: str) -> dict:
    resolved = config_mod.load(config_path)
    config_mod.write_resolved(resolved, out)
    return resolved


def run_validate(resolved_config, out_dir: str, report: str, warnings_out: str | None = None) -> None:
    """Validate the raw sheets named in the resolved config (a mapping, or the path of a resolved config file);
    write typed copies, the report and warnings.csv. A sheet that cannot be read or has problems writes nothing."""
    cfg = config_mod.load(resolved_config) if isinstance(resolved_config, (str, Path)) else resolved_config
    data = cfg["data"]
    outcomes = dictionary_mod.load(data["outcome_dictionary"])
    sheets = sheets_mod.read_sheets(data["raw_dir"], data["workbook"])
    notices: list = []
    tables = validation.validate(sheets, outcomes, cfg, notices)
    text = validation.report(tables, sheets, outcomes, notices) + linkage.report_section(tables["studies"])
    for name in VALIDATED:
        frame = tables[name].rename(columns={ROW: "source_row"})
        atomic.write_csv(Path(out_dir) / f"{name}.csv", frame)
    if warnings_out:
        atomic.write_csv(warnings_out, validation.warnings_frame(notices))
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


def run_outcome_slice(table_csv: str, outcome: str, out: str) -> None:
    """The analysis-table rows of one outcome.

    Snakemake records input checksums: when another outcome's data change, this slice is rewritten with the
    same content, so the outcome's model is not rerun.
    """
    table = pd.read_csv(table_csv)
    atomic.write_csv(out, table[table["outcome"] == outcome])


def model_settings(cfg: dict, outcome: str) -> dict:
    """The resolved settings one outcome's model depends on (and nothing else, so reruns stay minimal)."""
    model = cfg["model"]
    priors = model["priors"]
    return {
        **{k: v for k, v in model.items() if k != "priors"},
        "priors": {k: priors[k] for k in ("default", outcome) if k in priors},
        "sampling": cfg["sampling"],
        "diagnostics": cfg["diagnostics"],
        "reports": cfg.get("reports", {"rule": linkage.DEFAULT_RULE}),
        # a single study's change from absolute means (no model) uses the configured within-person r
        "within_person_correlation": cfg["harmonisation"]["within_person_correlation"],
    }


def run_model_config(resolved_config: str, outcome: str, out: str) -> None:
    cfg = config_mod.load(resolved_config)
    atomic.write_text(out, config_mod.dump(model_settings(cfg, outcome)))


def study_ids_in_set(studies_csv: str, study_set: str) -> list[str]:
    studies = pd.read_csv(studies_csv, dtype=str, keep_default_na=False)
    return harmonise_mod.study_sets(studies).get(study_set, [])


def run_fit(slice_csv: str, model_config: str, studies_csv: str, dictionary_yaml: str, outcome: str,
            study_set: str, idata_out: str, summary_out: str, dropped_out: str | None = None) -> pd.DataFrame:
    """Fit one outcome in one study set; the seed is derived from the configured base seed and the outcome.

    Before the model data are built, each patient group is counted once (`linkage.select_reports`, rule from
    config `reports.rule`); the report rows left out are written to `dropped_out` (default: dropped_reports.csv
    beside the summary), each with the report used instead. Binary outcomes are selected in the model's time bins.
    """
    from . import models
    from .model_data import resolved_settings

    settings = yaml.safe_load(Path(model_config).read_text(encoding="utf-8"))
    spec = dictionary_mod.load(dictionary_yaml)[outcome].as_spec()
    seed = models.outcome_seed(settings["sampling"]["seed"], outcome)
    studies = pd.read_csv(studies_csv, dtype=str, keep_default_na=False)
    study_ids = harmonise_mod.study_sets(studies).get(study_set, [])
    table = pd.read_csv(slice_csv)
    rule = (settings.get("reports") or {}).get("rule", linkage.DEFAULT_RULE)
    resolved = resolved_settings(settings)
    grid = resolved["visit_grid_months"] if spec["kind"] == "binary" else None
    kept, dropped = linkage.select_reports(table, studies, study_ids, rule=rule, visit_grid=grid,
                                           tolerance=resolved["binary_time_tolerance_months"])
    summary = models.run_model(kept, {outcome: spec}, settings, outcome, study_set, study_ids, idata_out,
                               summary_out, seed=seed)
    atomic.write_csv(dropped_out or Path(summary_out).with_name("dropped_reports.csv"), dropped)
    return summary


def run_diagnose(idata_path: str, model_config: str, outcome: str, study_set: str, report: str, out: str) -> None:
    """The convergence gate: the report is always written (kept as the job's log); `out` only if it passes."""
    from . import diagnostics

    settings = yaml.safe_load(Path(model_config).read_text(encoding="utf-8"))
    table = diagnostics.run_diagnostics(idata_path, settings["diagnostics"], outcome, study_set, report)
    atomic.write_csv(out, table)
