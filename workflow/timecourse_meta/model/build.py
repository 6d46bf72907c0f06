"""PyMC model construction for one outcome (continuous: the marginal model of the ``model`` package docstring;
binary: the random-effects logit model), with observed data in ``pm.Data`` so one compilation serves many data
sets of one design."""
from __future__ import annotations

import math

import numpy as np

from timecourse_meta.model.base import ModelData, resolved_settings
from timecourse_meta.model.priors import resolve_priors, tau_rv

TIME_COURSES = ("random_walk", "piecewise_linear", "emax")
R_JITTER = 1e-6


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
    lag_b = np.where(between_mask > 0, lag_between(vt, pri["between_visit_correlation"]), 0.0)
    lvl = obs["level_idx"].to_numpy(int)
    level_mask = ((lvl[:, None] == lvl[None, :]) & (lvl[:, None] >= 0)).astype(float)
    level_mean = np.where(lvl >= 0, md.level_centre[np.maximum(lvl, 0)] if md.levels else 0.0, 0.0)
    Z = np.zeros((N, K))
    Z[np.flatnonzero(post), vis[post] - 1] = 1.0
    return {"cov_scale": md.A.astype(float), "lag_within": md.lag_within.astype(float),
            "between_mask": between_mask, "lag_between": lag_b, "level_mask": level_mask,
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


def emax_h(t, et50):
    return t / (et50 + t)


def data_updates(md: ModelData, settings: dict | None = None, time_course: str | None = None
                 ) -> dict[str, np.ndarray]:
    """Values of the model's ``pm.Data`` containers for this data set and these prior scales (for
    ``compiled.with_data``): observed data, the data-dependent matrices and the prior parameters, so one
    compilation serves every data set and prior of one design (``structure_key``), whatever its number of rows."""
    settings = resolved_settings(settings)
    pri = resolve_priors(md, settings)
    if md.kind == "binary":
        out = {"events": md.obs["events"].to_numpy().astype("int64"),
               "total": md.obs["total"].to_numpy().astype("int64"), "mu_sd": np.asarray(pri["mu_sd"], float)}
        if md.status == "pooled":
            out["tau_scale"] = np.asarray(pri["tau_scale"], float)
        return out
    tc = effective_time_course(md, settings, time_course)
    m = structure_matrices(md, settings)
    K = len(md.post_visits)
    out = {"y_obs": md.obs["y"].to_numpy(float), "cov_scale": m["cov_scale"], "level_mean": m["level_mean"]}
    if md.needs_rho_within:
        wcfg = pri["within_study_correlation"]
        out.update(lag_within=m["lag_within"], rho_within_alpha=np.asarray(wcfg["alpha"], float),
                   rho_within_beta=np.asarray(wcfg["beta"], float))
    if tc != "independent":
        out.update(between_mask=m["between_mask"], tau_scale=np.asarray(pri["tau_scale"], float))
        if K >= 2:
            bcfg = pri["between_visit_correlation"]
            out.update(lag_between=m["lag_between"], rho_between_alpha=np.asarray(bcfg["alpha"], float),
                       rho_between_beta=np.asarray(bcfg["beta"], float))
    fixed = (pri["baseline_sd"] ** 2 * m["level_mask"]) if md.levels else np.zeros((md.n_obs, md.n_obs))
    H = time_course_design(md, settings, tc)
    if H is not None:
        ZH = m["Z"] @ H
        fixed = fixed + ZH @ ZH.T
    else:
        out.update(Z=m["Z"], visit_times=md.post_visits.astype(float), delta_sd=np.asarray(pri["delta_sd"], float))
    out["fixed_cov"] = fixed
    return out


def structure_key(md: ModelData, settings: dict, time_course: str | None = None) -> tuple:
    """What a compiled model depends on beyond its ``pm.Data``: two data sets with the same key share one
    compilation (``compiled.with_data(**data_updates(...))``). Continuous: time course, heterogeneity family,
    which correlations are sampled; binary: also the numbers of rows and time bins (one random effect per row)."""
    settings = resolved_settings(settings)
    family = resolve_priors(md, settings)["tau_family"]
    if md.kind == "binary":
        return ("binary", md.status, family, md.n_obs, len(md.visits))
    tc = effective_time_course(md, settings, time_course)
    return ("continuous", tc, family, bool(md.needs_rho_within), tc != "independent" and len(md.post_visits) >= 2)


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
    + baseline_sd^2 level_mask + Z H H' Z'. Sampled: tau, rho_between, rho_within (and ET50 for emax)."""
    import pymc as pm
    import pytensor.tensor as pt

    pri = resolve_priors(md, settings)
    K = len(md.post_visits)

    data = data_updates(md, settings, tc)
    with pm.Model(coords=model_coords(md)) as model:
        y_obs = pm.Data("y_obs", data["y_obs"], dims="obs")
        level_mean = pm.Data("level_mean", data["level_mean"], dims="obs")
        box = {k: pm.Data(k, v) for k, v in data.items() if k not in ("y_obs", "level_mean")}
        # sampling covariance of the means (within-study correlation)
        V = box["cov_scale"]
        if md.needs_rho_within:
            rho_w = pm.Beta("rho_within", alpha=box["rho_within_alpha"], beta=box["rho_within_beta"])
            lag_w = box["lag_within"]
            V = V * pt.switch(pt.eq(lag_w, 0.0), 1.0, pt.power(rho_w, lag_w))
        # study random effects (integrated out)
        if tc != "independent":
            tau = tau_rv(pm, pri, box["tau_scale"])
            R = box["between_mask"]
            if K >= 2:
                rho_b = pm.Beta("rho_between", alpha=box["rho_between_alpha"], beta=box["rho_between_beta"])
                lag_b = box["lag_between"]
                R = R * pt.switch(pt.eq(lag_b, 0.0), 1.0, pt.power(rho_b, lag_b))
            V = V + tau ** 2 * R
        # baseline levels and a linear time course (integrated out): a constant matrix (data_updates)
        V = V + box["fixed_cov"]
        if tc == "emax":  # Delta(t) = E t / (ET50 + t), E ~ N(0, delta_sd^2)
            et50 = pm.LogNormal("et50", mu=math.log(float(settings.get("emax_et50_median_months", 2.0))),
                                sigma=1.0)
            zh = box["delta_sd"] * pt.dot(box["Z"], emax_h(box["visit_times"], et50))
            V = V + pt.outer(zh, zh)
        pm.MvNormal("y", mu=level_mean, cov=V, observed=y_obs, dims="obs")
    return model


def _build_binary_model(md: ModelData, settings: dict):
    import pymc as pm

    pri = resolve_priors(md, settings)
    obs = md.obs
    bin_idx = obs["visit_idx"].to_numpy(int)
    with pm.Model(coords=model_coords(md)) as model:
        events = pm.Data("events", obs["events"].to_numpy().astype("int64"), dims="obs")
        total = pm.Data("total", obs["total"].to_numpy().astype("int64"), dims="obs")
        mu_sd = pm.Data("mu_sd", float(pri["mu_sd"]))
        mu_bin = pm.Normal("mu_bin", 0.0, mu_sd, dims="bin")
        if md.status == "pooled":
            tau = tau_rv(pm, pri, pm.Data("tau_scale", float(pri["tau_scale"])))
            z = pm.Normal("z_study", 0.0, 1.0, dims="obs")
            theta = mu_bin[bin_idx] + tau * z
        else:
            theta = mu_bin[bin_idx]
        pm.Deterministic("p_bin", pm.math.invlogit(mu_bin), dims="bin")
        pm.Deterministic("p_study", pm.math.invlogit(theta), dims="obs")
        pm.Binomial("y", n=total, logit_p=theta, observed=events, dims="obs")
    return model
