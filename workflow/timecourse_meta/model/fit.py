"""One outcome x study set from data to files: build the model data, fit (with the time-course comparison),
summarise, and write the idata (NetCDF) and summary (CSV) atomically. The step the ``fit`` rule runs."""
from __future__ import annotations

import logging
import os
import time

import arviz as az
import pandas as pd

from timecourse_meta.core import atomic
from timecourse_meta.model.base import ModelData, resolved_settings
from timecourse_meta.model.build import effective_time_course
from timecourse_meta.model.compare import choose_time_course, compare_time_courses, comparison_possible
from timecourse_meta.model.model_data import build_model_data
from timecourse_meta.model.posterior import augment_idata, bookkeeping_idata
from timecourse_meta.model.sample import fit_time_course, limited_blas_threads, outcome_seed
from timecourse_meta.model.summary import summarise

LOG = logging.getLogger(__name__)


FIT_STATUS_STUDY_ESTIMATE = "study_estimate"


def fit_outcome(model_data: ModelData, settings: dict, seed: int, *, time_course: str | None = None,
                compare: bool | None = None) -> az.InferenceData:
    """Fit one outcome x study set with nutpie (chains/draws/tune/target_accept/progress bar from
    ``settings["sampling"]``, seed ``seed``: same inputs + seed = identical numbers).

    Returns InferenceData with posterior (hyperparameters from NUTS; ``delta``, ``study_delta``, ``baseline``
    drawn exactly given each draw), sample_stats, prior, prior_predictive, posterior_predictive,
    observed_data, log_likelihood, predictions (a new study) and constant_data (bookkeeping tables and
    metadata as JSON strings in its attrs). Outcomes without poolable data, and thin evidence (one study, or a
    binary outcome without a follow-up duration that two studies share), are not sampled: the idata holds
    only constant_data (``attrs["fit_status"]`` says why) and ``summarise`` reports the study's own numbers.
    With ``compare_time_courses`` and enough data (>= 2 studies and >= 3 distinct follow-up times) the three
    time courses are fitted once each and compared by PSIS-LOO (``constant_data.attrs["loo_comparison_json"]``);
    ``time_course_rule`` (``choose_time_course``) decides which one is reported, and its reason is in
    ``attrs["time_course_note"]``."""
    md = model_data
    settings = resolved_settings(settings)
    if md.status not in ("pooled", "single_study"):
        return bookkeeping_idata(md, settings, fit_status=md.status)
    if md.status == "single_study":
        return bookkeeping_idata(md, settings, fit_status=FIT_STATUS_STUDY_ESTIMATE)
    configured = effective_time_course(md, settings, time_course)
    idata, model, timings = fit_time_course(md, settings, seed, configured)
    tc, table = configured, None
    note = "configured time course (no comparison)" if md.kind == "continuous" else ""
    do_compare = settings["compare_time_courses"] if compare is None else compare
    if do_compare and comparison_possible(md):
        models = {configured: model}
        fits = {configured: idata}
        table = compare_time_courses(md, settings, seed, fitted=fits, models=models)
        tc, note = choose_time_course(table, configured, settings.get("time_course_rule", "loo"))
        idata, model = fits[tc], models[tc]
    elif do_compare and md.kind == "continuous":
        note = "configured time course; comparison needs >= 2 studies and >= 3 follow-up times"
    t2 = time.perf_counter()
    with limited_blas_threads():
        idata = augment_idata(idata, model, md, settings, seed, time_course=tc)
    meta = idata.constant_data.attrs
    meta.update(timings)
    meta["seconds_postprocess"] = round(time.perf_counter() - t2, 3)
    meta["time_course_configured"] = configured
    meta["time_course_note"] = note
    if table is not None:
        meta["loo_comparison_json"] = table.to_json(orient="records")
    return idata


def outcome_spec(outcome_dictionary, outcome: str) -> dict:
    """One outcome's spec: from a mapping (outcome -> spec), or read from the dictionary file with its loader
    (``data.dictionary.load``: schema-checked, errors name the file, outcome and key)."""
    if isinstance(outcome_dictionary, dict):
        specs = outcome_dictionary.get("outcomes", outcome_dictionary)
        spec = specs.get(outcome)
    else:
        from timecourse_meta.data import dictionary as dictionary_mod
        found = dictionary_mod.load(outcome_dictionary).get(outcome)
        spec = found.as_spec() if found is not None else None
    if spec is None:
        raise KeyError(f"outcome {outcome!r} is not in the outcome dictionary")
    return spec


def write_idata(idata: az.InferenceData, path: str) -> None:
    with atomic.atomic_path(path) as tmp:
        idata.to_netcdf(str(tmp))


def write_csv(df: pd.DataFrame, path: str) -> None:
    atomic.write_csv(path, df)


def run_model(table_csv, outcome_dictionary_yaml_or_dict, settings: dict, outcome: str, study_set: str,
              study_ids: list[str], idata_out: str, summary_out: str, seed: int | None = None) -> pd.DataFrame:
    """Read the analysis table, fit, write the idata (NetCDF) and the summary (CSV), both atomically.
    ``seed`` defaults to ``outcome_seed(settings.get("seed", 20231127), outcome)``."""
    table = pd.read_csv(table_csv) if isinstance(table_csv, (str, os.PathLike)) else table_csv
    spec = outcome_spec(outcome_dictionary_yaml_or_dict, outcome)
    md = build_model_data(table, outcome, study_ids, spec, settings, study_set=study_set)
    resolved = resolved_settings(settings)
    if seed is None:
        seed = outcome_seed(int(resolved.get("seed", 20231127)), outcome)
    s = resolved["sampling"]
    LOG.info("%s, %s: %s (%s); %d studies, %d rows; sampling %s chains x %s draws after %s tuning steps, seed %d",
             outcome, study_set, md.status, md.status_reason or "-", len(md.studies), md.n_obs, s.get("chains"),
             s.get("draws"), s.get("tune"), seed)
    t0 = time.perf_counter()
    idata = fit_outcome(md, settings, seed)
    summary = summarise(idata, md, settings)
    write_idata(idata, idata_out)
    write_csv(summary, summary_out)
    LOG.info("%s, %s: done in %.1f s (%s)", outcome, study_set, time.perf_counter() - t0,
             ", ".join(f"{k} {v:g} s" for k, v in idata.constant_data.attrs.items()
                       if k.startswith("seconds_") and isinstance(v, (int, float))) if "constant_data" in
             idata.groups() else "no sampling")
    return summary
