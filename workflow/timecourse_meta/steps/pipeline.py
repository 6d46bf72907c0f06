"""The steps the Snakemake rules call: each reads its inputs, calls tested functions, writes atomically.

Nothing is written until a step's work has succeeded, so a failed step leaves no half-written output.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pandas as pd
import yaml

from timecourse_meta.core import atomic
from timecourse_meta.core import config as config_mod
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


def run_resolve_config(config_path: str, out: str) -> dict:
    resolved = config_mod.load(config_path)
    config_mod.write_resolved(resolved, out)
    return resolved


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


def run_validate(resolved_config, out_dir: str, report: str, warnings_out: str | None = None,
                 tables: bool = True) -> None:
    """Validate the raw sheets named in the resolved config (a mapping, or the path of a resolved config file);
    write the report, warnings.csv and (unless `tables` is false: the workflow writes them with the
    validated_sheet rule) the typed copies. A sheet that cannot be read or has problems writes nothing."""
    cfg = config_mod.load(resolved_config) if isinstance(resolved_config, (str, Path)) else resolved_config
    csvs, report_text, warnings_text = validated_texts(cfg)
    for name, text in csvs.items() if tables else ():
        atomic.write_text(Path(out_dir) / f"{name}.csv", text)
    if warnings_out:
        atomic.write_text(warnings_out, warnings_text)
    atomic.write_text(report, report_text)


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


def run_harmonise(settings: dict | str | Path, validated_dir: str, table_out: str, coverage_out: str) -> None:
    """Harmonise the validated tables; `settings` is harmonise_settings() or the path of a resolved config."""
    if not isinstance(settings, dict):
        settings = harmonise_settings(config_mod.load(settings))
    table_text, coverage_text = harmonised_texts(settings, read_validated(validated_dir, names=HARMONISED_FROM))
    atomic.write_text(table_out, table_text)
    atomic.write_text(coverage_out, coverage_text)


def outcome_slice_text(table: pd.DataFrame, outcome: str) -> str:
    """The exact text of one outcome's slice of the analysis table (as read back from its CSV)."""
    return atomic.csv_text(table[table["outcome"] == outcome])


def run_outcome_slice(text: str | None, out: str, error: str | None = None) -> None:
    """Write one outcome's rows of the analysis table: the text computed when the workflow was parsed
    (timecourse_meta.data.incremental), i.e. outcome_slice_text of the table the harmonise job writes."""
    from timecourse_meta.data.incremental import write_given

    write_given(text, out, error, "the outcome's rows")


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
        "arms": model_arms(cfg),
    }


def model_arms(cfg: dict) -> dict:
    """The arms entry of the model settings: arm ids of the analysis table and their short names for notes."""
    arms = review.arms(cfg)
    return {"intervention": arms.intervention.id, "comparator": arms.comparator.id,
            "intervention_short": arms.intervention.short, "comparator_short": arms.comparator.short}


def run_model_config(settings_text: str, out: str) -> None:
    """Write one outcome's model settings, the YAML text of model_settings() the rule receives as a param (so the
    job reruns exactly when that outcome's settings change, not whenever the resolved config is rewritten)."""
    yaml.safe_load(settings_text)  # a param that is not YAML is a bug here, not a file for the fit to trip over
    atomic.write_text(out, settings_text)


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
    from timecourse_meta.model import fit as models
    from timecourse_meta.model.model_data import resolved_settings

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
    from timecourse_meta.model import diagnostics

    settings = yaml.safe_load(Path(model_config).read_text(encoding="utf-8"))
    table = diagnostics.run_diagnostics(idata_path, settings["diagnostics"], outcome, study_set, report)
    atomic.write_csv(out, table)
