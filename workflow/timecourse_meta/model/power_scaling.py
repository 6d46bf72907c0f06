"""Prior sensitivity without refitting: power-scaling diagnostics (Kallioinen, Paananen, Buerkner & Vehtari 2023;
ArviZ ``psens``, as in the R package priorsense) on the main fit's posterior draws.

Power-scaling needs the joint log prior and log likelihood of each draw. The continuous model integrates the
Gaussian layers out; its draws of the latent gamma = (theta of Delta, baseline levels, study effects u) are
drawn exactly given each hyperparameter draw (``posterior.draw_latent``, same seed, so the same draws as the
fit's). Prior = the hyperparameters' priors (tau, rho_between, rho_within, ET50) + theta ~ N(0, I) (the prior on
Delta(t)) + the baseline levels' normal prior; likelihood = p(y | theta, levels, hyperparameters) with the study
effects integrated out (the random-effects distribution is part of the model, not a prior to scale, as priorsense
advises for hierarchical models). Binary models: the priors of mu_bin and tau; likelihood = the binomial terms.
Diagnosis (priorsense's): prior sensitivity above the threshold with likelihood sensitivity above it too =
prior-data conflict; prior sensitive and likelihood not = prior-dominated / weak likelihood.
"""
from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from timecourse_meta.model.base import ModelData, resolved_settings
from timecourse_meta.model.posterior import draw_latent, flat_draws
from timecourse_meta.model.priors import resolve_priors

COLUMNS = ["parameter", "visit_months", "prior_sensitivity", "likelihood_sensitivity", "threshold", "diagnosis"]
DEFAULT_THRESHOLD = 0.05
CONFLICT = "prior-data conflict"
PRIOR_DOMINATED = "prior-dominated / weak likelihood"
HYPERPARAMETERS = ("tau", "rho_between", "rho_within", "et50")


def tau_log_prior(tau: np.ndarray, priors: dict) -> np.ndarray:
    scale, fam = priors["tau_scale"], priors["tau_family"]
    if fam == "half_normal":
        return stats.halfnorm.logpdf(tau, scale=scale)
    if fam == "half_cauchy":
        return stats.halfcauchy.logpdf(tau, scale=scale)
    if fam == "half_student_t":
        return np.log(2.0) + stats.t.logpdf(tau, priors["tau_nu"], scale=scale)
    return stats.expon.logpdf(tau, scale=scale)


def _hyper_log_prior(idata, md: ModelData, settings: dict, pri: dict) -> np.ndarray:
    post = idata.posterior
    lp = 0.0
    if "tau" in post:
        lp = lp + tau_log_prior(flat_draws(idata, "tau"), pri)
    for name, key in (("rho_between", "between_visit_correlation"), ("rho_within", "within_study_correlation")):
        if name in post:
            lp = lp + stats.beta.logpdf(flat_draws(idata, name), pri[key]["alpha"], pri[key]["beta"])
    if "et50" in post:
        median = float(settings.get("emax_et50_median_months", 2.0))
        lp = lp + stats.lognorm.logpdf(flat_draws(idata, "et50"), s=1.0, scale=median)
    return np.broadcast_to(lp, (int(post.sizes["chain"] * post.sizes["draw"]),)).astype(float)


def continuous_log_terms(idata, md: ModelData, settings: dict, seed: int, tc: str) -> tuple[np.ndarray, np.ndarray]:
    """(log prior, log likelihood) per draw of the continuous model (module docstring); the likelihood by study
    block (the study effects are within one study), so no rows x rows matrix is formed."""
    from timecourse_meta.model.blocks import block_covariance, draw_chunks
    from timecourse_meta.model.build import structure_blocks, visit_loading

    settings = resolved_settings(settings)
    pri = resolve_priors(md, settings)
    lat = draw_latent(idata, md, settings, seed, tc)
    lp = _hyper_log_prior(idata, md, settings, pri) + stats.norm.logpdf(lat.theta).sum(axis=1)
    lvl = md.obs["level_idx"].to_numpy(int)
    if md.levels:
        lp = lp + stats.norm.logpdf(lat.baseline, md.level_centre[None, :], pri["baseline_sd"]).sum(axis=1)
    D, N = lat.theta.shape[0], md.n_obs
    level_part = np.where(lvl[None, :] >= 0, lat.baseline[:, np.maximum(lvl, 0)], 0.0) if md.levels else 0.0
    resid = md.obs["y"].to_numpy(float)[None, :] - level_part - np.einsum(
        "nk,dk->dn", visit_loading(md), lat.delta)
    resid = np.concatenate([np.broadcast_to(resid, (D, N)), np.zeros((D, 1))], axis=1)   # index N: padding
    hyper_all = {k: flat_draws(idata, k) for k in ("rho_within", "tau", "rho_between") if k in idata.posterior}
    logdet, quad = np.zeros(D), np.zeros(D)
    for g in structure_blocks(md, settings):
        for sl in draw_chunks(D, g.rows.size, g.rows.shape[1]):
            hyper = {k: v[sl] for k, v in hyper_all.items()}
            hyper["n"] = sl.stop - sl.start
            L = np.linalg.cholesky(block_covariance(g, hyper, 0.0))                       # (c, S, m, m)
            z = np.linalg.solve(L, resid[sl][:, g.rows][..., None])[..., 0]
            logdet[sl] += 2.0 * np.log(np.diagonal(L, axis1=2, axis2=3)).sum(axis=(1, 2))
            quad[sl] += (z ** 2).sum(axis=(1, 2))
    ll = -0.5 * (N * np.log(2 * np.pi) + logdet + quad)
    return lp, ll


def binary_log_terms(idata, md: ModelData, settings: dict) -> tuple[np.ndarray, np.ndarray]:
    pri = resolve_priors(md, resolved_settings(settings))
    lp = stats.norm.logpdf(flat_draws(idata, "mu_bin"), 0.0, pri["mu_sd"]).sum(axis=1)
    if "tau" in idata.posterior:
        lp = lp + tau_log_prior(flat_draws(idata, "tau"), pri)
    ll = idata.log_likelihood["y"].values
    return lp, ll.reshape(ll.shape[0] * ll.shape[1], -1).sum(axis=1)


def sensitivity_table(idata, md: ModelData, settings: dict, seed: int, threshold: float = DEFAULT_THRESHOLD
                      ) -> pd.DataFrame:
    """Prior and likelihood power-scaling sensitivity (CJS distance based) of each hyperparameter and of the
    pooled Delta (binary: the typical proportion) at each visit, with the diagnosis (COLUMNS)."""
    if "posterior" not in idata.groups() or md.status != "pooled":
        return pd.DataFrame(columns=COLUMNS)
    post = idata.posterior
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    if md.kind == "binary":
        lp, ll = binary_log_terms(idata, md, settings)
        pooled, visit_dim = "p_bin", "bin"
    else:
        tc = str(idata.constant_data.attrs.get("time_course", post.attrs.get("time_course")))
        lp, ll = continuous_log_terms(idata, md, settings, seed, tc)
        pooled, visit_dim = "delta", "visit"
    names = [v for v in (*HYPERPARAMETERS, pooled) if v in post]
    data = az.InferenceData(
        posterior=post[names],
        log_prior=xr.Dataset({"prior": (("chain", "draw"), lp.reshape(nc, nd))}, coords={
            "chain": post["chain"].values, "draw": post["draw"].values}),
        log_likelihood=xr.Dataset({"y": (("chain", "draw"), ll.reshape(nc, nd))}, coords={
            "chain": post["chain"].values, "draw": post["draw"].values}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prior_s = az.psens(data, component="prior")
        lik_s = az.psens(data, component="likelihood")
    rows = []
    for name in names:
        ps, ls = np.atleast_1d(prior_s[name].values), np.atleast_1d(lik_s[name].values)
        visits = [""] * len(ps) if name != pooled else [_visit(v) for v in post[name][visit_dim].values]
        for v, a, b in zip(visits, ps, ls):
            rows.append({"parameter": name, "visit_months": v, "prior_sensitivity": float(a),
                         "likelihood_sensitivity": float(b), "threshold": float(threshold),
                         "diagnosis": diagnosis(float(a), float(b), threshold)})
    return pd.DataFrame(rows, columns=COLUMNS)


def _visit(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


def diagnosis(prior_sensitivity: float, likelihood_sensitivity: float, threshold: float = DEFAULT_THRESHOLD
              ) -> str:
    """priorsense's reading of the two sensitivities."""
    if prior_sensitivity > threshold and likelihood_sensitivity > threshold:
        return CONFLICT
    if prior_sensitivity > threshold:
        return PRIOR_DOMINATED
    return "-"
