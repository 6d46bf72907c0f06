"""The model stage's rules: one outcome's fit in one study set, and its convergence gate.

One `run_<rule>` per rule, keyword-only parameters named after the rule's files (see steps.runner).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from timecourse_meta.core import atomic
from timecourse_meta.data import dictionary as dictionary_mod
from timecourse_meta.data import harmonise as harmonise_mod
from timecourse_meta.data import linkage


def run_fit_model(*, table: str, settings: str, studies: str, dictionary: str, outcome: str, study_set: str,
                  idata: str, summary: str, dropped: str | None = None) -> pd.DataFrame:
    """Fit one outcome in one study set; the seed is derived from the configured base seed and the outcome.

    Before the model data are built, each patient group is counted once (`linkage.select_reports`, rule from
    config `reports.rule`); the report rows left out are written to `dropped` (default: dropped_reports.csv
    beside the summary), each with the report used instead. Binary outcomes are selected in the model's time bins.
    """
    from timecourse_meta.model import fit as models
    from timecourse_meta.model.model_data import resolved_settings

    model_settings = yaml.safe_load(Path(settings).read_text(encoding="utf-8"))
    spec = dictionary_mod.load(dictionary)[outcome].as_spec()
    seed = models.outcome_seed(model_settings["sampling"]["seed"], outcome)
    study_sheet = pd.read_csv(studies, dtype=str, keep_default_na=False)
    study_ids = harmonise_mod.study_sets(study_sheet).get(study_set, [])
    rows = pd.read_csv(table)
    rule = (model_settings.get("reports") or {}).get("rule", linkage.DEFAULT_RULE)
    resolved = resolved_settings(model_settings)
    grid = resolved["visit_grid_months"] if spec["kind"] == "binary" else None
    kept, left_out = linkage.select_reports(rows, study_sheet, study_ids, rule=rule, visit_grid=grid,
                                            tolerance=resolved["binary_time_tolerance_months"])
    result = models.run_model(kept, {outcome: spec}, model_settings, outcome, study_set, study_ids, idata,
                              summary, seed=seed)
    atomic.write_csv(dropped or Path(summary).with_name("dropped_reports.csv"), left_out)
    return result


def run_diagnose(*, idata: str, settings: str, outcome: str, study_set: str, logs: dict, out: str) -> None:
    """The convergence gate: the gate table is always written (kept as the job's second log, `report`); `out`
    only if the model passes."""
    from timecourse_meta.model import diagnostics

    model_settings = yaml.safe_load(Path(settings).read_text(encoding="utf-8"))
    table = diagnostics.run_diagnostics(idata, model_settings["diagnostics"], outcome, study_set, logs["report"])
    atomic.write_csv(out, table)
