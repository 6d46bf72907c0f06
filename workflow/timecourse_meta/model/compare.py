"""Time-course comparison by PSIS-LOO and the rule that picks the reported time course."""
from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pandas as pd

from timecourse_meta.model.base import ModelData, resolved_settings
from timecourse_meta.model.build import TIME_COURSES
from timecourse_meta.model.diagnostics import diagnostics_table
from timecourse_meta.model.posterior import pointwise_log_likelihood
from timecourse_meta.model.sample import fit_time_course


TIME_COURSE_RULES = ("fixed", "loo")


def _truthy_flag(x) -> bool:
    return str(x).strip().lower() in ("true", "1", "yes")


def choose_time_course(table: pd.DataFrame, configured: str, rule: str = "loo") -> tuple[str, str]:
    """The time course to report, and why. ``fixed``: the configured one. ``loo``: the configured one
    unless another converged time course has a higher elpd_loo by more than twice the SE of the difference
    (``elpd_diff > 2 dse`` in ArviZ's comparison table, whose differences are to the best-ranked model);
    then the best-ranked one. A difference within 2 SE is not evidence that one shape predicts better, and
    neither is one whose PSIS-LOO estimates are unreliable (ArviZ's ``warning``: a Pareto k above 0.7 for
    some observation of the best or the configured fit, common when each study mean is influential): then the
    configured time course is kept and the reason says so."""
    if rule not in TIME_COURSE_RULES:
        raise ValueError(f"model.time_course_rule must be one of {TIME_COURSE_RULES}, got {rule!r}")
    if rule == "fixed" or table is None or table.empty:
        return configured, f"configured time course {configured} (time_course_rule: fixed)"
    t = table.set_index("time_course")
    if configured not in t.index:
        return configured, f"configured time course {configured} (not in the comparison)"
    best = str(t["elpd_loo"].idxmax())
    if best == configured:
        return configured, f"configured time course {configured} has the highest elpd_loo"
    diff = float(t.loc[best, "elpd_loo"] - t.loc[configured, "elpd_loo"])
    dse = float(t.loc[configured, "dse"]) if "dse" in t else float("nan")
    converged = bool(t.loc[best, "converged"]) if "converged" in t else True
    unreliable = ("warning" in t and (_truthy_flag(t.loc[best, "warning"])
                                       or _truthy_flag(t.loc[configured, "warning"])))
    if np.isfinite(dse) and diff > 2 * dse and converged and unreliable:
        return configured, (f"configured time course {configured} kept: {best} ranks first (elpd_loo higher by "
                            f"{diff:.3g}, 2 x SE {2 * dse:.3g}), but PSIS-LOO is unreliable here (Pareto k "
                            "above 0.7 for some study means)")
    if np.isfinite(dse) and diff > 2 * dse and converged:
        return best, (f"{best} chosen over the configured {configured}: elpd_loo higher by {diff:.3g} > "
                      f"2 x SE of the difference ({dse:.3g})")
    why = "its fit did not converge" if not converged else \
        f"the difference {diff:.3g} is within 2 x SE ({dse:.3g})"
    return configured, f"configured time course {configured} kept: {best} ranks first but {why}"


def comparison_possible(md: ModelData) -> bool:
    if md.kind != "continuous" or md.status != "pooled":
        return False
    follow_up_times = {t for t in md.obs["time_months"] if t > 0}
    return len(md.studies) >= 2 and len(follow_up_times) >= 3


def compare_time_courses(md: ModelData, settings: dict, seed: int, fitted: dict | None = None,
                         models: dict | None = None) -> pd.DataFrame:
    """PSIS-LOO comparison (ArviZ ``compare``; pointwise leave-one-out conditional log-likelihoods of the
    marginal model) of the three time courses, with each fit's worst R-hat and divergences so that a
    comparison resting on an unconverged fit is visible. ``fitted`` (time course -> idata) fits are reused
    and the new ones are added to it (and their PyMC models to ``models``), so the chosen one can be
    augmented and reported without fitting twice."""
    fitted = fitted if fitted is not None else {}
    for tc in TIME_COURSES:
        if tc not in fitted:
            idata, model, _ = fit_time_course(md, settings, seed, tc)
            fitted[tc] = idata
            if models is not None:
                models[tc] = model
    scored = {}
    for tc in TIME_COURSES:
        idata = fitted[tc]
        ll = (idata.log_likelihood if "log_likelihood" in idata.groups()
              else pointwise_log_likelihood(idata, md, settings, tc))
        scored[tc] = az.InferenceData(posterior=idata.posterior, log_likelihood=ll)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = az.compare(scored, ic="loo")
    cmp = cmp.reset_index().rename(columns={"index": "time_course"})
    rows = []
    for tc in cmp["time_course"]:
        diag, failures = diagnostics_table(fitted[tc], resolved_settings(settings)["diagnostics"], md.outcome,
                                           md.study_set)
        par = diag[diag["kind"] == "parameter"]
        rows.append({"time_course": tc, "max_rhat": float(par["rhat"].max()),
                     "min_ess_bulk": float(par["ess_bulk"].min()),
                     "divergences": float(diag.loc[diag["parameter"] == "divergences", "value"].sum()),
                     "converged": not failures})
    out = cmp.merge(pd.DataFrame(rows), on="time_course")
    keep = ["time_course", "rank", "elpd_loo", "p_loo", "elpd_diff", "weight", "se", "dse", "warning",
            "max_rhat", "min_ess_bulk", "divergences", "converged"]
    return out[[c for c in keep if c in out.columns]]
