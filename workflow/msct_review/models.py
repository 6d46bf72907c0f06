"""Bayesian hierarchical time-course models (PyMC, sampled with nutpie) for one outcome and study set.

Continuous outcomes (analysis scale from the outcome dictionary; see ``model_data``), study i, visit grid
t_0 = 0 < t_1 < ... < t_K, likelihood rows j (arm-level means of the MSCT arm):

    absolute rows   ybar_j = beta_{i,c(j)} + delta_{i,t(j)} + e_j
    change rows     d_j    =                 delta_{i,t(j)} + e_j          (delta_{i,0} = 0)
    e ~ MvNormal(0, Sigma(rho_w)),  Sigma_jk = corr_w(t_j, t_k) s_j s_k min(n_j, n_k)/(n_j n_k) within a
                                               study's absolute block or its change block, 0 otherwise
    corr_w = rho_w (CS, different visits) or rho_w ** (|t - t'| / lag_months) (AR(1)); rho_w ~ Beta(a, b)
    delta_{i,.} = Delta(.) + u_i,   u_i = tau * chol(R(rho_b)) z_i,  z_i ~ N(0, I_K)     (non-centred)
    R(rho_b): AR(1) rho_b ** (|t - t'| / lag_months) or CS; rho_b ~ Beta(a, b); tau ~ heterogeneity prior
    beta_{i,c} = ybar_{i,c,0} + se_{i,c,0} * z^beta_{i,c},  z^beta ~ N(0, baseline_sd / se_{i,c,0})
             (i.e. beta ~ N(observed baseline mean, baseline_sd^2): a weak prior on a nuisance level)

Time course Delta(t) (``settings["time_course"]``):
    random_walk       Delta(t_1) = delta_sd * z_1;  Delta(t_k) = Delta(t_{k-1}) + step_sd * sqrt(gap_k / L) * z_k
                      (L = ``random_walk_reference_months``, default 3: step_sd is the SD of the change in
                      Delta over three months; a Brownian motion observed on an irregular grid, so visits
                      0.92 and 1 month apart are nearly tied)
    piecewise_linear  Delta(t) = a * min(t, kappa)/kappa + c * max(t - kappa, 0)/(t_K - kappa),
                      a, c ~ N(0, delta_sd^2) (Delta at the knot and the change from knot to last visit),
                      kappa = ``piecewise_knot_months`` (default 3)
    emax              Delta(t) = E * t / (ET50 + t),  E ~ N(0, delta_sd^2),
                      ET50 ~ LogNormal(log(``emax_et50_median_months`` = 2), 1)
    independent       (one study only) Delta(t_k) = delta_sd * z_k, no tau: the study's own estimate.
A new study's change (prediction interval): Delta + tau * chol(R) z_new, drawn after sampling with a fixed
seed and stored in the ``predictions`` group.

Binary outcomes (events/total of the MSCT arm, time bins on the config grid, see ``model_data``):
    events_j ~ Binomial(total_j, logit^-1(mu_{b(j)} + tau * z_j)),  mu_b ~ N(0, mu_sd^2), z_j ~ N(0, 1)
    (one study: logit p_j = mu_{b(j)}, no tau: the study's own proportion). tau is shared across bins.

Pointwise log-likelihood (for PSIS-LOO): the MvNormal likelihood does not factorise, so ``log_likelihood``
holds log p(y_j | y_-j, theta), the leave-one-out conditional densities of Buerkner, Gabry and Vehtari (2021)
(log p = -log(2 pi)/2 + log(g_jj)/2 - c_j^2 / (2 g_jj), g = Sigma^-1, c = g (y - mu)), computed in numpy.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import time
import zlib
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from .model_data import (
    LABEL_BETWEEN_ARM, LABEL_INTERPOLATED, LABEL_MEDIAN_ONLY, LABEL_POOLED, LABEL_POOLED_ONE_STUDY,
    LABEL_SINGLE, ModelData, build_model_data, correlation_from_lag, resolved_settings,
)

TIME_COURSES = ("random_walk", "piecewise_linear", "emax")
HETEROGENEITY_FAMILIES = ("half_normal", "half_cauchy", "half_student_t", "exponential")
R_JITTER = 1e-6

# ---------------------------------------------------------------------------------------------------------
# Priors
# ---------------------------------------------------------------------------------------------------------
#: Default priors per outcome of the outcome dictionary, on the clinical scale of the stated unit (for
#: log-scale outcomes: the log ratio of means, unit-free). Each outcome has one or more variants; the first
#: whose ``analysis_scale`` (and, for identity-scale outcomes, ``unit``) matches the outcome dictionary is
#: used; otherwise the data-derived rule of ``resolve_priors`` applies. Meaning of the keys:
#:   delta_sd    SD of the normal prior on the pooled change Delta at the first visit (random walk) / at the
#:               knot / the Emax asymptote: 95% of prior mass within +/- 2 delta_sd.
#:   tau_scale   scale of the heterogeneity prior (half-normal: 95% of prior mass below 2 * tau_scale).
#:   step_sd     SD of the change in Delta over three months (random walk).
#:   baseline_sd SD of the weak prior on each study's baseline level, centred at its observed baseline mean.
DEFAULT_PRIORS: dict[str, list[dict[str, Any]]] = {
    "proteinuria_24h": [{
        "analysis_scale": "log", "unit": "g/24h", "delta_sd": 1.0, "tau_scale": 0.5, "step_sd": 0.5,
        "baseline_sd": 2.0,
        "rationale": "log ratio of means: +/-2 spans a 7-fold fall or rise; between-study SD of the log ratio "
                     "rarely exceeds 1 (ratio x/÷ 2.7)"}],
    "sledai": [{
        "analysis_scale": "identity", "unit": "points", "delta_sd": 10.0, "tau_scale": 4.0, "step_sd": 5.0,
        "baseline_sd": 15.0,
        "rationale": "SLEDAI-2K 0-105, refractory LN baselines 10-20: a change of +/-20 points is the "
                     "plausible extreme; heterogeneity of a few points"}],
    "renal_bilag": [{
        "analysis_scale": "identity", "unit": "points", "delta_sd": 6.0, "tau_scale": 3.0, "step_sd": 3.0,
        "baseline_sd": 10.0,
        "rationale": "numeric BILAG renal score (A=12, B=8, C=1): a full A->C improvement is about 11"}],
    "gfr": [{
        "analysis_scale": "identity", "unit": "mL/min/1.73m2", "delta_sd": 20.0, "tau_scale": 10.0,
        "step_sd": 10.0, "baseline_sd": 50.0,
        "rationale": "changes beyond +/-40 mL/min/1.73 m2 within a year are implausible"},
        {"analysis_scale": "log", "unit": "", "delta_sd": 0.5, "tau_scale": 0.25, "step_sd": 0.25,
         "baseline_sd": 2.0, "rationale": "log ratio: +/-1 spans a 2.7-fold change"}],
    "egfr": [{
        "analysis_scale": "identity", "unit": "mL/min/1.73m2", "delta_sd": 20.0, "tau_scale": 10.0,
        "step_sd": 10.0, "baseline_sd": 50.0,
        "rationale": "as gfr"},
        {"analysis_scale": "log", "unit": "", "delta_sd": 0.5, "tau_scale": 0.25, "step_sd": 0.25,
         "baseline_sd": 2.0, "rationale": "log ratio: +/-1 spans a 2.7-fold change"}],
    "creatinine_clearance": [{
        "analysis_scale": "identity", "unit": "mL/min", "delta_sd": 20.0, "tau_scale": 10.0, "step_sd": 10.0,
        "baseline_sd": 50.0, "rationale": "as gfr"},
        {"analysis_scale": "log", "unit": "", "delta_sd": 0.5, "tau_scale": 0.25, "step_sd": 0.25,
         "baseline_sd": 2.0, "rationale": "log ratio: +/-1 spans a 2.7-fold change"}],
    "serum_creatinine": [
        {"analysis_scale": "log", "unit": "", "delta_sd": 0.5, "tau_scale": 0.25, "step_sd": 0.25,
         "baseline_sd": 2.0, "rationale": "log ratio: +/-1 spans a 2.7-fold change"},
        {"analysis_scale": "identity", "unit": "umol/L", "delta_sd": 50.0, "tau_scale": 25.0, "step_sd": 25.0,
         "baseline_sd": 200.0, "rationale": "changes beyond +/-100 umol/L are the plausible extreme"},
        {"analysis_scale": "identity", "unit": "mg/dL", "delta_sd": 0.6, "tau_scale": 0.3, "step_sd": 0.3,
         "baseline_sd": 2.5, "rationale": "as umol/L divided by 88.42"}],
    "anti_dsdna": [
        {"analysis_scale": "log", "unit": "", "delta_sd": 1.0, "tau_scale": 0.5, "step_sd": 0.5,
         "baseline_sd": 3.0, "rationale": "assay-dependent units: the log ratio is comparable across assays"}],
    "c3": [
        {"analysis_scale": "identity", "unit": "g/L", "delta_sd": 0.4, "tau_scale": 0.2, "step_sd": 0.2,
         "baseline_sd": 1.0, "rationale": "normal range 0.9-1.8 g/L; active LN 0.4-0.8"},
        {"analysis_scale": "identity", "unit": "mg/dL", "delta_sd": 40.0, "tau_scale": 20.0, "step_sd": 20.0,
         "baseline_sd": 100.0, "rationale": "as g/L x 100"},
        {"analysis_scale": "log", "unit": "", "delta_sd": 0.5, "tau_scale": 0.25, "step_sd": 0.25,
         "baseline_sd": 2.0, "rationale": "log ratio"}],
    "c4": [
        {"analysis_scale": "identity", "unit": "g/L", "delta_sd": 0.1, "tau_scale": 0.05, "step_sd": 0.05,
         "baseline_sd": 0.3, "rationale": "normal range 0.1-0.4 g/L"},
        {"analysis_scale": "identity", "unit": "mg/dL", "delta_sd": 10.0, "tau_scale": 5.0, "step_sd": 5.0,
         "baseline_sd": 30.0, "rationale": "as g/L x 100"},
        {"analysis_scale": "log", "unit": "", "delta_sd": 0.7, "tau_scale": 0.35, "step_sd": 0.35,
         "baseline_sd": 2.0, "rationale": "log ratio: C4 can double"}],
    "serum_albumin": [
        {"analysis_scale": "identity", "unit": "g/L", "delta_sd": 10.0, "tau_scale": 4.0, "step_sd": 5.0,
         "baseline_sd": 20.0, "rationale": "nephrotic LN 20-30 g/L, normal 35-50: +/-20 g/L is the extreme"},
        {"analysis_scale": "identity", "unit": "g/dL", "delta_sd": 1.0, "tau_scale": 0.4, "step_sd": 0.5,
         "baseline_sd": 2.0, "rationale": "as g/L / 10"}],
}
#: Binary outcomes (any name): logit of the proportion.
DEFAULT_BINARY_PRIOR = {"mu_sd": 1.5, "tau_scale": 1.0,
                        "rationale": "N(0, 1.5^2) on the logit is nearly flat on (0.05, 0.95); half-normal(1) "
                                     "heterogeneity allows odds to differ by a factor of e^2 between studies"}
#: Unknown continuous outcomes: multiples of the typical per-patient SD on the analysis scale (s_ref, the
#: median SD of the baseline/absolute rows): a change of 1 s_ref is large and 2 s_ref is extreme.
DATA_DERIVED_MULTIPLIERS = {"delta_sd": 1.0, "tau_scale": 0.5, "step_sd": 0.5, "baseline_sd": 3.0}
#: Unknown log- or logit-scale outcomes: unit-free defaults.
RATIO_SCALE_DEFAULTS = {"delta_sd": 1.0, "tau_scale": 0.5, "step_sd": 0.5, "baseline_sd": 3.0}


def _norm_unit(u: str) -> str:
    return (u or "").lower().replace(" ", "").replace("µ", "u").replace("μ", "u").replace("²", "2")


def resolve_priors(md: ModelData, settings: dict) -> dict[str, Any]:
    """The numbers the model uses, each with its source. Order: ``settings["priors"][outcome]`` (non-null
    keys) > ``DEFAULT_PRIORS`` (matching scale/unit) > ``settings["priors"]["default"]`` (non-null keys) >
    the data-derived rule (identity scale) or the unit-free ratio defaults (log/logit scale)."""
    settings = resolved_settings(settings)
    cfg_all = settings.get("priors") or {}
    cfg = {k: v for k, v in (cfg_all.get(md.outcome) or {}).items() if v is not None}
    cfg_default = {k: v for k, v in (cfg_all.get("default") or {}).items() if v is not None}
    out: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if md.kind == "binary":
        keys = ("mu_sd", "tau_scale")
        for k in keys:
            if k in cfg:
                out[k], sources[k] = float(cfg[k]), "config (outcome)"
            else:
                out[k], sources[k] = DEFAULT_BINARY_PRIOR[k], "DEFAULT_BINARY_PRIOR"
    else:
        keys = ("delta_sd", "tau_scale", "step_sd", "baseline_sd")
        variant = None
        for v in DEFAULT_PRIORS.get(md.outcome, []):
            if v["analysis_scale"] != md.analysis_scale:
                continue
            if md.analysis_scale == "identity" and _norm_unit(v["unit"]) != _norm_unit(md.unit):
                continue
            variant = v
            break
        for k in keys:
            if k in cfg:
                out[k], sources[k] = float(cfg[k]), "config (outcome)"
            elif variant is not None:
                out[k], sources[k] = float(variant[k]), f"DEFAULT_PRIORS[{md.outcome}]"
            elif k in cfg_default:
                out[k], sources[k] = float(cfg_default[k]), "config (default)"
            elif md.analysis_scale in ("log", "logit"):
                out[k], sources[k] = RATIO_SCALE_DEFAULTS[k], f"unit-free {md.analysis_scale}-scale default"
            else:
                ref = md.reference_sd if np.isfinite(md.reference_sd) and md.reference_sd > 0 else 1.0
                out[k] = DATA_DERIVED_MULTIPLIERS[k] * ref
                sources[k] = f"data-derived: {DATA_DERIVED_MULTIPLIERS[k]} x typical per-patient SD ({ref:.4g})"
    het = settings.get("heterogeneity_prior") or {}
    out["tau_family"] = het.get("family", "half_normal")
    out["tau_nu"] = float(het.get("nu", 3.0))
    if out["tau_family"] not in HETEROGENEITY_FAMILIES:
        raise ValueError(f"heterogeneity_prior.family must be one of {HETEROGENEITY_FAMILIES}")
    for key in ("within_study_correlation", "between_visit_correlation"):
        pr = (settings.get(key) or {}).get("prior") or {}
        out[key] = {"alpha": float(pr.get("alpha", 2.0)), "beta": float(pr.get("beta", 2.0)),
                    "structure": (settings.get(key) or {}).get("structure", "cs"),
                    "lag_months": float((settings.get(key) or {}).get("lag_months", 3.0))}
    out["sources"] = sources
    return out


def tau_prior_quantiles(priors: dict, qs=(0.5, 0.025, 0.975)) -> list[float]:
    from scipy import stats
    scale, fam = priors["tau_scale"], priors["tau_family"]
    if fam == "half_normal":
        return [float(stats.halfnorm.ppf(q, scale=scale)) for q in qs]
    if fam == "half_cauchy":
        return [float(stats.halfcauchy.ppf(q, scale=scale)) for q in qs]
    if fam == "half_student_t":
        return [float(stats.t.ppf((1 + q) / 2, priors["tau_nu"]) * scale) for q in qs]
    return [float(stats.expon.ppf(q, scale=scale)) for q in qs]


def _tau_rv(pm, priors):
    fam, scale = priors["tau_family"], priors["tau_scale"]
    if fam == "half_normal":
        return pm.HalfNormal("tau", sigma=scale)
    if fam == "half_cauchy":
        return pm.HalfCauchy("tau", beta=scale)
    if fam == "half_student_t":
        return pm.HalfStudentT("tau", nu=priors["tau_nu"], sigma=scale)
    return pm.Exponential("tau", lam=1.0 / scale)


# ---------------------------------------------------------------------------------------------------------
# Model construction
# ---------------------------------------------------------------------------------------------------------
def effective_time_course(md: ModelData, settings: dict, time_course: str | None = None) -> str:
    if md.status == "single_study":
        return "independent"
    tc = time_course or resolved_settings(settings)["time_course"]
    if tc not in TIME_COURSES:
        raise ValueError(f"time_course must be one of {TIME_COURSES}, got {tc!r}")
    return tc


def _lag_between(t: np.ndarray, cfg: dict) -> np.ndarray:
    dt = np.abs(t[:, None] - t[None, :])
    if cfg["structure"] == "cs":
        return (dt > 0).astype(float)
    if cfg["structure"] == "ar1":
        return dt / cfg["lag_months"]
    raise ValueError("between_visit_correlation.structure must be 'cs' or 'ar1'")


def build_model(md: ModelData, settings: dict, time_course: str | None = None):
    """The PyMC model of one outcome (continuous or binary). Observed data and data-dependent constants are
    ``pm.Data`` so that one compiled model can be reused with ``compiled.with_data(**data_updates(md))`` for
    another data set of the same design."""
    settings = resolved_settings(settings)
    if md.status not in ("pooled", "single_study"):
        raise ValueError(f"{md.outcome}: nothing to model ({md.status}: {md.status_reason})")
    if md.kind == "binary":
        return _build_binary_model(md, settings)
    return _build_continuous_model(md, settings, effective_time_course(md, settings, time_course))


def data_updates(md: ModelData) -> dict[str, np.ndarray]:
    """Values of the model's ``pm.Data`` containers for this data set (for ``compiled.with_data``)."""
    if md.kind == "binary":
        return {"events": md.obs["events"].to_numpy(float), "total": md.obs["total"].to_numpy(float)}
    out = {"y_obs": md.obs["y"].to_numpy(float), "cov_scale": md.A.astype(float),
           "lag_within": md.lag_within.astype(float)}
    if md.levels:
        out["level_centre"] = md.level_centre.astype(float)
        out["level_se"] = md.level_se.astype(float)
    return out


def _coords(md: ModelData) -> dict:
    coords = {"study": list(md.studies), "obs": [str(a) for a in md.obs["analysis_id"]]}
    if md.kind == "binary":
        coords["bin"] = [_bin_label(v) for v in md.visits]
    else:
        coords["visit"] = [float(v) for v in md.post_visits]
        if md.levels:
            coords["level"] = [f"{s}|{c}" for s, c in md.levels]
    # analysis ids may repeat in odd inputs: make obs coordinates unique
    if len(set(coords["obs"])) != len(coords["obs"]):
        coords["obs"] = [f"{a}#{i}" for i, a in enumerate(coords["obs"])]
    return coords


def _bin_label(v: float) -> str:
    return "time not reported" if not np.isfinite(v) else f"{v:g}"


def _build_continuous_model(md: ModelData, settings: dict, tc: str):
    import pymc as pm
    import pytensor.tensor as pt

    pri = resolve_priors(md, settings)
    t = md.post_visits.astype(float)
    K, S = len(t), len(md.studies)
    obs = md.obs
    study_idx = obs["study_idx"].to_numpy(int)
    visit_idx = obs["visit_idx"].to_numpy(int)
    level_idx = obs["level_idx"].to_numpy(int)
    is_abs = (level_idx >= 0).astype(float)

    with pm.Model(coords=_coords(md)) as model:
        y_obs = pm.Data("y_obs", obs["y"].to_numpy(float), dims="obs")
        cov_scale = pm.Data("cov_scale", md.A.astype(float))
        lag_w = pm.Data("lag_within", md.lag_within.astype(float))

        # time course ---------------------------------------------------------------------------------------
        if tc in ("random_walk", "independent"):
            z_delta = pm.Normal("z_delta", 0.0, 1.0, dims="visit")
            if tc == "random_walk":
                ref = float(settings.get("random_walk_reference_months", 3.0))
                gaps = np.diff(np.concatenate([[0.0], t]))
                scales = np.concatenate([[pri["delta_sd"]], pri["step_sd"] * np.sqrt(gaps[1:] / ref)])
                delta = pm.Deterministic("delta", pt.cumsum(scales * z_delta), dims="visit")
            else:
                delta = pm.Deterministic("delta", pri["delta_sd"] * z_delta, dims="visit")
        elif tc == "piecewise_linear":
            knot = float(settings.get("piecewise_knot_months", 3.0))
            t_end = float(t.max())
            a = pm.Normal("delta_at_knot", 0.0, pri["delta_sd"])
            shape1 = np.minimum(t, knot) / knot
            if t_end > knot + 1e-9:
                c = pm.Normal("delta_knot_to_end", 0.0, pri["delta_sd"])
                shape2 = np.maximum(t - knot, 0.0) / (t_end - knot)
                delta = pm.Deterministic("delta", a * shape1 + c * shape2, dims="visit")
            else:
                delta = pm.Deterministic("delta", a * shape1, dims="visit")
        elif tc == "emax":
            emax = pm.Normal("emax", 0.0, pri["delta_sd"])
            et50 = pm.LogNormal("et50", mu=math.log(float(settings.get("emax_et50_median_months", 2.0))),
                                sigma=1.0)
            delta = pm.Deterministic("delta", emax * t / (et50 + t), dims="visit")
        else:  # pragma: no cover - guarded by effective_time_course
            raise ValueError(tc)

        # study random effects ------------------------------------------------------------------------------
        if tc == "independent":
            study_delta = pm.Deterministic("study_delta", delta[None, :] + pt.zeros((S, K)),
                                           dims=("study", "visit"))
        else:
            tau = _tau_rv(pm, pri)
            z_u = pm.Normal("z_u", 0.0, 1.0, dims=("study", "visit"))
            if K >= 2:
                bcfg = pri["between_visit_correlation"]
                rho_b = pm.Beta("rho_between", alpha=bcfg["alpha"], beta=bcfg["beta"])
                lag_b = _lag_between(t, bcfg)
                R = pt.switch(pt.eq(lag_b, 0.0), 1.0, pt.power(rho_b, lag_b))
                R = (1.0 - R_JITTER) * R + R_JITTER * pt.eye(K)
                chol = pt.linalg.cholesky(R)
                u = tau * pt.dot(z_u, chol.T)
            else:
                u = tau * z_u
            study_delta = pm.Deterministic("study_delta", delta[None, :] + u, dims=("study", "visit"))

        full = pt.concatenate([pt.zeros((S, 1)), study_delta], axis=1)
        mu = full[study_idx, visit_idx]

        # baseline levels -----------------------------------------------------------------------------------
        if md.levels:
            centre = pm.Data("level_centre", md.level_centre.astype(float), dims="level")
            lse = pm.Data("level_se", md.level_se.astype(float), dims="level")
            z_b = pm.Normal("z_baseline", 0.0, pri["baseline_sd"] / lse, dims="level")
            beta = pm.Deterministic("baseline", centre + lse * z_b, dims="level")
            mu = mu + is_abs * beta[np.maximum(level_idx, 0)]

        # likelihood ----------------------------------------------------------------------------------------
        if md.needs_rho_within:
            wcfg = pri["within_study_correlation"]
            rho_w = pm.Beta("rho_within", alpha=wcfg["alpha"], beta=wcfg["beta"])
            corr = pt.switch(pt.eq(lag_w, 0.0), 1.0, pt.power(rho_w, lag_w))
            pm.MvNormal("y", mu=mu, cov=cov_scale * corr, observed=y_obs, dims="obs")
        else:
            pm.Normal("y", mu=mu, sigma=pt.sqrt(pt.diag(cov_scale)), observed=y_obs, dims="obs")
    return model


def _build_binary_model(md: ModelData, settings: dict):
    import pymc as pm

    pri = resolve_priors(md, settings)
    obs = md.obs
    bin_idx = obs["visit_idx"].to_numpy(int)
    with pm.Model(coords=_coords(md)) as model:
        events = pm.Data("events", obs["events"].to_numpy(float), dims="obs")
        total = pm.Data("total", obs["total"].to_numpy(float), dims="obs")
        mu_bin = pm.Normal("mu_bin", 0.0, pri["mu_sd"], dims="bin")
        if md.status == "pooled":
            tau = _tau_rv(pm, pri)
            z = pm.Normal("z_study", 0.0, 1.0, dims="obs")
            theta = mu_bin[bin_idx] + tau * z
        else:
            theta = mu_bin[bin_idx]
        pm.Deterministic("p_bin", pm.math.invlogit(mu_bin), dims="bin")
        pm.Deterministic("p_study", pm.math.invlogit(theta), dims="obs")
        pm.Binomial("y", n=total, logit_p=theta, observed=events, dims="obs")
    return model


# ---------------------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------------------
def compile_model(model):
    import nutpie
    return nutpie.compile_pymc_model(model)


def sample_compiled(compiled, settings: dict, seed: int, *, draws: int | None = None, tune: int | None = None,
                    chains: int | None = None, progress_bar: bool | None = None) -> az.InferenceData:
    """nutpie sampling with the settings' chains/draws/tune/target_accept; warm-up draws not kept and the
    unconstrained copies of constrained parameters (``*__``) dropped from the posterior."""
    import nutpie
    s = resolved_settings(settings)["sampling"]
    chains = int(chains or s.get("chains", 4))
    kwargs = dict(draws=int(draws or s.get("draws", 1000)), tune=int(tune or s.get("tune", 1000)),
                  chains=chains, cores=max(1, min(chains, os.cpu_count() or 1)), seed=int(seed),
                  save_warmup=False,
                  progress_bar=bool(s.get("progress_bar", True) if progress_bar is None else progress_bar))
    if s.get("target_accept") is not None:
        kwargs["target_accept"] = float(s["target_accept"])
    if s.get("max_depth") is not None:
        kwargs["maxdepth"] = int(s["max_depth"])
    idata = nutpie.sample(compiled, **kwargs)
    drop = [v for v in idata.posterior.data_vars if str(v).endswith("__")]
    if drop:
        idata.posterior = idata.posterior.drop_vars(drop)
    return idata


def outcome_seed(base_seed: int, outcome: str, study_set: str) -> int:
    """A fixed per-outcome seed from the config's base seed (stable across runs and machines)."""
    return int((int(base_seed) + zlib.crc32(f"{outcome}|{study_set}".encode())) % (2 ** 31 - 1))


def fit_outcome(model_data: ModelData, settings: dict, seed: int, *, time_course: str | None = None,
                compare: bool | None = None) -> az.InferenceData:
    """Fit one outcome x study set. Returns InferenceData with posterior, sample_stats, prior,
    prior_predictive, posterior_predictive, observed_data, log_likelihood, constant_data and predictions
    groups (a new study's change). Outcomes without poolable data return an idata holding only the
    bookkeeping (constant_data with ``fit_status`` in its attrs). With ``compare_time_courses`` and enough
    data (>= 2 studies and >= 3 distinct follow-up times) the three time courses are also fitted and their
    PSIS-LOO comparison is stored in ``constant_data.attrs["loo_comparison_json"]``."""
    md = model_data
    settings = resolved_settings(settings)
    if md.status not in ("pooled", "single_study"):
        return _bookkeeping_idata(md, settings, fit_status=md.status)
    tc = effective_time_course(md, settings, time_course)
    t0 = time.perf_counter()
    model = build_model(md, settings, tc)
    compiled = compile_model(model)
    t1 = time.perf_counter()
    idata = sample_compiled(compiled, settings, seed)
    t2 = time.perf_counter()
    idata = augment_idata(idata, model, md, settings, seed, time_course=tc)
    t3 = time.perf_counter()
    meta = idata.constant_data.attrs
    meta["seconds_compile"] = round(t1 - t0, 3)
    meta["seconds_sample"] = round(t2 - t1, 3)
    meta["seconds_postprocess"] = round(t3 - t2, 3)

    do_compare = settings["compare_time_courses"] if compare is None else compare
    if do_compare and comparison_possible(md):
        table = compare_time_courses(md, settings, seed, fitted={tc: idata})
        meta["loo_comparison_json"] = table.to_json(orient="records")
    return idata


def comparison_possible(md: ModelData) -> bool:
    if md.kind != "continuous" or md.status != "pooled":
        return False
    follow_up_times = {t for t in md.obs["time_months"] if t > 0}
    return len(md.studies) >= 2 and len(follow_up_times) >= 3


def compare_time_courses(md: ModelData, settings: dict, seed: int, fitted: dict | None = None) -> pd.DataFrame:
    """PSIS-LOO comparison (ArviZ ``compare``, pointwise conditional log-likelihoods) of the three time
    courses, with each fit's worst R-hat and divergences so that a comparison resting on an unconverged fit
    is visible."""
    from .diagnostics import diagnostics_table
    fitted = dict(fitted or {})
    for tc in TIME_COURSES:
        if tc not in fitted:
            model = build_model(md, settings, tc)
            idata = sample_compiled(compile_model(model), settings, seed)
            idata.add_groups({"log_likelihood": pointwise_log_likelihood(idata, md, settings)})
            fitted[tc] = idata
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = az.compare({tc: fitted[tc] for tc in TIME_COURSES}, ic="loo")
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


# ---------------------------------------------------------------------------------------------------------
# After sampling: groups the workflow needs
# ---------------------------------------------------------------------------------------------------------
def _draws(idata, name) -> np.ndarray:
    """(chain*draw, ...) array of a posterior variable."""
    v = idata.posterior[name].values
    return v.reshape((-1,) + v.shape[2:])


def pointwise_log_likelihood(idata: az.InferenceData, md: ModelData, settings: dict) -> xr.Dataset:
    """log p(y_j | y_-j, theta) per draw (continuous; Buerkner et al. 2021) or the binomial log pmf."""
    post = idata.posterior
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    if md.kind == "binary":
        from scipy import stats
        p = _draws(idata, "p_study")
        ll = stats.binom.logpmf(md.obs["events"].to_numpy()[None, :], md.obs["total"].to_numpy()[None, :], p)
    else:
        y = md.obs["y"].to_numpy(float)
        mu = _mu_draws(idata, md)
        rho = _draws(idata, "rho_within") if "rho_within" in post else np.full(mu.shape[0], 0.5)
        ll = np.empty_like(mu)
        blocks = md.obs["block"].to_numpy()
        for b in np.unique(blocks):
            idx = np.flatnonzero(blocks == b)
            A = md.A[np.ix_(idx, idx)]
            L = md.lag_within[np.ix_(idx, idx)]
            corr = np.where(L[None] == 0, 1.0, np.power(rho[:, None, None], L[None]))
            P = np.linalg.inv(A[None] * corr)
            r = y[idx][None, :] - mu[:, idx]
            c = np.einsum("dij,dj->di", P, r)
            g = np.diagonal(P, axis1=1, axis2=2)
            ll[:, idx] = -0.5 * math.log(2 * math.pi) + 0.5 * np.log(g) - 0.5 * c ** 2 / g
    coords = {"chain": post["chain"].values, "draw": post["draw"].values, "obs": _coords(md)["obs"]}
    return xr.Dataset({"y": (("chain", "draw", "obs"), ll.reshape(nc, nd, -1))}, coords=coords)


def _mu_draws(idata, md: ModelData) -> np.ndarray:
    sd = _draws(idata, "study_delta")                       # (D, S, K)
    D = sd.shape[0]
    full = np.concatenate([np.zeros((D, sd.shape[1], 1)), sd], axis=2)
    obs = md.obs
    mu = full[:, obs["study_idx"].to_numpy(int), obs["visit_idx"].to_numpy(int)]
    lvl = obs["level_idx"].to_numpy(int)
    if md.levels:
        base = _draws(idata, "baseline")
        mu = mu + np.where(lvl[None, :] >= 0, base[:, np.maximum(lvl, 0)], 0.0)
    return mu


def _new_study_draws(idata, md: ModelData, settings: dict, seed: int) -> xr.Dataset | None:
    post = idata.posterior
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    rng = np.random.default_rng([int(seed), 20231])
    if md.kind == "binary":
        mu = _draws(idata, "mu_bin")
        if "tau" in post:
            mu = mu + _draws(idata, "tau")[:, None] * rng.standard_normal(mu.shape)
        p = 1.0 / (1.0 + np.exp(-mu))
        return xr.Dataset({"p_new_study": (("chain", "draw", "bin"), p.reshape(nc, nd, -1))},
                          coords={"chain": post["chain"].values, "draw": post["draw"].values,
                                  "bin": _coords(md)["bin"]})
    delta = _draws(idata, "delta")
    D, K = delta.shape
    if "tau" in post:
        tau = _draws(idata, "tau")
        z = rng.standard_normal((D, K))
        if "rho_between" in post:
            pri = resolve_priors(md, settings)
            lag = _lag_between(md.post_visits.astype(float), pri["between_visit_correlation"])
            rho = _draws(idata, "rho_between")
            R = np.where(lag[None] == 0, 1.0, np.power(rho[:, None, None], lag[None]))
            R = (1 - R_JITTER) * R + R_JITTER * np.eye(K)[None]
            z = np.einsum("dij,dj->di", np.linalg.cholesky(R), z)
        pred = delta + tau[:, None] * z
    else:
        pred = delta.copy()
    return xr.Dataset({"delta_new_study": (("chain", "draw", "visit"), pred.reshape(nc, nd, K))},
                      coords={"chain": post["chain"].values, "draw": post["draw"].values,
                              "visit": [float(v) for v in md.post_visits]})


def _constant_data(md: ModelData) -> xr.Dataset:
    obs_coord = _coords(md)["obs"] if md.n_obs else []
    data: dict[str, Any] = {}
    if md.n_obs:
        o = md.obs
        data["obs_study_idx"] = ("obs", o["study_idx"].to_numpy(int))
        data["obs_visit_idx"] = ("obs", o["visit_idx"].to_numpy(int))
        data["obs_time_months"] = ("obs", o["time_months"].to_numpy(float))
        if md.kind == "binary":
            data["obs_total"] = ("obs", o["total"].to_numpy(float))
        else:
            data["obs_n"] = ("obs", o["n"].to_numpy(float))
            data["obs_se"] = ("obs", o["se"].to_numpy(float))
    else:
        data["n_listed_rows"] = ((), len(md.listed))
    coords = {"obs": obs_coord} if md.n_obs else {}
    return xr.Dataset(data, coords=coords)


def _meta(md: ModelData, settings: dict, **extra) -> dict[str, Any]:
    pri = resolve_priors(md, settings) if md.kind in ("continuous", "binary") else {}
    meta = {
        "outcome": md.outcome, "study_set": md.study_set, "kind": md.kind, "label": md.label,
        "unit": md.unit, "analysis_scale": md.analysis_scale, "direction_of_benefit": md.direction,
        "status": md.status, "status_reason": md.status_reason, "studies": ";".join(md.studies),
        "visits_json": json.dumps([None if not np.isfinite(v) else float(v) for v in md.visits]),
        "priors_json": json.dumps(pri, default=str), "notes": " | ".join(md.notes),
        "settings_json": json.dumps(resolved_settings(settings), default=str),
    }
    meta.update(md.to_json_tables())
    meta.update(extra)
    return meta


def _bookkeeping_idata(md: ModelData, settings: dict, fit_status: str) -> az.InferenceData:
    cd = _constant_data(md)
    cd.attrs.update(_meta(md, settings, fit_status=fit_status, time_course="none"))
    return az.InferenceData(constant_data=cd)


def augment_idata(idata: az.InferenceData, model, md: ModelData, settings: dict, seed: int,
                  time_course: str) -> az.InferenceData:
    """Add prior / prior predictive / posterior predictive / observed data / log likelihood / predictions /
    constant data (with the bookkeeping in its attrs) to a nutpie posterior. Seeds fixed from ``seed``."""
    import pymc as pm
    s = resolved_settings(settings)["sampling"]
    with model:
        prior = pm.sample_prior_predictive(draws=int(s.get("prior_draws", 1000)), random_seed=int(seed) + 1)
        idata.extend(prior)
        pm.sample_posterior_predictive(idata, random_seed=int(seed) + 2, progressbar=False,
                                       extend_inferencedata=True)
    idata.add_groups({"log_likelihood": pointwise_log_likelihood(idata, md, settings)})
    pred = _new_study_draws(idata, md, settings, seed)
    if pred is not None:
        idata.add_groups({"predictions": pred})
    cd = _constant_data(md)
    cd.attrs.update(_meta(md, settings, fit_status="fitted", time_course=time_course, seed=int(seed)))
    if "constant_data" in idata.groups():
        idata.constant_data = xr.merge([idata.constant_data, cd], combine_attrs="override")
        idata.constant_data.attrs.update(cd.attrs)
    else:
        idata.add_groups({"constant_data": cd})
    return idata


# ---------------------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------------------
SUMMARY_COLUMNS = [
    "outcome", "study_set", "kind", "analysis_scale", "status", "time_course", "visit_months", "quantity",
    "study_id", "median", "lower", "upper", "p_improvement", "prior_median", "prior_lower", "prior_upper",
    "n_studies", "n_patients", "label", "note",
]


def _q(x: np.ndarray, level: float) -> tuple[float, float, float]:
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    qs = np.quantile(x, [0.5, lo, hi])
    return float(qs[0]), float(qs[1]), float(qs[2])


def _p_improve(x: np.ndarray, direction: str) -> float:
    if direction == "decrease":
        return float(np.mean(x < 0))
    if direction == "increase":
        return float(np.mean(x > 0))
    return float("nan")


def summarise(idata: az.InferenceData, model_data: ModelData, settings: dict) -> pd.DataFrame:
    """Tidy (long) summary: one row per visit x quantity (x study for study-level quantities).

    Columns: SUMMARY_COLUMNS. ``median``/``lower``/``upper``: posterior median and equal-tailed interval
    (``settings["interval"]``, default 0.95), on the analysis scale. Quantities:
      continuous  delta (pooled change from baseline Delta(t); single study: the study's own change),
                  delta_percent (log scale: 100 (exp(Delta) - 1), the percent change of the mean),
                  prediction (change in a new study; + prediction_percent), study_delta (shrunken study
                  estimates at the visits each study reports), tau, rho_within, rho_between (with their
                  prior median/interval), between_arm_difference (+ _percent on the log scale; closed form),
                  elpd_loo (one row per time course when compared; median = elpd, lower/upper = +/- 2 SE),
                  reported_median (median-only rows, listed).
      binary      proportion (pooled typical proportion per time bin; single study: its own), prediction
                  (a new study's proportion), study_proportion, tau, between_arm_difference (risk
                  difference), reported_median.
    ``p_improvement``: posterior probability that the change is in the outcome's direction of benefit
    (NaN for proportions and for outcomes without a direction). ``n_studies``/``n_patients``: studies and
    patients with data at that visit (for visit-free quantities: all studies / patients in the model).
    ``label``: ``pooled`` (>= 2 studies at the visit), ``pooled time course (1 study at this visit)``,
    ``interpolated (no study at this visit)``, ``single study estimate (not pooled)``,
    ``median only: listed, not pooled``, or the between-arm label."""
    md = model_data
    settings = resolved_settings(settings)
    level = float(settings.get("interval", 0.95))
    meta = idata.constant_data.attrs if "constant_data" in idata.groups() else {}
    tc = meta.get("time_course", "none")
    base = {"outcome": md.outcome, "study_set": md.study_set, "kind": md.kind,
            "analysis_scale": md.analysis_scale, "status": md.status, "time_course": tc}
    rows: list[dict] = []

    def add(**kw):
        r = dict(base)
        r.update(kw)
        rows.append(r)

    fitted = "posterior" in idata.groups()
    single = md.status == "single_study"
    at_visit = md.studies_at_visit()
    pts = md.patients_at_visit()
    n_all, p_all = len(md.studies), md.total_patients()

    if fitted and md.kind == "continuous":
        delta = _draws(idata, "delta")
        pred = idata.predictions["delta_new_study"].values.reshape(delta.shape)
        sdelta = _draws(idata, "study_delta")
        for k, t in enumerate(md.post_visits):
            v = k + 1
            studies = at_visit.get(v, [])
            ns = len(studies)
            if single:
                lab = LABEL_SINGLE
            elif ns >= 2:
                lab = LABEL_POOLED
            elif ns == 1:
                lab = LABEL_POOLED_ONE_STUDY
            else:
                lab = LABEL_INTERPOLATED
            common = dict(visit_months=float(t), n_studies=ns, n_patients=pts.get(v, 0), label=lab)
            note = "" if not single else f"study {md.studies[0]}"
            m, lo, hi = _q(delta[:, k], level)
            add(quantity="delta", median=m, lower=lo, upper=hi,
                p_improvement=_p_improve(delta[:, k], md.direction), note=note, **common)
            if md.analysis_scale == "log":
                pc = 100 * np.expm1(delta[:, k])
                m, lo, hi = _q(pc, level)
                add(quantity="delta_percent", median=m, lower=lo, upper=hi,
                    p_improvement=_p_improve(delta[:, k], md.direction), note=note, **common)
            if not single:
                m, lo, hi = _q(pred[:, k], level)
                add(quantity="prediction", median=m, lower=lo, upper=hi,
                    p_improvement=_p_improve(pred[:, k], md.direction), note="a new study", **common)
                if md.analysis_scale == "log":
                    m, lo, hi = _q(100 * np.expm1(pred[:, k]), level)
                    add(quantity="prediction_percent", median=m, lower=lo, upper=hi,
                        p_improvement=_p_improve(pred[:, k], md.direction), note="a new study", **common)
                for st in studies:
                    i = md.studies.index(st)
                    x = sdelta[:, i, k]
                    m, lo, hi = _q(x, level)
                    npat = int(md.obs[(md.obs["study_id"] == st) & (md.obs["visit_idx"] == v)]["n"].max())
                    add(quantity="study_delta", study_id=st, median=m, lower=lo, upper=hi,
                        p_improvement=_p_improve(x, md.direction), visit_months=float(t), n_studies=1,
                        n_patients=npat, label="shrunken study estimate", note="")
        pri = resolve_priors(md, settings)
        from scipy import stats
        for name, cfgkey in (("rho_within", "within_study_correlation"),
                             ("rho_between", "between_visit_correlation")):
            if name in idata.posterior:
                x = _draws(idata, name)
                m, lo, hi = _q(x, level)
                a, b = pri[cfgkey]["alpha"], pri[cfgkey]["beta"]
                pq = stats.beta.ppf([0.5, (1 - level) / 2, 1 - (1 - level) / 2], a, b)
                add(quantity=name, median=m, lower=lo, upper=hi, prior_median=float(pq[0]),
                    prior_lower=float(pq[1]), prior_upper=float(pq[2]), n_studies=n_all, n_patients=p_all,
                    label=LABEL_SINGLE if single else LABEL_POOLED,
                    note=f"{pri[cfgkey]['structure']}; Beta({a:g}, {b:g}) prior"
                         + (f"; correlation at a lag of {pri[cfgkey]['lag_months']:g} months"
                            if pri[cfgkey]["structure"] == "ar1" else ""))
        if "tau" in idata.posterior:
            _add_tau(add, idata, pri, level, n_all, p_all)
    elif fitted and md.kind == "binary":
        pbin = _draws(idata, "p_bin")
        pnew = idata.predictions["p_new_study"].values.reshape(pbin.shape)
        pst = _draws(idata, "p_study")
        for b, t in enumerate(md.visits):
            studies = at_visit.get(b, [])
            ns = len(studies)
            lab = LABEL_POOLED if (ns >= 2 and not single) else LABEL_SINGLE
            common = dict(visit_months=float(t), n_studies=ns, n_patients=pts.get(b, 0), label=lab)
            if ns >= 2 and not single:
                m, lo, hi = _q(pbin[:, b], level)
                add(quantity="proportion", median=m, lower=lo, upper=hi, p_improvement=float("nan"),
                    note="typical study", **common)
                m, lo, hi = _q(pnew[:, b], level)
                add(quantity="prediction", median=m, lower=lo, upper=hi, p_improvement=float("nan"),
                    note="a new study", **common)
            for j in np.flatnonzero(md.obs["visit_idx"].to_numpy() == b):
                st = md.obs["study_id"].iloc[j]
                m, lo, hi = _q(pst[:, j], level)
                own = ns < 2 or single
                add(quantity="proportion" if own else "study_proportion", study_id=st, median=m, lower=lo,
                    upper=hi, p_improvement=float("nan"), visit_months=float(t), n_studies=1,
                    n_patients=int(md.obs["total"].iloc[j]),
                    label=LABEL_SINGLE if own else "shrunken study estimate",
                    note=f"study {st}" if own else "")
        if "tau" in idata.posterior:
            _add_tau(add, idata, resolve_priors(md, settings), level, n_all, p_all)

    # between-arm differences (closed form) -----------------------------------------------------------------
    for _, r in md.between_arm.iterrows():
        common = dict(visit_months=float(r["visit_months"]), study_id=r["study_id"], n_studies=1,
                      n_patients=int(r["msct_n"] + r["control_n"]), label=LABEL_BETWEEN_ARM)
        z = _z(level)
        lo, hi = r["estimate"] - z * r["se"], r["estimate"] + z * r["se"]
        pim = _p_improve_normal(r["estimate"], r["se"], md.direction) if md.kind == "continuous" else float("nan")
        add(quantity="between_arm_difference", median=float(r["estimate"]), lower=float(lo), upper=float(hi),
            p_improvement=pim, note=f"MSCT minus control; {r['method']}; se={r['se']:.4g}", **common)
        if md.analysis_scale == "log" and md.kind == "continuous":
            add(quantity="between_arm_difference_percent", median=float(100 * np.expm1(r["estimate"])),
                lower=float(100 * np.expm1(lo)), upper=float(100 * np.expm1(hi)), p_improvement=pim,
                note="ratio of MSCT to control, as percent difference", **common)

    # time-course comparison ----------------------------------------------------------------------------------
    if meta.get("loo_comparison_json"):
        cmp = pd.read_json(__import__("io").StringIO(meta["loo_comparison_json"]), orient="records")
        for _, r in cmp.iterrows():
            add(quantity="elpd_loo", median=float(r["elpd_loo"]), lower=float(r["elpd_loo"] - 2 * r["se"]),
                upper=float(r["elpd_loo"] + 2 * r["se"]), n_studies=n_all, n_patients=p_all,
                label=LABEL_POOLED, time_course=r["time_course"],
                note=(f"rank {int(r['rank'])}; elpd_diff {r['elpd_diff']:.3g} (se {r['dse']:.3g}); "
                      f"weight {r['weight']:.3g}; p_loo {r['p_loo']:.3g}; pareto-k warning {bool(r['warning'])}; "
                      f"converged {bool(r['converged'])}"))

    # median-only rows: listed --------------------------------------------------------------------------------
    for _, r in md.listed.iterrows():
        add(quantity="reported_median", study_id=r["study_id"], visit_months=r["time_months"],
            median=r["value"], n_studies=1, n_patients=r["n"], label=LABEL_MEDIAN_ONLY,
            note=f"{r['arm']} arm; {r['reason']}")

    if not rows and md.status in ("no_data", "not_modelled"):
        add(quantity="none", n_studies=0, n_patients=0, label=md.status, note=md.status_reason)

    out = pd.DataFrame(rows)
    for c in SUMMARY_COLUMNS:
        if c not in out:
            out[c] = np.nan
    out = out[SUMMARY_COLUMNS]
    for c in ("median", "lower", "upper", "p_improvement", "prior_median", "prior_lower", "prior_upper",
              "visit_months"):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    for c in ("n_studies", "n_patients"):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("Int64")
    return out.reset_index(drop=True)


def _add_tau(add, idata, pri, level, n_all, p_all):
    x = _draws(idata, "tau")
    m, lo, hi = _q(x, level)
    pq = tau_prior_quantiles(pri, (0.5, (1 - level) / 2, 1 - (1 - level) / 2))
    add(quantity="tau", median=m, lower=lo, upper=hi, prior_median=pq[0], prior_lower=pq[1], prior_upper=pq[2],
        n_studies=n_all, n_patients=p_all, label=LABEL_POOLED,
        note=f"{pri['tau_family']}(scale {pri['tau_scale']:g}); between-study SD at each visit")


def _z(level: float) -> float:
    from scipy import stats
    return float(stats.norm.ppf(1 - (1 - level) / 2))


def _p_improve_normal(est, se, direction) -> float:
    from scipy import stats
    if direction == "decrease":
        return float(stats.norm.cdf(0, est, se))
    if direction == "increase":
        return float(stats.norm.sf(0, est, se))
    return float("nan")


# ---------------------------------------------------------------------------------------------------------
# Disk I/O for the Snakemake rules
# ---------------------------------------------------------------------------------------------------------
def _load_dictionary(outcome_dictionary) -> dict:
    if isinstance(outcome_dictionary, dict):
        d = outcome_dictionary
    else:
        import yaml
        with open(outcome_dictionary) as fh:
            d = yaml.safe_load(fh)
    if "outcomes" in d and isinstance(d["outcomes"], dict):
        d = d["outcomes"]
    return d


def _atomic_write(path: str, writer) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp_", suffix=os.path.splitext(path)[1])
    os.close(fd)
    try:
        writer(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_idata(idata: az.InferenceData, path: str) -> None:
    _atomic_write(path, lambda p: idata.to_netcdf(p))


def write_csv(df: pd.DataFrame, path: str) -> None:
    _atomic_write(path, lambda p: df.to_csv(p, index=False))


def run_model(table_csv, outcome_dictionary_yaml_or_dict, settings: dict, outcome: str, study_set: str,
              study_ids: list[str], idata_out: str, summary_out: str, seed: int | None = None) -> pd.DataFrame:
    """Read the analysis table, fit, write the idata (NetCDF) and the summary (CSV), both atomically.
    ``seed`` defaults to ``outcome_seed(settings.get("seed", 20231127), outcome, study_set)``."""
    table = pd.read_csv(table_csv) if isinstance(table_csv, (str, os.PathLike)) else table_csv
    dictionary = _load_dictionary(outcome_dictionary_yaml_or_dict)
    spec = dictionary.get(outcome)
    if spec is None:
        raise KeyError(f"outcome {outcome!r} is not in the outcome dictionary")
    md = build_model_data(table, outcome, study_ids, spec, settings, study_set=study_set)
    if seed is None:
        seed = outcome_seed(int(resolved_settings(settings).get("seed", 20231127)), outcome, study_set)
    idata = fit_outcome(md, settings, seed)
    summary = summarise(idata, md, settings)
    write_idata(idata, idata_out)
    write_csv(summary, summary_out)
    return summary


# ---------------------------------------------------------------------------------------------------------
# Simulation from the model (tests, calibration, benchmark)
# ---------------------------------------------------------------------------------------------------------
def simulate_table(design: list[dict], truth: dict, seed: int, outcome: str = "sim_outcome",
                   structure_within: str = "cs", structure_between: str = "ar1", lag_months: float = 3.0
                   ) -> pd.DataFrame:
    """An analysis table (identity scale) simulated from the continuous model, in numpy.

    ``design``: one dict per study: ``study_id``, ``rows``: list of dicts with ``measure`` (absolute |
    change_from_baseline), ``time`` (months), ``n``, ``sd`` (per-patient SD), optional ``cohort``; optional
    ``baseline`` (mean level). ``truth``: ``visits`` (post-baseline grid, months), ``delta`` (Delta at those
    visits), ``tau``, ``rho_within``, ``rho_between``. The sampling covariance and random effects follow the
    model exactly (nested-subset covariance, CS/AR(1) correlations)."""
    rng = np.random.default_rng(seed)
    visits = np.asarray(truth["visits"], float)
    delta = np.asarray(truth["delta"], float)
    K = len(visits)
    if structure_between == "ar1":
        lagb = np.abs(visits[:, None] - visits[None, :]) / lag_months
    else:
        lagb = (np.abs(visits[:, None] - visits[None, :]) > 0).astype(float)
    R = np.where(lagb == 0, 1.0, np.power(truth["rho_between"], lagb))
    R = (1 - R_JITTER) * R + R_JITTER * np.eye(K)
    Lr = np.linalg.cholesky(R)
    recs = []
    k = 0
    for st in design:
        u = truth["tau"] * Lr @ rng.standard_normal(K)
        dstudy = np.concatenate([[0.0], delta + u])
        grid = np.concatenate([[0.0], visits])
        for measure in ("absolute", "change_from_baseline"):
            rws = [r for r in st["rows"] if r["measure"] == measure]
            if not rws:
                continue
            t = np.array([float(r["time"]) for r in rws])
            n = np.array([float(r["n"]) for r in rws])
            s = np.array([float(r["sd"]) for r in rws])
            if structure_within == "cs":
                lag = (np.abs(t[:, None] - t[None, :]) > 0).astype(float)
            else:
                lag = np.abs(t[:, None] - t[None, :]) / lag_months
            C = np.where(lag == 0, 1.0, np.power(truth["rho_within"], lag))
            cov = C * np.outer(s, s) * np.minimum.outer(n, n) / np.outer(n, n)
            mu = np.array([dstudy[int(np.argmin(np.abs(grid - tt)))] for tt in t])
            if measure == "absolute":
                mu = mu + float(st.get("baseline", 10.0))
            y = rng.multivariate_normal(mu, cov)
            for r, yy in zip(rws, y):
                k += 1
                recs.append({
                    "analysis_id": f"sim{k:04d}", "study_id": st["study_id"], "arm": "MSCT", "arm_label": "MSC",
                    "outcome": outcome, "kind": "continuous", "measure": measure, "origin": "reported",
                    "cohort": r.get("cohort", "all"), "time_months": float(r["time"]), "n": float(r["n"]),
                    "mean": float(yy), "sd": float(r["sd"]), "events": np.nan, "total": np.nan, "unit": "points",
                    "analysis_scale": "identity", "direction_of_benefit": "decrease", "method": "reported",
                    "assumption": "", "skewness_flag": False, "poolable": True, "not_poolable_reason": "",
                    "raw_row_ids": f"raw{k:04d}", "source": "simulation"})
    return pd.DataFrame(recs)


def draw_truth_from_prior(visits, priors: dict, seed: int, reference_months: float = 3.0) -> dict:
    """Delta (random walk), tau (half-normal), rho_within, rho_between drawn from the model's priors."""
    rng = np.random.default_rng(seed)
    visits = np.asarray(visits, float)
    gaps = np.diff(np.concatenate([[0.0], visits]))
    scales = np.concatenate([[priors["delta_sd"]], priors["step_sd"] * np.sqrt(gaps[1:] / reference_months)])
    delta = np.cumsum(scales * rng.standard_normal(len(visits)))
    wc = priors.get("within_study_correlation", {"alpha": 2.0, "beta": 2.0})
    bc = priors.get("between_visit_correlation", {"alpha": 2.0, "beta": 2.0})
    return {"visits": visits, "delta": delta, "tau": abs(rng.normal(0, priors["tau_scale"])),
            "rho_within": rng.beta(wc["alpha"], wc["beta"]), "rho_between": rng.beta(bc["alpha"], bc["beta"])}
