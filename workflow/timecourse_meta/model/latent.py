"""Each study's latent Gaussian layer given the time course: (beta_i, u_i) | theta, y_i for a chunk of posterior
draws, one padded group of studies at a time (``blocks``). With e_i = y_i - level_mean_i - U_i theta =
W_i (gamma_i - m_i) + eps_i and prior covariance P_i (baseline_sd^2 per level, tau^2 R(rho_b) for u_i), the
conditional is N(m_i + P_i W_i' D_i^-1 e_i, P_i - P_i W_i' D_i^-1 W_i P_i) with D_i = Sigma_i + W_i P_i W_i', the
study's block of the marginal covariance."""
from __future__ import annotations

import numpy as np

from timecourse_meta.model.base import ModelData
from timecourse_meta.model.blocks import BlockGroup, block_covariance, correlation
from timecourse_meta.model.build import lag_between
from timecourse_meta.model.priors import resolve_priors


def loadings(md: ModelData, g: BlockGroup, has_u: bool) -> tuple[np.ndarray, np.ndarray]:
    """(S_g, m, G) loading W of the group's rows on (levels padded to the group's most, then K visits) and
    the (S_g, B_g) level indices (-1: a padding level, loaded by no row)."""
    N, K = md.n_obs, len(md.post_visits)
    lvl = np.append(md.obs["level_idx"].to_numpy(int), -1)[g.rows]
    vis = np.append(md.obs["visit_idx"].to_numpy(int), 0)[g.rows]
    levels = [sorted(set(row[row >= 0].tolist())) for row in lvl]
    B = max([len(x) for x in levels] + [0])
    lev_ids = np.full((len(levels), B), -1, dtype=int)
    for s, ids in enumerate(levels):
        lev_ids[s, :len(ids)] = ids
    W = np.zeros(g.rows.shape + (B + (K if has_u else 0),))
    for s in range(g.rows.shape[0]):
        for j in range(g.rows.shape[1]):
            if g.rows[s, j] >= N:
                continue
            if lvl[s, j] >= 0:
                W[s, j, levels[s].index(lvl[s, j])] = 1.0
            if has_u and vis[s, j] > 0:
                W[s, j, B + vis[s, j] - 1] = 1.0
    return W, lev_ids


def study_latents(md: ModelData, settings: dict, groups: list[BlockGroup], loads: list, hyper: dict,
                  e: np.ndarray, baseline_sd: float, has_u: bool, rng, u_out: np.ndarray, base_out: np.ndarray
                  ) -> None:
    """Fill ``u_out`` (c, S, K) and ``base_out`` (c, B) with one draw per posterior draw of the chunk; ``e``
    (c, N) is y - level_mean - U theta; ``loads`` the groups' ``loadings``."""
    c, K = hyper["n"], len(md.post_visits)
    if has_u:
        lag = lag_between(md.post_visits.astype(float), resolve_priors(md, settings)["between_visit_correlation"])
        R = correlation(hyper["rho_between"], lag) if "rho_between" in hyper else np.ones((c, K, K))
        Pu = hyper["tau"][:, None, None] ** 2 * R
    e = np.concatenate([e, np.zeros((c, 1))], axis=1)
    for g, (W, lev_ids) in zip(groups, loads):
        S, B, G = W.shape[0], lev_ids.shape[1], W.shape[2]
        P = np.zeros((c, S, G, G))
        P[:, :, np.arange(B), np.arange(B)] = np.where(lev_ids >= 0, baseline_sd ** 2, 1.0)[None]
        if has_u:
            P[:, :, B:, B:] = Pu[:, None]
        Dg = block_covariance(g, hyper, baseline_sd)                             # (c, S, m, m)
        PWt = P @ np.swapaxes(W, 1, 2)[None]                                      # (c, S, G, m)
        sol = np.linalg.solve(Dg, np.concatenate([e[:, g.rows][..., None], np.swapaxes(PWt, 2, 3)], axis=3))
        mean = np.einsum("csgm,csm->csg", PWt, sol[..., 0])
        cov = P - PWt @ sol[..., 1:]
        w, Q = np.linalg.eigh(0.5 * (cov + np.swapaxes(cov, 2, 3)))
        gamma = mean + np.einsum("csgh,csh->csg", Q, np.sqrt(np.clip(w, 0.0, None)) * rng.standard_normal((c, S, G)))
        if has_u:
            u_out[:, g.studies] = gamma[:, :, B:]
        real = lev_ids >= 0
        base_out[:, lev_ids[real]] = md.level_centre[lev_ids[real]][None] + gamma[:, :, :B][:, real]
