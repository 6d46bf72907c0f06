"""The data stage's rules: config -> validated sheets -> harmonised analysis table -> per-outcome inputs.

One `run_<rule>` per rule, keyword-only parameters named after the rule's files (see steps.runner). Each reads
its inputs, calls tested functions and writes atomically, so a failed step leaves no half-written output.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from timecourse_meta.core import atomic
from timecourse_meta.core import config as config_mod
from timecourse_meta.data import outputs
from timecourse_meta.data.incremental import write_given


def run_resolve_config(*, snakemake_config: dict, fingerprint: str, out: str) -> None:
    """Write the resolved config of Snakemake's merged config (config.yaml, --configfile, --config); the rule
    reruns exactly when the fingerprint of its resolved text changes (see the rule in data.smk)."""
    config_mod.write_snakemake_resolved(snakemake_config, out, fingerprint)


def run_validate(*, settings: str | dict, report: str, warnings: str | None = None,
                 tables_dir: str | None = None) -> None:
    """Validate the raw sheets the settings name (validate_settings() as YAML text or a mapping, or the path of a
    resolved config); write the report, warnings.csv and, when `tables_dir` is given, the typed copies (the
    workflow writes those with the validated_sheet rule). A sheet that cannot be read or has problems writes
    nothing."""
    if isinstance(settings, Path) or (isinstance(settings, str) and "\n" not in settings
                                      and Path(settings).is_file()):
        cfg = config_mod.load(settings)
    else:
        cfg = yaml.safe_load(settings) if isinstance(settings, str) else settings
    csvs, report_text, warnings_text = outputs.validated_texts(cfg)
    for name, text in csvs.items() if tables_dir else ():
        atomic.write_text(Path(tables_dir) / f"{name}.csv", text)
    if warnings:
        atomic.write_text(warnings, warnings_text)
    atomic.write_text(report, report_text)


def run_harmonise(*, settings: str | dict, studies: str, table: str, coverage: str) -> None:
    """Harmonise the validated tables (in the folder of `studies`); `settings` is harmonise_settings() as YAML
    text or a mapping, or the path of a resolved config."""
    if isinstance(settings, str) and "\n" not in settings and Path(settings).is_file():
        settings = outputs.harmonise_settings(config_mod.load(settings))
    elif isinstance(settings, str):
        settings = yaml.safe_load(settings)
    validated = outputs.read_validated(str(Path(studies).parent), names=outputs.HARMONISED_FROM)
    table_text, coverage_text = outputs.harmonised_texts(settings, validated)
    atomic.write_text(table, table_text)
    atomic.write_text(coverage, coverage_text)


def run_validated_sheet(*, text: str | None, out: str, error: str | None = None,
                        what: str = "the validated sheet") -> None:
    """One typed sheet, from the text computed when the workflow was parsed (data.incremental)."""
    write_given(text, out, error, what)


def run_outcome_slice(*, text: str | None, out: str, error: str | None = None,
                      what: str = "the outcome's rows") -> None:
    """One outcome's rows of the analysis table: outcome_slice_text of the table the harmonise job writes,
    computed when the workflow was parsed (data.incremental)."""
    write_given(text, out, error, what)


def run_model_studies(*, text: str | None, out: str, error: str | None = None,
                      what: str = "the study columns the models read") -> None:
    """The study columns the models read, from the text computed when the workflow was parsed."""
    write_given(text, out, error, what)


def run_model_config(*, settings: str, out: str) -> None:
    """Write one outcome's model settings, the YAML text of model.settings.model_settings() the rule receives as
    a param (so the job reruns exactly when that outcome's settings change)."""
    yaml.safe_load(settings)  # a param that is not YAML is a bug here, not a file for the fit to trip over
    atomic.write_text(out, settings)
