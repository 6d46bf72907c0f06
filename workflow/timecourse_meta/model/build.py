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


def data_updates(md: ModelData, settings: dict | None = None, time_course: str | None = None
                 ) -> dict[str, np.ndarray]:
    """Values of the model's ``pm.Data`` containers for this data set and these prior scales (for
    ``compiled.with_data``): observed data, the data-dependent matrices and the prior parameters, so one
    compilation serves every data set and prior of one design (``structure_key``). Dense path (up to
    ``DENSE_MAX_ROWS`` rows): every N x N matrix, whatever the number of rows; block path: the blocks' sampling
    covariance scales, the baseline SD and the time-course design H (emax: delta_sd)."""
    settings = resolved_settings(settings)
    pri = resolve_priors(md, settings)
    if md.kind == "binary":
        out = {"events": md.obs["events"].to_numpy().astype("int64"),
               "total": md.obs["total"].to_numpy().astype("int64"), "mu_sd": np.asarray(pri["mu_sd"], float)}
        if md.status == "pooled":
            out["tau_scale"] = np.asarray(pri["tau_scale"], float)
        return out
    tc = effective_time_course(md, settings, time_course)
    K = len(md.post_visits)
    out = {"y_obs": md.obs["y"].to_numpy(float), "level_mean": level_mean_of(md)}
    if md.needs_rho_within:
        wcfg = pri["within_study_correlation"]
        out.update(rho_within_alpha=np.asarray(wcfg["alpha"], float), rho_within_beta=np.asarray(wcfg["beta"], float))
    if tc != "independent":
        out["tau_scale"] = np.asarray(pri["tau_scale"], float)
        if K >= 2:
            bcfg = pri["between_visit_correlation"]
            out.update(rho_between_alpha=np.asarray(bcfg["alpha"], float),
                       rho_between_beta=np.asarray(bcfg["beta"], float))
    H = time_course_design(md, settings, tc)
    if H is None:
        out["delta_sd"] = np.asarray(pri["delta_sd"], float)
    if md.n_obs > DENSE_MAX_ROWS:
        for i, g in enumerate(structure_blocks(md, settings)):
            out[f"cov_scale_{i}"] = g.cov_scale
        if md.levels:
            out["baseline_sd"] = np.asarray(pri["baseline_sd"], float)
        if H is not None:
            out["H"] = H
        return out
    m = structure_matrices(md, settings)
    out["cov_scale"] = m["cov_scale"]
    if md.needs_rho_within:
        out["lag_within"] = m["lag_within"]
    if tc != "independent":
        out["between_mask"] = m["between_mask"]
        if K >= 2:
            out["lag_between"] = m["lag_between"]
    fixed = (pri["baseline_sd"] ** 2 * m["level_mask"]) if md.levels else np.zeros((md.n_obs, md.n_obs))
    if H is not None:
        ZH = m["Z"] @ H
        fixed = fixed + ZH @ ZH.T
    else:
        out.update(Z=m["Z"], visit_times=md.post_visits.astype(float))
    out["fixed_cov"] = fixed
    return out


def structure_key(md: ModelData, settings: dict, time_course: str | None = None) -> tuple:
    """What a compiled model depends on beyond its ``pm.Data``: two data sets with the same key share one
    compilation (``compiled.with_data(**data_updates(...))``). Continuous: time course, heterogeneity family,
    which correlations are sampled, dense or by block; by block also the blocks' layout and constants (the log
    density needs static shapes), so there only the prior parameters, the observed means and their SDs vary
    within one key; binary: also the numbers of rows and time bins (one random effect per row)."""
    settings = resolved_settings(settings)
    family = resolve_priors(md, settings)["tau_family"]
    if md.kind == "binary":
        return ("binary", md.status, family, md.n_obs, len(md.visits))
    tc = effective_time_course(md, settings, time_course)
    key = ("continuous", tc, family, bool(md.needs_rho_within), tc != "independent" and len(md.post_visits) >= 2)
    if md.n_obs <= DENSE_MAX_ROWS:
        return key + ("dense",)
    return key + ("blocks", _block_layout_digest(md, settings, tc))


def _block_layout_digest(md: ModelData, settings: dict, tc: str) -> str:
    """A digest of what the block likelihood holds as constants: rows, visit times, the groups' index arrays
    and masks, the time-course design's shape and whether there are baseline levels."""
    import hashlib
    h = hashlib.sha256()
    H = time_course_design(md, settings, tc)
    h.update(repr((md.n_obs, bool(md.levels), None if H is None else H.shape)).encode())
    h.update(md.post_visits.astype(float).tobytes())
    for g in structure_blocks(md, settings):
        for a in (g.rows, g.lag_within, g.between_mask, g.lag_between, g.level_mask, g.Z):
            h.update(repr(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


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
    block (``likelihood.MarginalSpec``). Data, matrices and prior parameters are the ``pm.Data`` of
    ``data_updates``. Sampled: tau, rho_between, rho_within (and ET50 for emax)."""
    import pymc as pm

    from timecourse_meta.model import likelihood

    pri = resolve_priors(md, settings)
    K = len(md.post_visits)
    data = data_updates(md, settings, tc)
    with pm.Model(coords=model_coords(md)) as model:
        y_obs = pm.Data("y_obs", data["y_obs"], dims="obs")
        level_mean = pm.Data("level_mean", data["level_mean"], dims="obs")
        box = {k: pm.Data(k, v) for k, v in data.items() if k not in ("y_obs", "level_mean")}
        hyper = {}
        if md.needs_rho_within:    # sampling covariance of the means (within-study correlation)
            hyper["rho_within"] = pm.Beta("rho_within", alpha=box["rho_within_alpha"], beta=box["rho_within_beta"])
        if tc != "independent":    # study random effects (integrated out)
            hyper["tau"] = tau_rv(pm, pri, box["tau_scale"])
            if K >= 2:
                hyper["rho_between"] = pm.Beta("rho_between", alpha=box["rho_between_alpha"],
                                               beta=box["rho_between_beta"])
        if tc == "emax":           # Delta(t) = E t / (ET50 + t), E ~ N(0, delta_sd^2)
            hyper["et50"] = pm.LogNormal(
                "et50", mu=math.log(float(settings.get("emax_et50_median_months", 2.0))), sigma=1.0)
        if md.n_obs <= DENSE_MAX_ROWS:
            _dense_likelihood(box, hyper, y_obs, level_mean)
        else:
            groups = structure_blocks(md, settings)
            spec = likelihood.MarginalSpec(
                groups=groups, cov_scales=[box[f"cov_scale_{i}"] for i in range(len(groups))], Z=visit_loading(md),
                H=box.get("H"), t=md.post_visits.astype(float), delta_sd=box.get("delta_sd"),
                baseline_sd=box.get("baseline_sd", 0.0), names=list(hyper))
            pm.CustomDist("y", level_mean, *hyper.values(), logp=spec.logp, random=spec.random,
                          signature=",".join(["(n)"] + ["()"] * len(hyper)) + "->(n)", observed=y_obs, dims="obs")
    return model


def _dense_likelihood(box: dict, hyper: dict, y_obs, level_mean) -> None:
    """y ~ MvNormal(level_mean, V) with V written out from the ``pm.Data`` matrices of ``data_updates`` (small
    data: ``DENSE_MAX_ROWS``); baseline levels and a linear time course are the constant ``fixed_cov``."""
    import pymc as pm
    import pytensor.tensor as pt

    def corr(rho, lag):
        return pt.switch(pt.eq(lag, 0.0), 1.0, pt.power(rho, lag))

    V = box["cov_scale"]
    if "rho_within" in hyper:
        V = V * corr(hyper["rho_within"], box["lag_within"])
    if "tau" in hyper:
        R = box["between_mask"]
        if "rho_between" in hyper:
            R = R * corr(hyper["rho_between"], box["lag_between"])
        V = V + hyper["tau"] ** 2 * R
    V = V + box["fixed_cov"]
    if "et50" in hyper:
        zh = box["delta_sd"] * pt.dot(box["Z"], emax_h(box["visit_times"], hyper["et50"]))
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
