"""PyMC model construction for one outcome (continuous: the marginal model of the ``model`` package docstring;
binary: the random-effects logit model), with observed data in ``pm.Data`` so one compilation serves many data
sets of one design."""
from __future__ import annotations

import math

import numpy as np

from timecourse_meta.model.base import ModelData, resolved_settings
from timecourse_meta.model.blocks import BlockGroup, padded_groups, take_blocks
from timecourse_meta.model.priors import resolve_priors, tau_rv

TIME_COURSES = ("random_walk", "piecewise_linear", "emax")
R_JITTER = 1e-6
#: up to this many rows the likelihood is one dense MvNormal (compiles and samples faster for small data);
#: above it, by study block (``likelihood``): the same density, memory and time linear in the rows
DENSE_MAX_ROWS = 100


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


def lag_between(t: np.ndarray, cfg: dict) -> np.ndarray:
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
    """The marginal covariance's constants as dense N x N matrices (small data and checks only: the model uses
    ``structure_blocks``): ``cov_scale`` (A) and ``lag_within`` (from model_data); ``between_mask`` (rows of the
    same study, both after baseline) and ``lag_between`` (exponent of rho_between between their visits);
    ``level_mask`` (absolute rows of the same baseline level); ``level_mean`` (centre of the baseline prior for
    absolute rows, 0 for change rows); ``Z`` (N x K: row -> its post-baseline visit)."""
    pri = resolve_priors(md, settings)
    obs = md.obs
    vis = obs["visit_idx"].to_numpy(int)
    post = vis > 0
    same_study = obs["study_idx"].to_numpy()[:, None] == obs["study_idx"].to_numpy()[None, :]
    between_mask = (same_study & post[:, None] & post[None, :]).astype(float)
    vt = np.concatenate([[0.0], md.post_visits.astype(float)])[vis]
    lag_b = np.where(between_mask > 0, lag_between(vt, pri["between_visit_correlation"]), 0.0)
    lvl = obs["level_idx"].to_numpy(int)
    level_mask = ((lvl[:, None] == lvl[None, :]) & (lvl[:, None] >= 0)).astype(float)
    return {"cov_scale": md.A.astype(float), "lag_within": md.lag_within.astype(float),
            "between_mask": between_mask, "lag_between": lag_b, "level_mask": level_mask,
            "level_mean": level_mean_of(md), "Z": visit_loading(md)}


def level_mean_of(md: ModelData) -> np.ndarray:
    """(N,) centre of the baseline prior for absolute rows, 0 for change rows."""
    lvl = md.obs["level_idx"].to_numpy(int)
    return np.where(lvl >= 0, md.level_centre[np.maximum(lvl, 0)] if md.levels else 0.0, 0.0).astype(float)


def visit_loading(md: ModelData) -> np.ndarray:
    """Z (N x K): row -> its post-baseline visit (a zero row at baseline)."""
    vis = md.obs["visit_idx"].to_numpy(int)
    post = vis > 0
    Z = np.zeros((md.n_obs, len(md.post_visits)))
    Z[np.flatnonzero(post), vis[post] - 1] = 1.0
    return Z


def structure_blocks(md: ModelData, settings: dict) -> list[BlockGroup]:
    """The constants of ``structure_matrices`` by study block (``blocks.BlockGroup``, padded groups of
    ``blocks.padded_groups``): every term of the covariance but the time course is within one study (the
    sampling covariance within a study's blocks, the random effects within a study, a baseline level is one
    study's cohort), so the blocks hold all of it and memory grows with the rows, not their square."""
    pri = resolve_priors(md, settings)
    obs = md.obs
    N = md.n_obs
    vis = np.append(obs["visit_idx"].to_numpy(int), 0)                          # index N: padding
    vt = np.concatenate([[0.0], md.post_visits.astype(float)])[vis]
    lvl = np.append(obs["level_idx"].to_numpy(int), -1)
    Z = np.vstack([visit_loading(md), np.zeros((1, len(md.post_visits)))])
    A, lag_w = np.asarray(md.A, float), np.asarray(md.lag_within, float)
    out = []
    for studies, rows in padded_groups(md):
        real = rows < N
        post = (vis[rows] > 0) & real                                          # (S_g, m)
        between_mask = (post[:, :, None] & post[:, None, :]).astype(float)
        lag_b = np.stack([lag_between(ti, pri["between_visit_correlation"]) for ti in vt[rows]])
        lv = lvl[rows]
        level_mask = ((lv[:, :, None] == lv[:, None, :]) & (lv[:, :, None] >= 0)).astype(float)
        out.append(BlockGroup(studies=studies, rows=rows, cov_scale=take_blocks(A, rows, pad_diagonal=1.0),
                              lag_within=take_blocks(lag_w, rows), between_mask=between_mask,
                              lag_between=np.where(between_mask > 0, lag_b, 0.0), level_mask=level_mask,
                              Z=Z[rows]))
    return out


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


def emax_h(t, et50):
    return t / (et50 + t)


def data_updates(md: ModelData, settings: dict | None = None) -> dict[str, np.ndarray]:
    """Values of the model's ``pm.Data`` containers for this data set (for ``compiled.with_data``; the design
    -- studies, visits, n, SDs -- must be the one the model was built with)."""
    if md.kind == "binary":
        return {"events": md.obs["events"].to_numpy(float), "total": md.obs["total"].to_numpy(float)}
    out = {"y_obs": md.obs["y"].to_numpy(float), "level_mean": level_mean_of(md)}
    if md.n_obs <= DENSE_MAX_ROWS:
        return {**out, "cov_scale": np.asarray(md.A, float)}
    for i, g in enumerate(structure_blocks(md, settings or {})):
        out[f"cov_scale_{i}"] = g.cov_scale
    return out


def model_coords(md: ModelData) -> dict:
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
    + baseline_sd^2 level_mask + Z H H' Z': one dense MvNormal up to ``DENSE_MAX_ROWS`` rows, else by study
    block (``likelihood.MarginalSpec``).
    Sampled: tau, rho_between, rho_within (and ET50 for emax)."""
    import pymc as pm

    from timecourse_meta.model import likelihood

    pri = resolve_priors(md, settings)
    t = md.post_visits.astype(float)
    K = len(t)
    with pm.Model(coords=model_coords(md)) as model:
        y_obs = pm.Data("y_obs", md.obs["y"].to_numpy(float), dims="obs")
        level_mean = pm.Data("level_mean", level_mean_of(md), dims="obs")
        hyper = {}
        if md.needs_rho_within:    # sampling covariance of the means (within-study correlation)
            wcfg = pri["within_study_correlation"]
            hyper["rho_within"] = pm.Beta("rho_within", alpha=wcfg["alpha"], beta=wcfg["beta"])
        if tc != "independent":    # study random effects (integrated out)
            hyper["tau"] = tau_rv(pm, pri)
            if K >= 2:
                bcfg = pri["between_visit_correlation"]
                hyper["rho_between"] = pm.Beta("rho_between", alpha=bcfg["alpha"], beta=bcfg["beta"])
        H = time_course_design(md, settings, tc)
        if H is None:              # emax: Delta(t) = E t / (ET50 + t), E ~ N(0, delta_sd^2)
            hyper["et50"] = pm.LogNormal(
                "et50", mu=math.log(float(settings.get("emax_et50_median_months", 2.0))), sigma=1.0)
        if md.n_obs <= DENSE_MAX_ROWS:
            _dense_likelihood(md, settings, pri, H, hyper, y_obs, level_mean)
        else:
            groups = structure_blocks(md, settings)
            cov_scales = [pm.Data(f"cov_scale_{i}", g.cov_scale) for i, g in enumerate(groups)]
            spec = likelihood.MarginalSpec(groups=groups, cov_scales=cov_scales, Z=visit_loading(md), H=H, t=t,
                                           delta_sd=pri["delta_sd"],
                                           baseline_sd=pri["baseline_sd"] if md.levels else 0.0, names=list(hyper))
            pm.CustomDist("y", level_mean, *hyper.values(), logp=spec.logp, random=spec.random,
                          signature=",".join(["(n)"] + ["()"] * len(hyper)) + "->(n)", observed=y_obs, dims="obs")
    return model


def _dense_likelihood(md: ModelData, settings: dict, pri: dict, H, hyper: dict, y_obs, level_mean) -> None:
    """y ~ MvNormal(level_mean, V) with V written out (small data: ``DENSE_MAX_ROWS``)."""
    import pymc as pm
    import pytensor.tensor as pt

    def corr(rho, lag):
        return pt.switch(pt.eq(lag, 0.0), 1.0, pt.power(rho, lag))

    mats = structure_matrices(md, settings)
    cov_scale = pm.Data("cov_scale", mats["cov_scale"])
    V = cov_scale * corr(hyper["rho_within"], mats["lag_within"]) if "rho_within" in hyper else cov_scale
    if "tau" in hyper:
        R = mats["between_mask"]
        if "rho_between" in hyper:
            R = R * corr(hyper["rho_between"], mats["lag_between"])
        V = V + hyper["tau"] ** 2 * R
    if md.levels:
        V = V + pri["baseline_sd"] ** 2 * mats["level_mask"]
    if H is not None:
        ZH = mats["Z"] @ H
        V = V + ZH @ ZH.T
    else:
        zh = pri["delta_sd"] * pt.dot(mats["Z"], emax_h(md.post_visits.astype(float), hyper["et50"]))
        V = V + pt.outer(zh, zh)
    pm.MvNormal("y", mu=level_mean, cov=V, observed=y_obs, dims="obs")


def _build_binary_model(md: ModelData, settings: dict):
    import pymc as pm

    pri = resolve_priors(md, settings)
    obs = md.obs
    bin_idx = obs["visit_idx"].to_numpy(int)
    with pm.Model(coords=model_coords(md)) as model:
        events = pm.Data("events", obs["events"].to_numpy().astype("int64"), dims="obs")
        total = pm.Data("total", obs["total"].to_numpy().astype("int64"), dims="obs")
        mu_bin = pm.Normal("mu_bin", 0.0, pri["mu_sd"], dims="bin")
        if md.status == "pooled":
            tau = tau_rv(pm, pri)
            z = pm.Normal("z_study", 0.0, 1.0, dims="obs")
            theta = mu_bin[bin_idx] + tau * z
        else:
            theta = mu_bin[bin_idx]
        pm.Deterministic("p_bin", pm.math.invlogit(mu_bin), dims="bin")
        pm.Deterministic("p_study", pm.math.invlogit(theta), dims="obs")
        pm.Binomial("y", n=total, logit_p=theta, observed=events, dims="obs")
    return model
