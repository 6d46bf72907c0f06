"""The sensitivity layer's fitting rule: every variant of one outcome x study set refitted in one job (one
compilation per model structure), and the main fit's power-scaling prior sensitivity.

One `run_<rule>` per rule, keyword-only parameters named after the rule's files (see steps.runner).
"""
from __future__ import annotations

import logging
from pathlib import Path

import arviz as az
import pandas as pd
import yaml

from timecourse_meta.core import atomic
from timecourse_meta.data import dictionary as dictionary_mod
from timecourse_meta.data import harmonise as harmonise_mod
from timecourse_meta.model import power_scaling as power_mod
from timecourse_meta.model import sensitivity as sens_mod
from timecourse_meta.model import sensitivity_fit as fit_mod

LOG = logging.getLogger(__name__)


def main_analysis(rows: pd.DataFrame, model_settings: dict, study_sheet: pd.DataFrame, study_set: str,
                  outcome: str, spec: dict, main_summary: pd.DataFrame, sensitivity: dict
                  ) -> sens_mod.MainAnalysis:
    """The main analysis as the fit built it (same report selection and model data) plus what variants need."""
    from timecourse_meta.model.build import effective_time_course
    from timecourse_meta.model.model_data import build_model_data

    study_ids = harmonise_mod.study_sets(study_sheet).get(study_set, [])
    main = sens_mod.MainAnalysis(rows=rows, settings=model_settings, study_ids=study_ids, study_sheet=study_sheet,
                                 model_data=None, time_course="", spec=spec,
                                 correlations=list(sensitivity.get("correlation_sensitivity") or []),
                                 secondary_source_pattern=sensitivity.get("secondary_source_pattern"))
    kept = sens_mod.select_rows(rows, main, model_settings, study_ids)
    main.model_data = build_model_data(kept, outcome, study_ids, spec, model_settings, study_set=study_set)
    reported = main_summary["time_course"].dropna().astype(str)
    reported = reported[reported != "none"]
    main.time_course = reported.iloc[0] if len(reported) else effective_time_course(main.model_data, model_settings)
    return main


def run_sensitivity_fit(*, table: str, settings: str, studies: str, dictionary: str, main_summary: str,
                        main_idata: str, sensitivity: dict, outcome: str, study_set: str, variants: str,
                        power_scaling: str) -> pd.DataFrame:
    """Refit every configured variant of one outcome x study set (rows: the main summary as `main`, then each
    variant's summary or status row) and write the main fit's power-scaling table; both files atomically."""
    from timecourse_meta.model.sample import outcome_seed

    model_settings = yaml.safe_load(Path(settings).read_text(encoding="utf-8"))
    spec = dictionary_mod.load(dictionary)[outcome].as_spec()
    study_sheet = pd.read_csv(studies, dtype=str, keep_default_na=False)
    rows = pd.read_csv(table)
    summary = pd.read_csv(main_summary)
    seed = outcome_seed(model_settings["sampling"]["seed"], outcome)
    main = main_analysis(rows, model_settings, study_sheet, study_set, outcome, spec, summary, sensitivity)
    md = main.model_data
    if not sensitivity.get("enabled", True):
        out = fit_mod.not_applicable_rows(summary, outcome, study_set, "sensitivity analyses switched off "
                                                                       "(sensitivity.enabled: false)")
    elif md.status != "pooled":
        out = fit_mod.not_applicable_rows(summary, outcome, study_set, f"nothing pooled to vary ({md.status}: "
                                          f"{md.status_reason or 'one study'})")
    else:
        chosen = sens_mod.expand_variants(sensitivity.get("variants") or [], main)
        LOG.info("%s, %s: %d variants, time course %s, seed %d", outcome, study_set, len(chosen),
                 main.time_course, seed)
        out = fit_mod.run_variants(main, summary, chosen, seed, model_settings.get("diagnostics"))
    atomic.write_csv(variants, out)
    threshold = float(sensitivity.get("power_scaling_threshold", power_mod.DEFAULT_THRESHOLD))
    idata = az.from_netcdf(main_idata)
    ps = power_mod.sensitivity_table(idata, md, model_settings, seed, threshold)
    atomic.write_csv(power_scaling, ps)
    return out
