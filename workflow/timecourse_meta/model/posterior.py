"""From posterior draws of the hyperparameters to the quantities the summary reports: the exactly drawn latent
Gaussian layer (``delta``, ``study_delta``, ``baseline``), the pointwise leave-one-out log likelihood, a new
study's change, prior and posterior predictive draws, and the bookkeeping stored in ``constant_data``."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import arviz as az
import numpy as np
import xarray as xr

from timecourse_meta.model.base import ModelData, resolved_settings
from timecourse_meta.model.blocks import draw_chunks, sampling_covariance, woodbury
from timecourse_meta.model.build import (
    R_JITTER, effective_time_course, emax_h, lag_between, level_mean_of, model_coords, structure_blocks,
    structure_matrices, time_course_design, visit_loading,
)
from timecourse_meta.model.priors import resolve_priors

PLACEHOLDER = "no_free_parameters"


def flat_draws(idata, name) -> np.ndarray:
    """(chain*draw, ...) array of a posterior variable."""
    v = idata.posterior[name].values
    return v.reshape((-1,) + v.shape[2:])


def n_draws(idata) -> int:
    return int(idata.posterior.sizes["chain"] * idata.posterior.sizes["draw"])


def _corr(rho: np.ndarray, lag: np.ndarray) -> np.ndarray:
    """(D, n, n) correlation rho_d ** lag with rho ** 0 = 1."""
    return np.where(lag[None] == 0, 1.0, np.power(rho[:, None, None], lag[None]))


def _latent_prior(idata, md: ModelData, settings: dict, tc: str):
    """Dense reference (``marginal_moments`` only). Per draw: the latent gamma = (theta of Delta, beta, u) --
    prior mean m_g (G), prior covariance P_g
    (D, G, G) -- the loading W (D, N, G) with y = W gamma + e, and Sigma (D, N, N), the covariance of e."""
    pri = resolve_priors(md, settings)
    mats = structure_matrices(md, settings)
    D = n_draws(idata)
    N, K, S, B = md.n_obs, len(md.post_visits), len(md.studies), len(md.levels)
    t = md.post_visits.astype(float)
    H = time_course_design(md, settings, tc)
    if H is None:
        et50 = flat_draws(idata, "et50")
        Hd = pri["delta_sd"] * emax_h(t[None, :], et50[:, None])[:, :, None]        # (D, K, 1)
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
        tau = flat_draws(idata, "tau")
        if "rho_between" in idata.posterior:
            lag = lag_between(t, pri["between_visit_correlation"])
            R = _corr(flat_draws(idata, "rho_between"), lag)
        else:
            R = np.ones((D, K, K))
        for i in range(S):
            sl = slice(p + B + i * K, p + B + (i + 1) * K)
            Pg[:, sl, sl] = tau[:, None, None] ** 2 * R
    if "rho_within" in idata.posterior:
        Sigma = mats["cov_scale"][None] * _corr(flat_draws(idata, "rho_within"), mats["lag_within"])
    else:
        Sigma = np.broadcast_to(mats["cov_scale"], (D, N, N)).copy()
    return m_g, Pg, W, Sigma, Hd, p, B


def marginal_moments(idata, md: ModelData, settings: dict, tc: str) -> tuple[np.ndarray, np.ndarray]:
    """Per draw: marginal mean (N,) and covariance V (D, N, N) of the observed means, written out densely
    (a reference for checks on small data; the fit works by study block)."""
    m_g, Pg, W, Sigma, *_ = _latent_prior(idata, md, settings, tc)
    V = Sigma + W @ Pg @ np.transpose(W, (0, 2, 1))
    return W[0] @ m_g, V


def _hyper_draws(idata) -> dict[str, np.ndarray]:
    """(D,) draws of the hyperparameters the block covariance reads (those the model sampled)."""
    return {k: flat_draws(idata, k) for k in ("rho_within", "tau", "rho_between") if k in idata.posterior}


def _time_course_loading(idata, md: ModelData, settings: dict, tc: str) -> np.ndarray:
    """(D, K, p) time-course design per draw (H, or delta_sd t / (ET50 + t) for emax)."""
    H = time_course_design(md, settings, tc)
    if H is None:
        t = md.post_visits.astype(float)
        et50 = flat_draws(idata, "et50")
        return resolve_priors(md, settings)["delta_sd"] * emax_h(t[None, :], et50[:, None])[:, :, None]
    return np.broadcast_to(H, (n_draws(idata),) + H.shape)


def _chunk(hyper: dict, sl: slice) -> dict:
    out = {k: v[sl] for k, v in hyper.items()}
    out["n"] = sl.stop - sl.start
    return out


@dataclass
class LatentDraws:
    """The latent Gaussian layer, one draw per posterior draw (D): ``theta`` (D, p) of Delta = Hd theta with
    ``Hd`` (D, K, p), the study effects ``u`` (D, S, K; zeros without random effects) and the baseline levels
    ``baseline`` (D, B)."""

    theta: np.ndarray
    Hd: np.ndarray
    u: np.ndarray
    baseline: np.ndarray

    @property
    def delta(self) -> np.ndarray:
        """(D, K) pooled change Delta = H theta per draw."""
        return np.einsum("dkp,dp->dk", self.Hd, self.theta)


def draw_latent(idata: az.InferenceData, md: ModelData, settings: dict, seed: int, tc: str) -> LatentDraws:
    """Draw gamma = (theta, beta, u) from its exact Gaussian conditional given y and each posterior draw of
    the hyperparameters, in two exact steps that never form a rows x rows matrix: theta | y ~ N(M^-1 U'D^-1 r,
    M^-1) (``blocks.Woodbury``), then each study's (beta_i, u_i) | theta, y_i from its own block
    (``latent.study_latents``). The same seed gives the same draws (``power_scaling`` relies on it)."""
    from timecourse_meta.model.latent import loadings, study_latents
    D, N, K, S, B = n_draws(idata), md.n_obs, len(md.post_visits), len(md.studies), len(md.levels)
    pri = resolve_priors(md, settings)
    groups = structure_blocks(md, settings)
    Z = visit_loading(md)
    Hd = _time_course_loading(idata, md, settings, tc)
    p = Hd.shape[2]
    resid = md.obs["y"].to_numpy(float) - level_mean_of(md)
    hyper_all = _hyper_draws(idata)
    baseline_sd = pri["baseline_sd"] if B else 0.0
    rng = np.random.default_rng([int(seed), 4242])
    loads = [loadings(md, g, tc != "independent") for g in groups]
    theta, u, base = np.zeros((D, p)), np.zeros((D, S, K)), np.zeros((D, B))
    for sl in draw_chunks(D, N, p + K + 4 * K * K):
        hyper = _chunk(hyper_all, sl)
        U = np.einsum("nk,ckp->cnp", Z, Hd[sl])
        wb = woodbury(groups, hyper, baseline_sd, np.broadcast_to(resid, (hyper["n"], N)), U)
        mean = wb.solve_M(np.einsum("cnp,cn->cp", U, wb.Dinv_r)[:, :, None])[:, :, 0]
        z = rng.standard_normal(mean.shape)
        theta[sl] = mean + np.linalg.solve(np.transpose(wb.M_chol, (0, 2, 1)), z[:, :, None])[:, :, 0]
        e = resid[None, :] - np.einsum("cnp,cp->cn", U, theta[sl])
        study_latents(md, settings, groups, loads, hyper, e, baseline_sd, tc != "independent", rng, u[sl], base[sl])
    return LatentDraws(theta=theta, Hd=np.asarray(Hd), u=u, baseline=base)


def add_latent_draws(idata: az.InferenceData, md: ModelData, settings: dict, seed: int, tc: str) -> None:
    """Add the exactly drawn latent layer (``draw_latent``) to the posterior: ``delta`` (visit),
    ``study_delta`` (study x visit, pooled models) and ``baseline`` (level)."""
    post = idata.posterior
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    K, S, B = len(md.post_visits), len(md.studies), len(md.levels)
    lat = draw_latent(idata, md, settings, seed, tc)
    delta = lat.delta
    coords = model_coords(md)
    cd = {"chain": post["chain"].values, "draw": post["draw"].values}
    new = {"delta": xr.DataArray(delta.reshape(nc, nd, K), dims=("chain", "draw", "visit"),
                                 coords={**cd, "visit": coords["visit"]})}
    if tc != "independent":
        new["study_delta"] = xr.DataArray((delta[:, None, :] + lat.u).reshape(nc, nd, S, K),
                                          dims=("chain", "draw", "study", "visit"),
                                          coords={**cd, "study": coords["study"], "visit": coords["visit"]})
    if B:
        new["baseline"] = xr.DataArray(lat.baseline.reshape(nc, nd, B), dims=("chain", "draw", "level"),
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
        p = flat_draws(idata, "p_study")
        ll = stats.binom.logpmf(md.obs["events"].to_numpy()[None, :], md.obs["total"].to_numpy()[None, :], p)
    else:
        ll = _marginal_loo_densities(idata, md, settings, effective_time_course(md, settings, tc or _tc_of(
            idata, settings)))
    coords = {"chain": post["chain"].values, "draw": post["draw"].values, "obs": model_coords(md)["obs"]}
    return xr.Dataset({"y": (("chain", "draw", "obs"), ll.reshape(nc, nd, -1))}, coords=coords)


def _marginal_loo_densities(idata, md: ModelData, settings: dict, tc: str) -> np.ndarray:
    """(D, N) log p(y_j | y_-j) with g = diag(V^-1) and c = V^-1 r by study block (Woodbury), chunked over
    draws."""
    D, N = n_draws(idata), md.n_obs
    groups = structure_blocks(md, settings)
    Z = visit_loading(md)
    Hd = _time_course_loading(idata, md, settings, tc)
    resid = md.obs["y"].to_numpy(float) - level_mean_of(md)
    baseline_sd = resolve_priors(md, settings)["baseline_sd"] if md.levels else 0.0
    hyper_all = _hyper_draws(idata)
    ll = np.zeros((D, N))
    for sl in draw_chunks(D, N, 2 * Hd.shape[2] + 8):
        hyper = _chunk(hyper_all, sl)
        U = np.einsum("nk,ckp->cnp", Z, Hd[sl])
        wb = woodbury(groups, hyper, baseline_sd, np.broadcast_to(resid, (hyper["n"], N)), U)
        c, g = wb.vinv_r(U), wb.vinv_diag()
        ll[sl] = -0.5 * math.log(2 * math.pi) + 0.5 * np.log(g) - 0.5 * c ** 2 / g
    return ll


def _tc_of(idata, settings) -> str | None:
    tc = idata.posterior.attrs.get("time_course")
    return tc if tc else None


def _new_study_draws(idata, md: ModelData, settings: dict, seed: int) -> xr.Dataset | None:
    post = idata.posterior
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    rng = np.random.default_rng([int(seed), 20231])
    if md.kind == "binary":
        mu = flat_draws(idata, "mu_bin")
        if "tau" in post:
            mu = mu + flat_draws(idata, "tau")[:, None] * rng.standard_normal(mu.shape)
        p = 1.0 / (1.0 + np.exp(-mu))
        return xr.Dataset({"p_new_study": (("chain", "draw", "bin"), p.reshape(nc, nd, -1))},
                          coords={"chain": post["chain"].values, "draw": post["draw"].values,
                                  "bin": model_coords(md)["bin"]})
    delta = flat_draws(idata, "delta")
    D, K = delta.shape
    if "tau" in post:
        tau = flat_draws(idata, "tau")
        z = rng.standard_normal((D, K))
        if "rho_between" in post:
            pri = resolve_priors(md, settings)
            lag = lag_between(md.post_visits.astype(float), pri["between_visit_correlation"])
            rho = flat_draws(idata, "rho_between")
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
    obs_coord = model_coords(md)["obs"] if md.n_obs else []
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


def bookkeeping_idata(md: ModelData, settings: dict, fit_status: str) -> az.InferenceData:
    cd = _constant_data(md)
    cd.attrs.update(_meta(md, settings, fit_status=fit_status, time_course="none"))
    return az.InferenceData(constant_data=cd)


def _conditional_mean(idata, md: ModelData) -> np.ndarray:
    """(D, N) mean of each observed row given the latent draws: baseline level + the study's change."""
    obs = md.obs
    vis = obs["visit_idx"].to_numpy(int)
    D = n_draws(idata)
    if "study_delta" in idata.posterior:
        sd = flat_draws(idata, "study_delta")
        full = np.concatenate([np.zeros((D, sd.shape[1], 1)), sd], axis=2)
        m = full[:, obs["study_idx"].to_numpy(int), vis]
    else:
        delta = flat_draws(idata, "delta")
        m = np.concatenate([np.zeros((D, 1)), delta], axis=1)[:, vis]
    if md.levels:
        lvl = obs["level_idx"].to_numpy(int)
        base = flat_draws(idata, "baseline")
        m = m + np.where(lvl[None, :] >= 0, base[:, np.maximum(lvl, 0)], 0.0)
    return m


def _posterior_predictive(idata, md: ModelData, settings: dict, rng) -> np.ndarray:
    """(D, N) y_rep ~ MvNormal(beta + delta, Sigma(rho_within)) given the latent draws, by study block."""
    cond_mean = _conditional_mean(idata, md)
    D, N = cond_mean.shape
    y_rep = np.concatenate([cond_mean, np.zeros((D, 1))], axis=1)          # index N: padding rows
    hyper_all = _hyper_draws(idata)
    z = rng.standard_normal((D, N + 1))
    for g in structure_blocks(md, settings):
        for sl in draw_chunks(D, g.rows.size, g.rows.shape[1]):
            L = np.linalg.cholesky(sampling_covariance(g, _chunk(hyper_all, sl)))
            y_rep[sl, g.rows] += np.einsum("csij,csj->csi", L, z[sl][:, g.rows])
    return y_rep[:, :N]


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
            emax_h(t[None, :], et50[:, None])
    else:
        delta = rng.standard_normal((D, H.shape[1])) @ H.T
    return xr.DataArray(delta.reshape(nc, nd, -1), dims=("chain", "draw", "visit"),
                        coords={"chain": prior["chain"].values, "draw": prior["draw"].values,
                                "visit": model_coords(md)["visit"]})


def augment_idata(idata: az.InferenceData, model, md: ModelData, settings: dict, seed: int,
                  time_course: str) -> az.InferenceData:
    """Add prior and prior predictive (PyMC; plus prior draws of Delta), posterior predictive (given the
    latent draws; numpy), observed data, pointwise log likelihood, a new study's change (``predictions``)
    and constant data (bookkeeping in its attrs). All random numbers come from ``seed``."""
    import pymc as pm
    s = resolved_settings(settings)["sampling"]
    post = idata.posterior
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    coords = model_coords(md)
    cd = {"chain": post["chain"].values, "draw": post["draw"].values}
    rng = np.random.default_rng([int(seed), 777])
    if md.kind == "continuous":
        y_rep = _posterior_predictive(idata, md, settings, rng)
    else:
        p = flat_draws(idata, "p_study")
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
