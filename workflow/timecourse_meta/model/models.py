"""Bayesian hierarchical time-course models (PyMC, sampled with nutpie) for one outcome and study set.

Continuous outcomes (analysis scale from the outcome dictionary; see ``model_data``). Study i, visit grid
t_0 = 0 < t_1 < ... < t_K, likelihood rows j (arm-level means of the MSCT arm):

    absolute rows   ybar_j = beta_{i,c(j)} + delta_{i,t(j)} + e_j        (c(j): the row's cohort)
    change rows     d_j    =                 delta_{i,t(j)} + e_j        (delta_{i,0} = 0)
    e ~ MvNormal(0, Sigma(rho_w)),  Sigma_jk = corr_w(t_j, t_k) s_j s_k min(n_j, n_k) / (n_j n_k) within a
        study's absolute block or its change block, 0 otherwise (model_data: nested-subset rule);
        corr_w = rho_w for different visits (CS) or rho_w ** (|t_j - t_k| / lag_months) (AR(1)), 1 at the
        same visit; rho_w ~ Beta(a_w, b_w)
    delta_{i,k} = Delta(t_k) + u_{i,k},  u_i ~ MvNormal(0, tau^2 R(rho_b)),
        R = AR(1) rho_b ** (|t - t'| / lag_months) or CS; rho_b ~ Beta(a_b, b_b); tau ~ heterogeneity prior
        (half_normal | half_cauchy | half_student_t(nu) | exponential, scale ``tau_scale``)
    beta_{i,c} ~ N(observed baseline mean of (i, c), baseline_sd^2)   (a weak prior on a nuisance level)
    Delta = H theta, theta ~ N(0, I)  (the time courses below are all linear-Gaussian given ET50)

Time course Delta(t) (``settings["time_course"]``):
    random_walk       Delta(t) = J + B(t): an early response level J ~ N(0, delta_sd^2) plus a Brownian
                      motion B(0) = 0, B(t) - B(t') ~ N(0, step_sd^2 |t - t'| / L) (L =
                      ``random_walk_reference_months``, default 3: step_sd is the SD of the drift of Delta over
                      three months). Defined in continuous time, so the prior of Delta at a visit does not
                      depend on which other visits are on the grid, and visits at 0.92 and 1 month are nearly
                      tied; prior Var Delta(t) = delta_sd^2 + step_sd^2 t / L.
    piecewise_linear  Delta(t) = a min(t, kappa)/kappa + c max(t - kappa, 0)/(t_K - kappa),  a, c ~ N(0,
                      delta_sd^2) (Delta at the knot; change from knot to the last visit);
                      kappa = ``piecewise_knot_months`` (default 3)
    emax              Delta(t) = E t / (ET50 + t),  E ~ N(0, delta_sd^2),
                      ET50 ~ LogNormal(log(``emax_et50_median_months`` = 2), 1)
    independent       (one study: no pooling, no tau) Delta(t_k) ~ N(0, delta_sd^2) independently.

Computation: every layer but the hyperparameters is Gaussian and linear, so it is integrated out
analytically (as bayesmeta does for mu, and as rma.mv's marginal likelihood does):
    y ~ MvNormal(level_mean, V),  V = Sigma(rho_w) + tau^2 [between_mask o R(rho_b)] + baseline_sd^2
        level_mask + Z H H' Z'
NUTS (nutpie) samples only tau, rho_between, rho_within (and ET50): no funnel, no divergences with 1-4
studies. For every posterior draw, gamma = (theta, beta, u) is then drawn from its exact Gaussian
conditional (``add_latent_draws``), giving ``delta`` (Delta(t)), ``study_delta`` (the shrunken study
changes delta_{i,k}) and ``baseline``. A new study's change (prediction interval) is Delta + u_new,
u_new ~ MvNormal(0, tau^2 R), drawn with a fixed seed (``predictions`` group). Posterior predictive: y_rep
~ MvNormal(beta + delta, Sigma) given the latent draws.

Binary outcomes (events/total of the MSCT arm, one follow-up duration at a time, see ``model_data``): only a
duration that >= 2 studies report is modelled,
    events_j ~ Binomial(total_j, logit^-1(mu_{b(j)} + tau z_j)),  mu_b ~ N(0, mu_sd^2), z_j ~ N(0, 1)
    (non-centred; tau shared across durations; study effects independent across durations); defaults
    ``DEFAULT_BINARY_PRIOR`` (weakly informative for rare events). A duration one study reports, and an
    outcome without any shared duration, is not modelled: the study's events/total with its exact
    (Clopper-Pearson) interval is reported ("study's own estimate"). One study of a continuous outcome is
    likewise its own change with a t interval, not sampled.

Which number is what: the summary's ``evidence`` column (``model_data.Evidence``) and its ``label`` wording.

Pointwise log-likelihood (PSIS-LOO): the marginal MvNormal does not factorise, so ``log_likelihood`` holds
log p(y_j | y_-j, hyperparameters), the leave-one-out conditional densities of Buerkner, Gabry & Vehtari
(2021) (log p = -log(2 pi)/2 + log(g_jj)/2 - c_j^2 / (2 g_jj), g = V^-1, c = g (y - m)).
"""
from __future__ import annotations

import contextlib
import json
import logging
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

from timecourse_meta.model.model_data import (
    LABEL_MEDIAN_ONLY, PRIOR_DOMINATED_RATIO, Evidence, ModelData, build_model_data, clopper_pearson,
    label_between_arm, label_interpolated, label_pooled, label_prior_dominated, label_study, resolved_settings,
    study_display, t_interval,
)

LOG = logging.getLogger(__name__)

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
        "analysis_scale": "identity", "unit": "score", "delta_sd": 10.0, "tau_scale": 4.0, "step_sd": 5.0,
        "baseline_sd": 15.0,
        "rationale": "SLEDAI-2K 0-105, refractory LN baselines 10-20: a change of +/-20 points is the "
                     "plausible extreme; heterogeneity of a few points"}],
    "renal_bilag": [{
        "analysis_scale": "identity", "unit": "score", "delta_sd": 6.0, "tau_scale": 3.0, "step_sd": 3.0,
        "baseline_sd": 10.0,
        "rationale": "numeric BILAG renal score (A=12, B=8, C=1): a full A->C improvement is about 11"}],
    "gfr": [{
        "analysis_scale": "identity", "unit": "mL/min", "delta_sd": 20.0, "tau_scale": 10.0,
        "step_sd": 10.0, "baseline_sd": 50.0,
        "rationale": "GFR in mL/min (Gu 2014 reports it unindexed): changes beyond +/-40 mL/min within a "
                     "year are implausible"},
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
DEFAULT_BINARY_PRIOR = {"mu_sd": 2.0, "tau_scale": 0.5,
                        "rationale": "rare events: N(0, 2^2) on the logit of the typical proportion puts 7% of "
                                     "its mass below 5% and 7% above 95% (95% between 2% and 98%), so 1 event in "
                                     "12 is not pulled towards 50%; half-normal(0.5) on the logit-scale tau "
                                     "(95% below 1: study odds within x/÷ 7 of the typical) keeps 2-3 studies "
                                     "from implying implausible spread"}
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
    """tau with the configured heterogeneity prior family and scale (log transform for sampling)."""
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
    if md.kind == "binary" and md.status == "single_study":
        return "none (study's own estimate)"
    if md.kind == "binary":
        return "binomial_logit_by_time_bin"
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


def structure_matrices(md: ModelData, settings: dict) -> dict[str, np.ndarray]:
    """Constant matrices of the marginal covariance of the observed means (continuous outcomes), N rows:
    ``cov_scale`` (A) and ``lag_within`` (from model_data); ``between_mask`` (rows of the same study, both
    after baseline) and ``lag_between`` (exponent of rho_between between their visits); ``level_mask``
    (absolute rows of the same baseline level); ``level_mean`` (centre of the baseline prior for absolute
    rows, 0 for change rows); ``Z`` (N x K: row -> its post-baseline visit)."""
    pri = resolve_priors(md, settings)
    obs = md.obs
    N, K = md.n_obs, len(md.post_visits)
    vis = obs["visit_idx"].to_numpy(int)
    post = vis > 0
    same_study = obs["study_idx"].to_numpy()[:, None] == obs["study_idx"].to_numpy()[None, :]
    between_mask = (same_study & post[:, None] & post[None, :]).astype(float)
    vt = np.concatenate([[0.0], md.post_visits.astype(float)])[vis]
    lag_between = np.where(between_mask > 0, _lag_between(vt, pri["between_visit_correlation"]), 0.0)
    lvl = obs["level_idx"].to_numpy(int)
    level_mask = ((lvl[:, None] == lvl[None, :]) & (lvl[:, None] >= 0)).astype(float)
    level_mean = np.where(lvl >= 0, md.level_centre[np.maximum(lvl, 0)] if md.levels else 0.0, 0.0)
    Z = np.zeros((N, K))
    Z[np.flatnonzero(post), vis[post] - 1] = 1.0
    return {"cov_scale": md.A.astype(float), "lag_within": md.lag_within.astype(float),
            "between_mask": between_mask, "lag_between": lag_between, "level_mask": level_mask,
            "level_mean": level_mean.astype(float), "Z": Z}


def time_course_design(md: ModelData, settings: dict, tc: str) -> np.ndarray | None:
    """Delta = H theta, theta ~ N(0, I): the K x p matrix H of the linear time courses (None for emax, whose
    H depends on ET50: H = delta_sd * t / (ET50 + t))."""
    pri = resolve_priors(md, settings)
    t = md.post_visits.astype(float)
    K = len(t)
    if tc == "random_walk":
        ref = float(resolved_settings(settings).get("random_walk_reference_months", 3.0))
        gaps = np.diff(np.concatenate([[0.0], t]))
        walk = np.tril(np.ones((K, K))) * (pri["step_sd"] * np.sqrt(gaps / ref))[None, :]
        return np.concatenate([np.full((K, 1), pri["delta_sd"]), walk], axis=1)
    if tc == "independent":
        return pri["delta_sd"] * np.eye(K)
    if tc == "piecewise_linear":
        knot = float(resolved_settings(settings).get("piecewise_knot_months", 3.0))
        cols = [np.minimum(t, knot) / knot]
        if t.max() > knot + 1e-9:
            cols.append(np.maximum(t - knot, 0.0) / (t.max() - knot))
        return pri["delta_sd"] * np.stack(cols, axis=1)
    if tc == "emax":
        return None
    raise ValueError(tc)


def _emax_h(t, et50):
    return t / (et50 + t)


def data_updates(md: ModelData, settings: dict | None = None) -> dict[str, np.ndarray]:
    """Values of the model's ``pm.Data`` containers for this data set (for ``compiled.with_data``; the design
    -- studies, visits, n, SDs -- must be the one the model was built with)."""
    if md.kind == "binary":
        return {"events": md.obs["events"].to_numpy(float), "total": md.obs["total"].to_numpy(float)}
    m = structure_matrices(md, settings or {})
    return {"y_obs": md.obs["y"].to_numpy(float), "cov_scale": m["cov_scale"], "level_mean": m["level_mean"]}


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
    """The continuous model with the Gaussian layers integrated out analytically (see module docstring):
    y ~ MvNormal(level_mean, V), V = A o corr_w(rho_w) + tau^2 between_mask o corr_b(rho_b)
    + baseline_sd^2 level_mask + Z H H' Z'. Sampled: tau, rho_between, rho_within (and ET50 for emax)."""
    import pymc as pm
    import pytensor.tensor as pt

    pri = resolve_priors(md, settings)
    t = md.post_visits.astype(float)
    K = len(t)
    mats = structure_matrices(md, settings)
    Z = mats["Z"]

    with pm.Model(coords=_coords(md)) as model:
        y_obs = pm.Data("y_obs", md.obs["y"].to_numpy(float), dims="obs")
        cov_scale = pm.Data("cov_scale", mats["cov_scale"])
        level_mean = pm.Data("level_mean", mats["level_mean"], dims="obs")

        # sampling covariance of the means (within-study correlation)
        if md.needs_rho_within:
            wcfg = pri["within_study_correlation"]
            rho_w = pm.Beta("rho_within", alpha=wcfg["alpha"], beta=wcfg["beta"])
            lag_w = mats["lag_within"]
            V = cov_scale * pt.switch(pt.eq(lag_w, 0.0), 1.0, pt.power(rho_w, lag_w))
        else:
            V = cov_scale
        # study random effects (integrated out)
        if tc != "independent":
            tau = _tau_rv(pm, pri)
            R = mats["between_mask"]
            if K >= 2:
                bcfg = pri["between_visit_correlation"]
                rho_b = pm.Beta("rho_between", alpha=bcfg["alpha"], beta=bcfg["beta"])
                lag_b = mats["lag_between"]
                R = R * pt.switch(pt.eq(lag_b, 0.0), 1.0, pt.power(rho_b, lag_b))
            V = V + tau ** 2 * R
        # baseline levels (integrated out)
        if md.levels:
            V = V + pri["baseline_sd"] ** 2 * mats["level_mask"]
        # time course (integrated out)
        H = time_course_design(md, settings, tc)
        if H is not None:
            ZH = Z @ H
            V = V + ZH @ ZH.T
        else:  # emax: Delta(t) = E t / (ET50 + t), E ~ N(0, delta_sd^2)
            et50 = pm.LogNormal("et50", mu=math.log(float(settings.get("emax_et50_median_months", 2.0))),
                                sigma=1.0)
            zh = pri["delta_sd"] * pt.dot(Z, _emax_h(t, et50))
            V = V + pt.outer(zh, zh)
        pm.MvNormal("y", mu=level_mean, cov=V, observed=y_obs, dims="obs")
    return model


def _build_binary_model(md: ModelData, settings: dict):
    import pymc as pm

    pri = resolve_priors(md, settings)
    obs = md.obs
    bin_idx = obs["visit_idx"].to_numpy(int)
    with pm.Model(coords=_coords(md)) as model:
        events = pm.Data("events", obs["events"].to_numpy().astype("int64"), dims="obs")
        total = pm.Data("total", obs["total"].to_numpy().astype("int64"), dims="obs")
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
    """nutpie compilation (numba backend); ``None`` for a model without free parameters (then the posterior
    is drawn exactly, see ``fit_outcome``)."""
    import nutpie
    if not model.free_RVs:
        return None
    return nutpie.compile_pymc_model(model)


def sample_compiled(compiled, settings: dict, seed: int, *, draws: int | None = None, tune: int | None = None,
                    chains: int | None = None, progress_bar: bool | None = None) -> az.InferenceData:
    """nutpie sampling with the settings' chains/draws/tune/target_accept; warm-up draws not kept and the
    unconstrained copies of constrained parameters (``*__``) dropped from the posterior.

    ``sampling.cores`` (default 1): threads nutpie may use. One thread running the chains one after another
    is the default because, for models this small, threads cost more than they save: 4 x (1000 + 2000)
    draws took 1.3 s with cores=1 and 16 s with cores=2 on the 2-core test machine under load; it also
    leaves the parallelism to Snakemake (one job per outcome). Results do not depend on ``cores``."""
    import nutpie
    s = resolved_settings(settings)["sampling"]
    chains = int(chains or s.get("chains", 4))
    kwargs = dict(draws=int(draws or s.get("draws", 1000)), tune=int(tune or s.get("tune", 1000)),
                  chains=chains, cores=max(1, min(chains, int(s.get("cores") or 1))), seed=int(seed),
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


PLACEHOLDER = "no_free_parameters"


@contextlib.contextmanager
def limited_blas_threads():
    """Run with one BLAS/LAPACK thread (threadpoolctl). The model's log density calls LAPACK (Cholesky,
    triangular solves) on matrices of ~10-30 rows; with OpenBLAS's default thread pool every call pays thread
    synchronisation, which on a busy 2-core machine made one gradient evaluation ~100x slower (measured 23 ms
    vs 0.1-0.2 ms). One thread is also what a Snakemake job with one core should use."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1):
        yield


def _empty_posterior(settings: dict) -> az.InferenceData:
    """A posterior with no sampled variables (model without free parameters); chains x draws from settings."""
    s = resolved_settings(settings)["sampling"]
    nc, nd = int(s.get("chains", 4)), int(s.get("draws", 1000))
    # InferenceData drops an empty group, so a placeholder holds the chain x draw shape until the exactly
    # drawn latent quantities replace it (add_latent_draws)
    return az.from_dict(posterior={PLACEHOLDER: np.zeros((nc, nd))})


def outcome_seed(base_seed: int, outcome: str) -> int:
    """A fixed per-outcome seed from the config's base seed (stable across runs and machines). The same in
    every study set, so that an outcome whose data are the same in two sets gets the same numbers in both."""
    return int((int(base_seed) + zlib.crc32(outcome.encode())) % (2 ** 31 - 1))


def fit_time_course(md: ModelData, settings: dict, seed: int, tc: str | None = None, *, compiled=None,
                    model=None) -> tuple[az.InferenceData, Any, dict]:
    """Build, compile and sample one model, then add the exactly drawn latent quantities. Returns (idata,
    model, timings). ``compiled``/``model`` may be passed to reuse a compilation (same design)."""
    settings = resolved_settings(settings)
    with limited_blas_threads():
        return _fit_time_course(md, settings, seed, tc, compiled, model)


def _fit_time_course(md, settings, seed, tc, compiled, model):
    t0 = time.perf_counter()
    if model is None:
        model = build_model(md, settings, tc)
    if compiled is None and model.free_RVs:
        compiled = compile_model(model)
    t1 = time.perf_counter()
    if model.free_RVs:
        compiled = compiled.with_data(**data_updates(md, settings))
        idata = sample_compiled(compiled, settings, seed)
    else:
        idata = _empty_posterior(settings)
    t2 = time.perf_counter()
    if md.kind == "continuous":
        add_latent_draws(idata, md, settings, seed, effective_time_course(md, settings, tc))
    return idata, model, {"seconds_compile": round(t1 - t0, 3), "seconds_sample": round(t2 - t1, 3)}


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
        return _bookkeeping_idata(md, settings, fit_status=md.status)
    if md.status == "single_study":
        return _bookkeeping_idata(md, settings, fit_status=FIT_STATUS_STUDY_ESTIMATE)
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


FIT_STATUS_STUDY_ESTIMATE = "study_estimate"
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
    from timecourse_meta.model.diagnostics import diagnostics_table
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
    import warnings
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


# ---------------------------------------------------------------------------------------------------------
# After sampling: exact latent draws and the groups the workflow needs
# ---------------------------------------------------------------------------------------------------------
def _draws(idata, name) -> np.ndarray:
    """(chain*draw, ...) array of a posterior variable."""
    v = idata.posterior[name].values
    return v.reshape((-1,) + v.shape[2:])


def _n_draws(idata) -> int:
    return int(idata.posterior.sizes["chain"] * idata.posterior.sizes["draw"])


def _corr(rho: np.ndarray, lag: np.ndarray) -> np.ndarray:
    """(D, n, n) correlation rho_d ** lag with rho ** 0 = 1."""
    return np.where(lag[None] == 0, 1.0, np.power(rho[:, None, None], lag[None]))


def _latent_prior(idata, md: ModelData, settings: dict, tc: str):
    """Per draw: the latent gamma = (theta of Delta, beta, u) -- prior mean m_g (G), prior covariance P_g
    (D, G, G) -- the loading W (D, N, G) with y = W gamma + e, and Sigma (D, N, N), the covariance of e."""
    pri = resolve_priors(md, settings)
    mats = structure_matrices(md, settings)
    D = _n_draws(idata)
    N, K, S, B = md.n_obs, len(md.post_visits), len(md.studies), len(md.levels)
    t = md.post_visits.astype(float)
    H = time_course_design(md, settings, tc)
    if H is None:
        et50 = _draws(idata, "et50")
        Hd = pri["delta_sd"] * _emax_h(t[None, :], et50[:, None])[:, :, None]        # (D, K, 1)
    else:
        Hd = np.broadcast_to(H, (D,) + H.shape)
    p = Hd.shape[2]
    has_u = tc != "independent"
    G = p + B + (S * K if has_u else 0)
    W = np.zeros((D, N, G))
    W[:, :, :p] = np.einsum("nk,dkp->dnp", mats["Z"], Hd)
    lvl = md.obs["level_idx"].to_numpy(int)
    vis = md.obs["visit_idx"].to_numpy(int)
    sid = md.obs["study_idx"].to_numpy(int)
    for j in range(N):
        if lvl[j] >= 0:
            W[:, j, p + lvl[j]] = 1.0
        if has_u and vis[j] > 0:
            W[:, j, p + B + sid[j] * K + vis[j] - 1] = 1.0
    m_g = np.concatenate([np.zeros(p), md.level_centre if B else np.zeros(0), np.zeros(G - p - B)])
    Pg = np.zeros((D, G, G))
    Pg[:, np.arange(p), np.arange(p)] = 1.0
    if B:
        Pg[:, p + np.arange(B), p + np.arange(B)] = pri["baseline_sd"] ** 2
    if has_u:
        tau = _draws(idata, "tau")
        if "rho_between" in idata.posterior:
            lag = _lag_between(t, pri["between_visit_correlation"])
            R = _corr(_draws(idata, "rho_between"), lag)
        else:
            R = np.ones((D, K, K))
        for i in range(S):
            sl = slice(p + B + i * K, p + B + (i + 1) * K)
            Pg[:, sl, sl] = tau[:, None, None] ** 2 * R
    if "rho_within" in idata.posterior:
        Sigma = mats["cov_scale"][None] * _corr(_draws(idata, "rho_within"), mats["lag_within"])
    else:
        Sigma = np.broadcast_to(mats["cov_scale"], (D, N, N)).copy()
    return m_g, Pg, W, Sigma, Hd, p, B


def marginal_moments(idata, md: ModelData, settings: dict, tc: str) -> tuple[np.ndarray, np.ndarray]:
    """Per draw: marginal mean (N,) and covariance V (D, N, N) of the observed means."""
    m_g, Pg, W, Sigma, *_ = _latent_prior(idata, md, settings, tc)
    V = Sigma + W @ Pg @ np.transpose(W, (0, 2, 1))
    return W[0] @ m_g, V


def add_latent_draws(idata: az.InferenceData, md: ModelData, settings: dict, seed: int, tc: str) -> None:
    """Draw gamma = (theta, beta, u) from its exact Gaussian conditional given y and each posterior draw of
    the hyperparameters: gamma | y ~ N(m_g + P_g W' V^-1 (y - W m_g), P_g - P_g W' V^-1 W P_g), and add
    ``delta`` (visit), ``study_delta`` (study x visit, pooled models) and ``baseline`` (level) to the
    posterior."""
    post = idata.posterior
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    m_g, Pg, W, Sigma, Hd, p, B = _latent_prior(idata, md, settings, tc)
    D, N, G = W.shape
    K, S = len(md.post_visits), len(md.studies)
    y = md.obs["y"].to_numpy(float)
    PgWt = Pg @ np.transpose(W, (0, 2, 1))                                   # (D, G, N)
    V = Sigma + W @ PgWt
    resid = y[None, :] - np.einsum("dng,g->dn", W, m_g)
    sol = np.linalg.solve(V, np.concatenate([resid[:, :, None], np.transpose(PgWt, (0, 2, 1))], axis=2))
    mean = m_g[None, :] + np.einsum("dgn,dn->dg", PgWt, sol[:, :, 0])
    cov = Pg - PgWt @ sol[:, :, 1:]
    cov = 0.5 * (cov + np.transpose(cov, (0, 2, 1)))
    w, Q = np.linalg.eigh(cov)
    rng = np.random.default_rng([int(seed), 4242])
    gamma = mean + np.einsum("dgh,dh->dg", Q, np.sqrt(np.clip(w, 0.0, None)) * rng.standard_normal((D, G)))
    delta = np.einsum("dkp,dp->dk", Hd, gamma[:, :p])
    coords = _coords(md)
    cd = {"chain": post["chain"].values, "draw": post["draw"].values}
    new = {"delta": xr.DataArray(delta.reshape(nc, nd, K), dims=("chain", "draw", "visit"),
                                 coords={**cd, "visit": coords["visit"]})}
    if tc != "independent":
        u = gamma[:, p + B:].reshape(D, S, K)
        new["study_delta"] = xr.DataArray((delta[:, None, :] + u).reshape(nc, nd, S, K),
                                          dims=("chain", "draw", "study", "visit"),
                                          coords={**cd, "study": coords["study"], "visit": coords["visit"]})
    if B:
        new["baseline"] = xr.DataArray(gamma[:, p:p + B].reshape(nc, nd, B), dims=("chain", "draw", "level"),
                                       coords={**cd, "level": coords["level"]})
    idata.posterior = post.assign(**new).drop_vars(PLACEHOLDER, errors="ignore")
    idata.posterior.attrs.update(post.attrs)
    idata.posterior.attrs["time_course"] = tc


def pointwise_log_likelihood(idata: az.InferenceData, md: ModelData, settings: dict, tc: str | None = None
                             ) -> xr.Dataset:
    """Continuous: log p(y_j | y_-j, hyperparameters) per draw from the marginal MvNormal (Buerkner, Gabry &
    Vehtari 2021, non-factorised normal models: log p = -log(2 pi)/2 + log(g_jj)/2 - c_j^2/(2 g_jj),
    g = V^-1, c = g (y - m)); binary: the binomial log pmf."""
    post = idata.posterior
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    if md.kind == "binary":
        from scipy import stats
        p = _draws(idata, "p_study")
        ll = stats.binom.logpmf(md.obs["events"].to_numpy()[None, :], md.obs["total"].to_numpy()[None, :], p)
    else:
        tc = effective_time_course(md, settings, tc or _tc_of(idata, settings))
        y = md.obs["y"].to_numpy(float)
        m, V = marginal_moments(idata, md, settings, tc)
        P = np.linalg.inv(V)
        c = np.einsum("dij,dj->di", P, y[None, :] - m[None, :])
        g = np.diagonal(P, axis1=1, axis2=2)
        ll = -0.5 * math.log(2 * math.pi) + 0.5 * np.log(g) - 0.5 * c ** 2 / g
    coords = {"chain": post["chain"].values, "draw": post["draw"].values, "obs": _coords(md)["obs"]}
    return xr.Dataset({"y": (("chain", "draw", "obs"), ll.reshape(nc, nd, -1))}, coords=coords)


def _tc_of(idata, settings) -> str | None:
    tc = idata.posterior.attrs.get("time_course")
    return tc if tc else None


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


def _conditional_mean(idata, md: ModelData) -> np.ndarray:
    """(D, N) mean of each observed row given the latent draws: baseline level + the study's change."""
    obs = md.obs
    vis = obs["visit_idx"].to_numpy(int)
    D = _n_draws(idata)
    if "study_delta" in idata.posterior:
        sd = _draws(idata, "study_delta")
        full = np.concatenate([np.zeros((D, sd.shape[1], 1)), sd], axis=2)
        m = full[:, obs["study_idx"].to_numpy(int), vis]
    else:
        delta = _draws(idata, "delta")
        m = np.concatenate([np.zeros((D, 1)), delta], axis=1)[:, vis]
    if md.levels:
        lvl = obs["level_idx"].to_numpy(int)
        base = _draws(idata, "baseline")
        m = m + np.where(lvl[None, :] >= 0, base[:, np.maximum(lvl, 0)], 0.0)
    return m


def _prior_delta(prior: xr.Dataset, md: ModelData, settings: dict, tc: str, seed: int) -> xr.DataArray:
    """Prior draws of Delta (the model integrates it out, so PyMC does not draw it): Delta = H theta."""
    nc, nd = prior.sizes["chain"], prior.sizes["draw"]
    D = nc * nd
    t = md.post_visits.astype(float)
    rng = np.random.default_rng([int(seed), 99])
    H = time_course_design(md, settings, tc)
    if H is None:
        et50 = prior["et50"].values.reshape(-1)
        delta = resolve_priors(md, settings)["delta_sd"] * rng.standard_normal(D)[:, None] * \
            _emax_h(t[None, :], et50[:, None])
    else:
        delta = rng.standard_normal((D, H.shape[1])) @ H.T
    return xr.DataArray(delta.reshape(nc, nd, -1), dims=("chain", "draw", "visit"),
                        coords={"chain": prior["chain"].values, "draw": prior["draw"].values,
                                "visit": _coords(md)["visit"]})


def augment_idata(idata: az.InferenceData, model, md: ModelData, settings: dict, seed: int,
                  time_course: str) -> az.InferenceData:
    """Add prior and prior predictive (PyMC; plus prior draws of Delta), posterior predictive (given the
    latent draws; numpy), observed data, pointwise log likelihood, a new study's change (``predictions``)
    and constant data (bookkeeping in its attrs). All random numbers come from ``seed``."""
    import pymc as pm
    s = resolved_settings(settings)["sampling"]
    post = idata.posterior
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    coords = _coords(md)
    cd = {"chain": post["chain"].values, "draw": post["draw"].values}
    rng = np.random.default_rng([int(seed), 777])
    if md.kind == "continuous":
        cond_mean = _conditional_mean(idata, md)
        mats = structure_matrices(md, settings)
        if "rho_within" in post:
            Sigma = mats["cov_scale"][None] * _corr(_draws(idata, "rho_within"), mats["lag_within"])
            L = np.linalg.cholesky(Sigma)
            y_rep = cond_mean + np.einsum("dij,dj->di", L, rng.standard_normal(cond_mean.shape))
        else:
            y_rep = cond_mean + np.sqrt(np.diag(mats["cov_scale"]))[None, :] * rng.standard_normal(cond_mean.shape)
    else:
        p = _draws(idata, "p_study")
        y_rep = rng.binomial(md.obs["total"].to_numpy(int)[None, :], p).astype(float)
    with model:
        prior = pm.sample_prior_predictive(draws=int(s.get("prior_draws", 1000)), random_seed=int(seed) + 1,
                                           compile_kwargs={"mode": "FAST_COMPILE"})
    if md.kind == "continuous" and "prior" in prior.groups():
        prior.prior["delta"] = _prior_delta(prior.prior, md, settings, time_course, seed)
    elif md.kind == "continuous":  # no free parameters (one study, one visit): only Delta has a prior
        shape = xr.Dataset(coords={"chain": [0], "draw": np.arange(int(s.get("prior_draws", 1000)))})
        prior.add_groups({"prior": xr.Dataset({"delta": _prior_delta(shape, md, settings, time_course, seed)})})
    idata.extend(prior)
    obs_coord = coords["obs"]
    idata.add_groups({"posterior_predictive": xr.Dataset(
        {"y": (("chain", "draw", "obs"), y_rep.reshape(nc, nd, -1))}, coords={**cd, "obs": obs_coord})})
    observed = md.obs["events"].to_numpy(float) if md.kind == "binary" else md.obs["y"].to_numpy(float)
    idata.observed_data = xr.Dataset({"y": (("obs",), observed)}, coords={"obs": obs_coord})
    idata.add_groups({"log_likelihood": pointwise_log_likelihood(idata, md, settings, time_course)})
    pred = _new_study_draws(idata, md, settings, seed)
    if pred is not None:
        idata.add_groups({"predictions": pred})
    const = _constant_data(md)
    const.attrs.update(_meta(md, settings, fit_status="fitted", time_course=time_course, seed=int(seed)))
    if "constant_data" in idata.groups():
        idata.constant_data = const
    else:
        idata.add_groups({"constant_data": const})
    return idata


# ---------------------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------------------
SUMMARY_COLUMNS = [
    "outcome", "study_set", "kind", "analysis_scale", "status", "time_course", "visit_months", "quantity",
    "study_id", "median", "lower", "upper", "p_improvement", "prior_median", "prior_lower", "prior_upper",
    "n_studies", "n_patients", "n_studies_model", "n_patients_model", "evidence", "label", "estimand", "primary",
    "note",
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


def prior_dominated(lower: float, upper: float, prior_lower: float, prior_upper: float) -> tuple[bool, float]:
    """(whether the interval is at least ``PRIOR_DOMINATED_RATIO`` as wide as the prior's, width ratio)."""
    pw = prior_upper - prior_lower
    if not (np.isfinite(pw) and pw > 0 and np.isfinite(upper - lower)):
        return False, float("nan")
    ratio = float((upper - lower) / pw)
    return ratio >= PRIOR_DOMINATED_RATIO, ratio


def _with_prior_check(evidence: str, label: str, lo, hi, plo, phi) -> tuple[str, str]:
    dominated, ratio = prior_dominated(lo, hi, plo, phi)
    if dominated:
        return Evidence.PRIOR_DOMINATED, label_prior_dominated(ratio, label)
    return evidence, label


def summarise(idata: az.InferenceData, model_data: ModelData, settings: dict) -> pd.DataFrame:
    """Tidy (long) summary: one row per visit x quantity (x study for study-level quantities).

    Columns: SUMMARY_COLUMNS. ``median``/``lower``/``upper``: posterior median and equal-tailed interval
    (``settings["interval"]``, default 0.95), or a closed-form estimate and interval, on the analysis scale.
    ``evidence`` says what the number is (``model_data.Evidence``) and ``label`` words it for a reader:
      study_estimate   one study's own estimate: change with a t interval (n - 1 df), or events/total with
                       the exact Clopper-Pearson interval; no model
      pooled           a model estimate at a visit/duration where >= 2 studies report
      interpolated     a time-course estimate at a visit where 0 or 1 study reports (model has >= 2 studies)
      prior_dominated  a model estimate whose 95% interval is >= 90% as wide as the prior's (also tau, rho)
      between_arm      a controlled study's MSCT-minus-control difference (``estimand``, ``primary``)
      shrunken_study   a study's estimate shrunken towards the time course
      median_only, not_estimable
    Quantities:
      continuous  delta (pooled change from baseline Delta(t); single study: the study's own change, closed
                  form), delta_percent (log scale: 100 (exp(Delta) - 1)), prediction (a new study; +
                  prediction_percent), study_delta (shrunken), study_observed (each study's own change with its
                  t interval), control_observed (a controlled study's control-arm change, same form), tau,
                  rho_within, rho_between (with prior median/interval), between_arm_difference (+ _percent on
                  the log scale; both estimands, ``primary`` marks the configured one), elpd_loo (one row per
                  time course; median = elpd, lower/upper = +/- 2 SE), time_course_choice (the rule's
                  decision in ``note``), reported_median (median-only rows, listed).
      binary      proportion (pooled typical proportion at a duration with >= 2 studies; else the study's
                  own events/total, exact interval), prediction, study_proportion (shrunken), study_observed
                  (each study's events/total), control_observed, tau, between_arm_difference (risk
                  difference, Newcombe interval), reported_median.
    ``p_improvement``: probability that the change is in the direction of benefit (NaN for proportions).
    ``n_studies``/``n_patients``: studies and patients at that visit; ``n_studies_model``/
    ``n_patients_model``: all studies and patients in the fitted model (NA without a model)."""
    md = model_data
    settings = resolved_settings(settings)
    level = float(settings.get("interval", 0.95))
    meta = idata.constant_data.attrs if "constant_data" in idata.groups() else {}
    tc = meta.get("time_course", "none")
    fitted = "posterior" in idata.groups()
    n_all, p_all = (md.obs["study_id"].nunique(), md.total_patients()) if (fitted and md.n_obs) else (pd.NA, pd.NA)
    base = {"outcome": md.outcome, "study_set": md.study_set, "kind": md.kind,
            "analysis_scale": md.analysis_scale, "status": md.status, "time_course": tc,
            "n_studies_model": n_all, "n_patients_model": p_all}
    rows: list[dict] = []

    def add(**kw):
        r = dict(base)
        r.update(kw)
        rows.append(r)

    at_visit = md.studies_at_visit()
    pts = md.patients_at_visit()
    fitted_to = f"fitted to {n_all} studies ({p_all} patients)"

    if md.kind == "continuous" and md.n_obs:
        rho_hat = (float(np.median(_draws(idata, "rho_within"))) if fitted and "rho_within" in idata.posterior
                   else float(settings.get("within_person_correlation", 0.5)))
        own = observed_study_changes(md, rho_hat)
        for r in own:
            lo, hi = t_interval(r["estimate"], r["se"], r["df"], level)
            add(quantity="study_observed", study_id=r["study_id"], visit_months=r["visit_months"],
                median=r["estimate"], lower=lo, upper=hi,
                p_improvement=_p_improve_t(r["estimate"], r["se"], r["df"], md.direction), n_studies=1,
                n_patients=int(r["n"]), evidence=Evidence.STUDY_ESTIMATE, label=label_study(r["study_id"], r["n"]),
                note=f"{r['method']}; se={r['se']:.4g}; t interval, {r['df']:g} df")
            if not fitted:   # one study: its own numbers are the result (no model)
                quantities = {"delta": lambda x: x}
                if md.analysis_scale == "log":
                    quantities["delta_percent"] = lambda x: float(100 * np.expm1(x))
                for q, f in quantities.items():
                    add(quantity=q, study_id=r["study_id"], visit_months=r["visit_months"], median=f(r["estimate"]),
                        lower=f(lo), upper=f(hi),
                        p_improvement=_p_improve_t(r["estimate"], r["se"], r["df"], md.direction), n_studies=1,
                        n_patients=int(r["n"]), evidence=Evidence.STUDY_ESTIMATE,
                        label=label_study(r["study_id"], r["n"]),
                        note=f"{r['method']}; t interval, {r['df']:g} df; not sampled (one study)")

    if fitted and md.kind == "continuous":
        delta = _draws(idata, "delta")
        pred = idata.predictions["delta_new_study"].values.reshape(delta.shape)
        sdelta = _draws(idata, "study_delta") if "study_delta" in idata.posterior else None
        prior_delta = None
        if "prior" in idata.groups() and "delta" in idata.prior:
            pv = idata.prior["delta"].values
            prior_delta = pv.reshape((-1,) + pv.shape[2:])
        for k, t in enumerate(md.post_visits):
            v = k + 1
            studies = at_visit.get(v, [])
            ns, npat = len(studies), pts.get(v, 0)
            if ns >= 2:
                ev, lab = Evidence.POOLED, label_pooled(float(t), ns, npat, n_all, p_all)
            else:
                ev, lab = Evidence.INTERPOLATED, label_interpolated(float(t), studies, npat, n_all, p_all)
            m, lo, hi = _q(delta[:, k], level)
            pm_, plo, phi = _q(prior_delta[:, k], level) if prior_delta is not None else (np.nan,) * 3
            ev, lab = _with_prior_check(ev, lab, lo, hi, plo, phi)
            common = dict(visit_months=float(t), n_studies=ns, n_patients=npat, evidence=ev, label=lab)
            add(quantity="delta", median=m, lower=lo, upper=hi, prior_median=pm_, prior_lower=plo, prior_upper=phi,
                p_improvement=_p_improve(delta[:, k], md.direction), note=f"time course {tc}", **common)
            if md.analysis_scale == "log":
                pc = 100 * np.expm1(delta[:, k])
                m, lo, hi = _q(pc, level)
                add(quantity="delta_percent", median=m, lower=lo, upper=hi,
                    p_improvement=_p_improve(delta[:, k], md.direction), note=f"time course {tc}", **common)
            m, lo, hi = _q(pred[:, k], level)
            add(quantity="prediction", median=m, lower=lo, upper=hi,
                p_improvement=_p_improve(pred[:, k], md.direction), note="a new study", **common)
            if md.analysis_scale == "log":
                m, lo, hi = _q(100 * np.expm1(pred[:, k]), level)
                add(quantity="prediction_percent", median=m, lower=lo, upper=hi,
                    p_improvement=_p_improve(pred[:, k], md.direction), note="a new study", **common)
            for st in studies:
                own = md.obs[(md.obs["study_id"] == st) & (md.obs["visit_idx"] == v)]
                if own.empty:  # the study counts near this visit (tolerance) but reports at another time
                    continue
                i = md.studies.index(st)
                x = sdelta[:, i, k]
                m, lo, hi = _q(x, level)
                npat_s = int(own["n"].max())
                add(quantity="study_delta", study_id=st, median=m, lower=lo, upper=hi,
                    p_improvement=_p_improve(x, md.direction), visit_months=float(t), n_studies=1,
                    n_patients=npat_s, evidence=Evidence.SHRUNKEN_STUDY,
                    label=f"shrunken study estimate ({study_display(st)}, {npat_s} patients)", note="")
        pri = resolve_priors(md, settings)
        from scipy import stats
        for name, cfgkey in (("rho_within", "within_study_correlation"),
                             ("rho_between", "between_visit_correlation")):
            if name in idata.posterior:
                x = _draws(idata, name)
                m, lo, hi = _q(x, level)
                a, b = pri[cfgkey]["alpha"], pri[cfgkey]["beta"]
                pq = stats.beta.ppf([0.5, (1 - level) / 2, 1 - (1 - level) / 2], a, b)
                ev, lab = _with_prior_check(Evidence.POOLED, f"model parameter, {fitted_to}", lo, hi, pq[1], pq[2])
                add(quantity=name, median=m, lower=lo, upper=hi, prior_median=float(pq[0]),
                    prior_lower=float(pq[1]), prior_upper=float(pq[2]), n_studies=n_all, n_patients=p_all,
                    evidence=ev, label=lab,
                    note=f"{pri[cfgkey]['structure']}; Beta({a:g}, {b:g}) prior"
                         + (f"; correlation at a lag of {pri[cfgkey]['lag_months']:g} months"
                            if pri[cfgkey]["structure"] == "ar1" else ""))
        if "tau" in idata.posterior:
            _add_tau(add, idata, pri, level, n_all, p_all, fitted_to)
    elif md.kind == "binary":
        _summarise_binary(add, idata, md, settings, level, fitted, n_all, p_all)

    # control arms of controlled studies: their own change (or proportion) --------------------------------------
    for _, r in md.control_changes.iterrows():
        lo, hi = float(r["lower"]), float(r["upper"])
        if md.kind == "continuous" and np.isfinite(r["df"]):
            lo, hi = t_interval(float(r["estimate"]), float(r["se"]), float(r["df"]), level)
        pim = (_p_improve_t(float(r["estimate"]), float(r["se"]), float(r["df"]), md.direction)
               if md.kind == "continuous" else float("nan"))
        add(quantity="control_observed", study_id=r["study_id"], visit_months=float(r["visit_months"]),
            median=float(r["estimate"]), lower=lo, upper=hi, p_improvement=pim, n_studies=1,
            n_patients=int(r["n"]), evidence=Evidence.STUDY_ESTIMATE,
            label=f"control arm: {label_study(r['study_id'], r['n'])}", note=f"control arm; {r['method']}")

    # between-arm differences (closed form) -----------------------------------------------------------------
    for _, r in md.between_arm.iterrows():
        primary = bool(r["primary"])
        common = dict(visit_months=float(r["visit_months"]), study_id=r["study_id"], n_studies=1,
                      n_patients=int(r["msct_n"] + r["control_n"]), evidence=Evidence.BETWEEN_ARM,
                      label=label_between_arm(r["study_id"], r["msct_n"], r["control_n"], r["estimand"], primary),
                      estimand=r["estimand"], primary=primary)
        if md.kind == "continuous":
            lo, hi = t_interval(float(r["estimate"]), float(r["se"]), float(r["df"]), level)
            pim = _p_improve_t(float(r["estimate"]), float(r["se"]), float(r["df"]), md.direction)
            how = f"t interval, {r['df']:g} df"
        else:
            lo, hi, pim, how = float(r["lower"]), float(r["upper"]), float("nan"), "Newcombe hybrid score interval"
        add(quantity="between_arm_difference", median=float(r["estimate"]), lower=float(lo), upper=float(hi),
            p_improvement=pim, note=f"MSCT minus control; {r['method']}; se={r['se']:.4g}; {how}", **common)
        if md.analysis_scale == "log" and md.kind == "continuous":
            add(quantity="between_arm_difference_percent", median=float(100 * np.expm1(r["estimate"])),
                lower=float(100 * np.expm1(lo)), upper=float(100 * np.expm1(hi)), p_improvement=pim,
                note=f"ratio of MSCT to control, as percent difference; {how} on the log scale", **common)

    # time-course comparison ----------------------------------------------------------------------------------
    if meta.get("loo_comparison_json"):
        cmp = pd.read_json(__import__("io").StringIO(meta["loo_comparison_json"]), orient="records")
        for _, r in cmp.iterrows():
            add(quantity="elpd_loo", median=float(r["elpd_loo"]), lower=float(r["elpd_loo"] - 2 * r["se"]),
                upper=float(r["elpd_loo"] + 2 * r["se"]), n_studies=n_all, n_patients=p_all,
                evidence=Evidence.POOLED, label=f"time-course comparison (PSIS-LOO), {fitted_to}",
                time_course=r["time_course"],
                note=(f"rank {int(r['rank'])}; elpd_diff {r['elpd_diff']:.3g} (se {r['dse']:.3g}); "
                      f"weight {r['weight']:.3g}; p_loo {r['p_loo']:.3g}; pareto-k warning {bool(r['warning'])}; "
                      f"converged {bool(r['converged'])}; reported: {tc}"))
    if fitted and meta.get("time_course_note"):
        add(quantity="time_course_choice", n_studies=n_all, n_patients=p_all, evidence=Evidence.POOLED,
            label=f"time course used for the reported results, {fitted_to}",
            note=f"{meta['time_course_note']} (time_course_rule: {settings.get('time_course_rule', 'loo')})")

    # median-only rows: listed --------------------------------------------------------------------------------
    for _, r in md.listed.iterrows():
        add(quantity="reported_median", study_id=r["study_id"], visit_months=r["time_months"],
            median=r["value"], n_studies=1, n_patients=r["n"], evidence=Evidence.MEDIAN_ONLY,
            label=LABEL_MEDIAN_ONLY, note=f"{r['arm']} arm; {r['reason']}")

    if not rows:
        add(quantity="none", n_studies=0, n_patients=0, evidence=Evidence.NOT_ESTIMABLE,
            label=f"not estimable: {md.status_reason or md.status}", note=md.status_reason)

    out = pd.DataFrame(rows)
    for c in SUMMARY_COLUMNS:
        if c not in out:
            out[c] = np.nan
    out = out[SUMMARY_COLUMNS]
    for c in ("median", "lower", "upper", "p_improvement", "prior_median", "prior_lower", "prior_upper",
              "visit_months"):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    for c in ("n_studies", "n_patients", "n_studies_model", "n_patients_model"):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("Int64")
    out["primary"] = out["primary"].astype("boolean")
    bad = set(out["evidence"].dropna()) - set(Evidence.ALL)
    if bad or out["evidence"].isna().any():
        raise AssertionError(f"summary rows without a known evidence category: {bad or 'missing'}")
    return out.reset_index(drop=True)


def _summarise_binary(add, idata, md: ModelData, settings, level, fitted, n_all, p_all) -> None:
    """Binary rows: pooled typical proportion at durations with >= 2 studies (random-effects logit model),
    else each study's own events/total with its exact interval."""
    from scipy import stats
    pri = resolve_priors(md, settings)
    zq = stats.norm.ppf([0.5, (1 - level) / 2, 1 - (1 - level) / 2])
    prior_p = 1.0 / (1.0 + np.exp(-pri["mu_sd"] * zq))
    if fitted:
        pbin = _draws(idata, "p_bin")
        pnew = idata.predictions["p_new_study"].values.reshape(pbin.shape)
        pst = _draws(idata, "p_study")
        at_visit, pts = md.studies_at_visit(), md.patients_at_visit()
        for b, t in enumerate(md.visits):
            studies = at_visit.get(b, [])
            ns, npat = len(studies), pts.get(b, 0)
            lab = label_pooled(float(t), ns, npat, n_all, p_all, time_course=False) + "; random-effects logit model"
            m, lo, hi = _q(pbin[:, b], level)
            ev, lab = _with_prior_check(Evidence.POOLED, lab, lo, hi, prior_p[1], prior_p[2])
            common = dict(visit_months=float(t), n_studies=ns, n_patients=npat, evidence=ev, label=lab)
            add(quantity="proportion", median=m, lower=lo, upper=hi, p_improvement=float("nan"),
                prior_median=float(prior_p[0]), prior_lower=float(prior_p[1]), prior_upper=float(prior_p[2]),
                note="typical study", **common)
            m, lo, hi = _q(pnew[:, b], level)
            add(quantity="prediction", median=m, lower=lo, upper=hi, p_improvement=float("nan"),
                note="a new study", **common)
            for j in np.flatnonzero(md.obs["visit_idx"].to_numpy() == b):
                st = md.obs["study_id"].iloc[j]
                m, lo, hi = _q(pst[:, j], level)
                tot = int(md.obs["total"].iloc[j])
                add(quantity="study_proportion", study_id=st, median=m, lower=lo, upper=hi,
                    p_improvement=float("nan"), visit_months=float(t), n_studies=1, n_patients=tot,
                    evidence=Evidence.SHRUNKEN_STUDY,
                    label=f"shrunken study estimate ({study_display(st)}, {tot} patients)", note="")
        if "tau" in idata.posterior:
            _add_tau(add, idata, pri, level, n_all, p_all, f"fitted to {n_all} studies ({p_all} patients)")
    rows = md.study_rows
    for _, r in (rows.iterrows() if len(rows) else []):
        lo, hi = clopper_pearson(r["events"], r["total"], level)
        t = float(r["bin_months"])
        what = f"{int(r['events'])}/{int(r['total'])}; Clopper-Pearson exact interval"
        common = dict(study_id=r["study_id"], visit_months=t, median=float(r["events"] / r["total"]), lower=lo,
                      upper=hi, p_improvement=float("nan"), n_studies=1, n_patients=int(r["total"]),
                      evidence=Evidence.STUDY_ESTIMATE, label=label_study(r["study_id"], r["total"], t))
        add(quantity="study_observed", note=f"{what}; reported at {r['time_months']:g} months"
            if np.isfinite(r["time_months"]) else what, **common)
        if not bool(r["pooled"]):
            add(quantity="proportion", note=f"{what}; only study at this follow-up duration: no model", **common)


def _add_tau(add, idata, pri, level, n_all, p_all, fitted_to=""):
    x = _draws(idata, "tau")
    m, lo, hi = _q(x, level)
    pq = tau_prior_quantiles(pri, (0.5, (1 - level) / 2, 1 - (1 - level) / 2))
    ev, lab = _with_prior_check(Evidence.POOLED, f"between-study SD, {fitted_to}", lo, hi, pq[1], pq[2])
    add(quantity="tau", median=m, lower=lo, upper=hi, prior_median=pq[0], prior_lower=pq[1], prior_upper=pq[2],
        n_studies=n_all, n_patients=p_all, evidence=ev, label=lab,
        note=f"{pri['tau_family']}(scale {pri['tau_scale']:g}); between-study SD at each visit")


def _p_improve_t(est, se, df, direction) -> float:
    from scipy import stats
    if not (np.isfinite(se) and se > 0):
        return float("nan")
    if direction == "decrease":
        return float(stats.t.cdf(-est / se, df))
    if direction == "increase":
        return float(stats.t.sf(-est / se, df))
    return float("nan")


def observed_study_changes(md: ModelData, rho_within: float) -> list[dict]:
    """Each study's own (unshrunken) change from baseline per visit, for forest plots: a reported change
    score as it is (se = s / sqrt(n)); else follow-up minus the same cohort's baseline mean, with
    Var = v_t + v_0 - 2 Cov and Cov from the nested-subset rule at ``rho_within`` (the posterior median; without
    a model the configured within-person r). ``df`` = n - 1 for its t interval. Where several cohorts report
    a visit, the one with the most patients is used."""
    out = []
    if md.kind != "continuous" or md.n_obs == 0:
        return out
    obs = md.obs.reset_index(drop=True)
    S = md.A * np.where(md.lag_within == 0, 1.0, np.power(rho_within, md.lag_within))
    for (st, v), grp in obs[obs["visit_idx"] > 0].groupby(["study_id", "visit_idx"]):
        chg = grp[grp["measure"] == "change"]
        if len(chg):
            j = chg.sort_values("n").index[-1]
            out.append({"study_id": st, "visit_months": float(obs.loc[j, "time_months"]), "n": obs.loc[j, "n"],
                        "estimate": float(obs.loc[j, "y"]), "se": float(math.sqrt(S[j, j])),
                        "df": float(obs.loc[j, "n"]) - 1, "method": "reported change score"})
            continue
        j = grp.sort_values("n").index[-1]
        base = obs[(obs["study_id"] == st) & (obs["cohort"] == obs.loc[j, "cohort"]) & (obs["visit_idx"] == 0)]
        if base.empty:
            continue
        b = base.index[0]
        var = S[j, j] + S[b, b] - 2 * S[j, b]
        out.append({"study_id": st, "visit_months": float(obs.loc[j, "time_months"]), "n": obs.loc[j, "n"],
                    "estimate": float(obs.loc[j, "y"] - obs.loc[b, "y"]), "se": float(math.sqrt(max(var, 0.0))),
                    "df": float(obs.loc[j, "n"]) - 1,
                    "method": f"follow-up minus baseline (cohort {obs.loc[j, 'cohort']}, rho_within {rho_within:.2f})"})
    return out


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
    ``seed`` defaults to ``outcome_seed(settings.get("seed", 20231127), outcome)``."""
    table = pd.read_csv(table_csv) if isinstance(table_csv, (str, os.PathLike)) else table_csv
    dictionary = _load_dictionary(outcome_dictionary_yaml_or_dict)
    spec = dictionary.get(outcome)
    if spec is None:
        raise KeyError(f"outcome {outcome!r} is not in the outcome dictionary")
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
    """Delta (random walk: J + Brownian motion), tau (half-normal), rho_within, rho_between drawn from the
    model's priors."""
    rng = np.random.default_rng(seed)
    visits = np.asarray(visits, float)
    gaps = np.diff(np.concatenate([[0.0], visits]))
    delta = priors["delta_sd"] * rng.standard_normal() + \
        np.cumsum(priors["step_sd"] * np.sqrt(gaps / reference_months) * rng.standard_normal(len(visits)))
    wc = priors.get("within_study_correlation", {"alpha": 2.0, "beta": 2.0})
    bc = priors.get("between_visit_correlation", {"alpha": 2.0, "beta": 2.0})
    return {"visits": visits, "delta": delta, "tau": abs(rng.normal(0, priors["tau_scale"])),
            "rho_within": rng.beta(wc["alpha"], wc["beta"]), "rho_between": rng.beta(bc["alpha"], bc["beta"])}


def example_outcome_dictionary() -> dict:
    """A small outcome dictionary matching ``example_analysis_table`` (tests, benchmark)."""
    return {
        "sledai": {"label": "SLEDAI", "kind": "continuous", "canonical_unit": "points",
                   "direction_of_benefit": "decrease", "analysis_scale": "identity"},
        "proteinuria_24h": {"label": "24-h proteinuria", "kind": "continuous", "canonical_unit": "g/24h",
                            "direction_of_benefit": "decrease", "analysis_scale": "log"},
        "serum_albumin": {"label": "Serum albumin", "kind": "continuous", "canonical_unit": "g/L",
                          "direction_of_benefit": "increase", "analysis_scale": "identity"},
        "c3": {"label": "C3", "kind": "continuous", "canonical_unit": "g/L", "direction_of_benefit": "increase",
               "analysis_scale": "identity"},
        "remission": {"label": "Renal remission", "kind": "binary", "canonical_unit": "",
                      "direction_of_benefit": "increase", "analysis_scale": "logit"},
    }


def example_analysis_table() -> pd.DataFrame:
    """A synthetic analysis table shaped like the shipped evidence (see docs/analysis_table.md): SLEDAI in 4
    studies (an RCT reporting change at 6 months with a control arm; absolute means at 0/1/3, 0/12 and
    0/0.92/1.85/3.69/5.54 months), proteinuria (log scale) in 3 studies incl. a subset cohort and a change
    score anchored by a follow-up mean, albumin in one study, C3 median-only, remission (binary) in 3 studies
    with a control arm, and a derived change row that must not enter the likelihood."""
    recs = []

    def add(study, outcome, measure, t, n, mean=np.nan, sd=np.nan, arm="MSCT", cohort="all", origin="reported",
            events=np.nan, total=np.nan, poolable=True, reason="", method="reported", kind="continuous",
            scale="identity", direction="decrease", unit="points"):
        recs.append({
            "analysis_id": f"{study}-{outcome}-{len(recs):03d}", "study_id": study, "arm": arm,
            "arm_label": "hUC-MSC" if arm == "MSCT" else "standard care", "outcome": outcome, "kind": kind,
            "measure": measure, "origin": origin, "cohort": cohort, "time_months": t, "n": n, "mean": mean,
            "sd": sd, "events": events, "total": total, "unit": unit, "analysis_scale": scale,
            "direction_of_benefit": direction, "method": method, "assumption": "", "skewness_flag": False,
            "poolable": poolable, "not_poolable_reason": reason, "raw_row_ids": f"raw-{len(recs):03d}",
            "source": "synthetic#table1"})

    # SLEDAI ---------------------------------------------------------------------------------------------------
    add("rct_a", "sledai", "absolute", 0, 18, 14.0, 4.0)
    add("rct_a", "sledai", "change_from_baseline", 6, 18, -7.5, 4.5)
    add("rct_a", "sledai", "absolute", 0, 18, 13.5, 4.2, arm="control")
    add("rct_a", "sledai", "change_from_baseline", 6, 18, -4.0, 5.0, arm="control")
    for t, m, s in ((0, 12.1, 3.9), (1, 9.0, 4.1), (3, 6.8, 3.7)):
        add("sa_b", "sledai", "absolute", t, 15, m, s)
    add("sa_b", "sledai", "change_from_baseline", 3, 15, -5.3, 3.0, origin="derived", method="change_sd_from_r")
    for t, m, s in ((0, 15.2, 5.0), (12, 6.1, 4.0)):
        add("sa_c", "sledai", "absolute", t, 40 if t == 0 else 35, m, s)
    for t, m, s in ((0, 13.0, 4.5), (4 * 12 / 52, 10.2, 4.6), (8 * 12 / 52, 8.8, 4.2), (16 * 12 / 52, 7.6, 4.0),
                    (24 * 12 / 52, 6.9, 3.8)):
        add("sa_d", "sledai", "absolute", round(t, 4), 22, m, s)
    # proteinuria (g/24h, log scale) ---------------------------------------------------------------------------
    kw = dict(scale="log", unit="g/24h")
    for t, m, s in ((0, 3.2, 2.1), (1, 2.3, 1.8), (3, 1.6, 1.3)):
        add("sa_b", "proteinuria_24h", "absolute", t, 15, m, s, **kw)
    for t, m, s, n in ((0, 2.8, 1.9, 40), (12, 1.1, 0.9, 35)):
        add("sa_c", "proteinuria_24h", "absolute", t, n, m, s, **kw)
    add("rct_a", "proteinuria_24h", "absolute", 0, 18, 3.0, 2.0, **kw)
    add("rct_a", "proteinuria_24h", "absolute", 6, 18, 1.4, 1.1, **kw)
    add("rct_a", "proteinuria_24h", "change_from_baseline", 6, 18, -1.6, 1.5, **kw)
    add("rct_a", "proteinuria_24h", "absolute", 6, 18, 2.4, 1.6, arm="control", **kw)
    add("rct_a", "proteinuria_24h", "change_from_baseline", 6, 18, -0.6, 1.4, arm="control", **kw)
    add("sa_d", "proteinuria_24h", "absolute", 0, 12, 2.9, 1.7, cohort="seen_at_1m", **kw)
    add("sa_d", "proteinuria_24h", "absolute", 1, 12, 2.2, 1.5, cohort="seen_at_1m", **kw)
    # albumin: one study ---------------------------------------------------------------------------------------
    for t, m, s in ((0, 27.0, 5.0), (1, 29.5, 5.2), (3, 32.0, 4.8)):
        add("sa_b", "serum_albumin", "absolute", t, 15, m, s, direction="increase", unit="g/L")
    # C3: median only ------------------------------------------------------------------------------------------
    add("sa_c", "c3", "absolute", 0, 40, 0.55, poolable=False, reason="median without spread (median_only)",
        method="median_only", direction="increase", unit="g/L")
    # remission (binary) ---------------------------------------------------------------------------------------
    bk = dict(kind="binary", scale="logit", direction="increase", unit="")
    add("rct_a", "remission", "absolute", 6, 18, events=9, total=18, **bk)
    add("rct_a", "remission", "absolute", 6, 18, events=4, total=18, arm="control", **bk)
    add("sa_c", "remission", "absolute", 12, 35, events=21, total=35, **bk)
    add("sa_d", "remission", "absolute", round(24 * 12 / 52, 4), 22, events=10, total=22, **bk)
    add("sa_b", "remission", "absolute", 12, 15, events=8, total=15, **bk)
    return pd.DataFrame(recs)
