"""Refit one outcome x study set under each sensitivity variant, one nutpie compilation per model structure.

nutpie's compilation costs 12-25 s per model and is not cached across processes, while a variant's sampling
costs a few seconds; so every variant of one outcome runs in one process and variants whose model has the same
structure (``build.structure_key``: time course, heterogeneity family, sampled correlations, dense or by block)
share one compilation through ``compiled.with_data(**data_updates(...))`` (data, matrices and prior parameters
are ``pm.Data``: on the dense likelihood whatever the number of rows; by study block the blocks' layout is part
of the structure, so there a variant without a study compiles its own). Every fit passes the main fit's convergence gate
(``diagnostics.diagnostics_table``); a variant that fails it is recorded as ``failed_gate`` with the reason and
its numbers are not written.
"""
from __future__ import annotations

import logging
import time

import pandas as pd

from timecourse_meta.model import sample
from timecourse_meta.model.base import resolved_settings
from timecourse_meta.model.build import build_model, effective_time_course, structure_key
from timecourse_meta.model.diagnostics import diagnostics_table
from timecourse_meta.model.fit import fit_outcome
from timecourse_meta.model.model_data import build_model_data
from timecourse_meta.model.posterior import augment_idata
from timecourse_meta.model.sensitivity import MainAnalysis, Variant, VariantInput, apply_variant, select_rows
from timecourse_meta.model.summary import SUMMARY_COLUMNS, summarise

LOG = logging.getLogger(__name__)

VARIANT_COLUMNS = ["variant", "variant_group", "variant_label", "variant_status", "variant_note"]
COLUMNS = VARIANT_COLUMNS + SUMMARY_COLUMNS


class CompiledModels:
    """One nutpie compilation per model structure; ``compiled_keys`` lists the structures compiled, in order."""

    def __init__(self):
        self._cache: dict[tuple, object] = {}
        self.compiled_keys: list[tuple] = []

    def get(self, md, settings: dict, tc: str):
        key = structure_key(md, settings, tc)
        if key not in self._cache:
            t0 = time.perf_counter()
            self._cache[key] = sample.compile_model(build_model(md, settings, tc), settings)
            self.compiled_keys.append(key)
            LOG.info("compiled model structure %s in %.1f s", key, time.perf_counter() - t0)
        return self._cache[key]


def fit_variant(md, settings: dict, seed: int, tc: str, models: CompiledModels):
    """The variant's idata: sampled with the structure's shared compilation and augmented as the main fit's
    (``fit.fit_outcome`` without the time-course comparison); models without pooling are not sampled."""
    settings = resolved_settings(settings)
    if md.status != "pooled":
        return fit_outcome(md, settings, seed, compare=False)
    tc = effective_time_course(md, settings, tc)
    compiled = models.get(md, settings, tc)
    idata, model, timings = sample.fit_time_course(md, settings, seed, tc, compiled=compiled)
    with sample.limited_blas_threads():
        idata = augment_idata(idata, model, md, settings, seed, time_course=tc)
    idata.constant_data.attrs.update(timings)
    idata.constant_data.attrs["time_course_note"] = "sensitivity variant (no comparison)"
    return idata


def status_rows(variant: Variant, status: str, note: str, outcome: str, study_set: str) -> pd.DataFrame:
    """One row for a variant without numbers (not refitted, or failed the gate)."""
    row = {c: pd.NA for c in COLUMNS}
    row.update(variant=variant.id, variant_group=variant.group, variant_label=variant.label,
               variant_status=status, variant_note=note, outcome=outcome, study_set=study_set)
    return pd.DataFrame([row], columns=COLUMNS)


def with_variant(summary: pd.DataFrame, variant: Variant, status: str, note: str) -> pd.DataFrame:
    out = summary.reindex(columns=SUMMARY_COLUMNS).copy()
    for i, (k, v) in enumerate(zip(VARIANT_COLUMNS, (variant.id, variant.group, variant.label, status, note))):
        out.insert(i, k, v)
    return out


def main_rows(main_summary: pd.DataFrame) -> pd.DataFrame:
    """The main fit's own summary as the ``main`` variant (not refitted)."""
    return with_variant(main_summary, Variant("main", "main", "Main analysis"), "fitted", "")


def _same_rows(kept: pd.DataFrame, main_kept: pd.DataFrame) -> bool:
    key = ["analysis_id", "mean", "sd", "se", "n"]
    cols = [c for c in key if c in kept and c in main_kept]
    a = kept[cols].astype(str).sort_values(cols).reset_index(drop=True)
    b = main_kept[cols].astype(str).sort_values(cols).reset_index(drop=True)
    return a.equals(b)


def run_one(variant: Variant, main: MainAnalysis, main_kept: pd.DataFrame, seed: int, thresholds: dict,
            models: CompiledModels) -> pd.DataFrame:
    """One variant's rows: its summary if it was fitted and passed the gate, else one status row."""
    md0 = main.model_data
    spec: VariantInput = apply_variant(variant, main)
    if spec.status:
        return status_rows(variant, spec.status, spec.note, md0.outcome, md0.study_set)
    kept = select_rows(spec.rows, main, spec.settings, spec.study_ids)
    if variant.group == "data" and _same_rows(kept, main_kept) and spec.study_ids == main.study_ids:
        return status_rows(variant, "same_as_main", "changes no row of this outcome's analysis", md0.outcome,
                           md0.study_set)
    md = build_model_data(kept, md0.outcome, spec.study_ids, main.spec, spec.settings, study_set=md0.study_set)
    if md.status in ("no_data", "not_modelled"):
        return status_rows(variant, "not_applicable", f"nothing left to analyse: {md.status_reason}",
                           md0.outcome, md0.study_set)
    idata = fit_variant(md, spec.settings, seed, spec.time_course, models)
    _, failures = diagnostics_table(idata, thresholds, md0.outcome, md0.study_set)
    if failures:
        return status_rows(variant, "failed_gate", "convergence gate failed: " + "; ".join(failures),
                           md0.outcome, md0.study_set)
    note = "" if md.status == "pooled" else f"not pooled ({md.status}): {md.status_reason}"
    return with_variant(summarise(idata, md, spec.settings), variant, "fitted", note)


def run_variants(main: MainAnalysis, main_summary: pd.DataFrame, variants: list[Variant], seed: int,
                 thresholds: dict | None, models: CompiledModels | None = None) -> pd.DataFrame:
    """The main rows, then every variant's rows (COLUMNS); each variant logged with its time and status."""
    models = models or CompiledModels()
    main_kept = select_rows(main.rows, main, main.settings, main.study_ids)
    parts = [main_rows(main_summary)]
    t_all = time.perf_counter()
    for v in variants:
        t0 = time.perf_counter()
        rows = run_one(v, main, main_kept, seed, thresholds or {}, models)
        LOG.info("variant %s: %s in %.1f s%s", v.id, rows["variant_status"].iloc[0], time.perf_counter() - t0,
                 f" ({rows['variant_note'].iloc[0]})" if isinstance(rows["variant_note"].iloc[0], str)
                 and rows["variant_note"].iloc[0] else "")
        parts.append(rows)
    LOG.info("%d variants in %.1f s, %d compilations", len(variants), time.perf_counter() - t_all,
             len(models.compiled_keys))
    return pd.concat(parts, ignore_index=True)[COLUMNS]


def not_applicable_rows(main_summary: pd.DataFrame, outcome: str, study_set: str, reason: str) -> pd.DataFrame:
    """An outcome with nothing to pool: its main rows and one row saying why no variant was run."""
    v = Variant("all_variants", "main", "Sensitivity analyses")
    return pd.concat([main_rows(main_summary), status_rows(v, "not_applicable", reason, outcome, study_set)],
                     ignore_index=True)[COLUMNS]
