"""The continuous model's marginal covariance by study block: V = D + U U', D block-diagonal by study
(sampling covariance, study random effects and baseline levels are all within one study) and U = Z H (N x p)
the time course Delta = H theta, the one term that couples studies. Studies with the same number of rows form
a group whose blocks are stacked (S_g, m, m), so one batched Cholesky serves the group; with the Woodbury
identity and the matrix determinant lemma (M = I_p + U' D^-1 U),

    log|V| = log|D| + log|M|,   r' V^-1 r = r' D^-1 r - (U' D^-1 r)' M^-1 (U' D^-1 r),

memory and time grow linearly in the number of rows, and no N x N (or draws x N x N) array is built. The
model's log density (``build``) and the draws that follow it (``posterior``) use these groups; the numpy
helpers here work on a chunk of posterior draws at a time."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from timecourse_meta.model.base import ModelData

#: upper bound of the elements of one (draws x rows x columns) work array of the numpy helpers
CHUNK_ELEMENTS = 4_000_000


@dataclass
class BlockGroup:
    """Studies with the same number of rows ``m``: ``rows`` (S_g, m) indices into ``md.obs`` and the stacked
    (S_g, m, m) constants of their blocks (see ``build.structure_matrices`` for what each holds)."""

    studies: np.ndarray
    rows: np.ndarray
    cov_scale: np.ndarray
    lag_within: np.ndarray
    between_mask: np.ndarray
    lag_between: np.ndarray
    level_mask: np.ndarray
    Z: np.ndarray              # (S_g, m, K): row -> its post-baseline visit


def study_rows(md: ModelData) -> list[np.ndarray]:
    """Row indices of each study (study order)."""
    sid = md.obs["study_idx"].to_numpy(int)
    order = np.argsort(sid, kind="stable")
    bounds = np.searchsorted(sid[order], np.arange(len(md.studies) + 1))
    return [order[bounds[i]:bounds[i + 1]] for i in range(len(md.studies))]


def group_studies(md: ModelData, key=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(study indices, (S_g, m) row indices) per group of studies with the same row count (and the same
    ``key(study index)`` when given), groups in order of their first study."""
    per_study = study_rows(md)
    groups: dict = {}
    for i, r in enumerate(per_study):
        if len(r):
            groups.setdefault((len(r),) + ((key(i),) if key else ()), []).append(i)
    return [(np.array(s), np.stack([per_study[i] for i in s])) for s in groups.values()]


#: below this many padded flops (sum of m^3) all studies form one group (fewer compiled operations)
ONE_GROUP_FLOPS = 200_000


def padded_groups(md: ModelData) -> list[tuple[np.ndarray, np.ndarray]]:
    """Like ``group_studies`` but padded: studies form one group (blocks padded to the largest study) while
    that costs at most twice the exact work or little in absolute terms, else one group per size class
    (m up to 2, 4, 8, ...). Padding rows carry index N (``n_obs``): zero residual and loading, unit variance,
    so they add exactly nothing to the log density."""
    per_study = [r for r in study_rows(md)]
    sizes = np.array([len(r) for r in per_study])
    keep = np.flatnonzero(sizes > 0)
    exact, padded = float(np.sum(sizes[keep] ** 3)), float(len(keep) * sizes.max() ** 3)
    if padded <= max(ONE_GROUP_FLOPS, 2.0 * exact):
        classes = np.zeros(len(sizes), int)
    else:
        classes = np.ceil(np.log2(np.maximum(sizes, 1))).astype(int)
    out = []
    for c in sorted(set(classes[keep]), reverse=True):
        studies = keep[classes[keep] == c]
        m = int(sizes[studies].max())
        rows = np.full((len(studies), m), md.n_obs, dtype=int)
        for k, i in enumerate(studies):
            rows[k, :sizes[i]] = per_study[i]
        out.append((studies, rows))
    return out


def take_blocks(matrix: np.ndarray, rows: np.ndarray, pad_diagonal: float = 0.0) -> np.ndarray:
    """(S_g, m, m) blocks of an N x N matrix at the (S_g, m) row indices; padding rows (index N) are 0 off
    the diagonal and ``pad_diagonal`` on it."""
    n = matrix.shape[0]
    pad = rows >= n
    safe = np.where(pad, 0, rows)
    out = np.where(pad[:, :, None] | pad[:, None, :], 0.0, matrix[safe[:, :, None], safe[:, None, :]])
    idx = np.nonzero(pad)
    out[idx[0], idx[1], idx[1]] = pad_diagonal
    return out


def correlation(rho: np.ndarray, lag: np.ndarray) -> np.ndarray:
    """rho ** lag with rho ** 0 = 1; ``rho`` (c,) draws broadcast against a (..., m, m) ``lag`` -> (c, ...)."""
    rho = np.asarray(rho, float).reshape((-1,) + (1,) * lag.ndim)
    return np.where(lag[None] == 0, 1.0, np.power(rho, lag[None]))


def draw_chunks(n_draws: int, n_rows: int, width: int):
    """Slices of draws so that one work array of (chunk, n_rows, width) stays under ``CHUNK_ELEMENTS``."""
    size = max(1, CHUNK_ELEMENTS // max(1, n_rows * max(width, 1)))
    for start in range(0, n_draws, size):
        yield slice(start, min(n_draws, start + size))


def block_covariance(g: BlockGroup, hyper: dict, baseline_sd: float) -> np.ndarray:
    """(c, S_g, m, m) blocks of D for a chunk of draws: ``hyper`` holds (c,) arrays ``rho_within``, ``tau``,
    ``rho_between`` (each optional, as in the model) and ``n`` (c)."""
    c = hyper["n"]
    if "rho_within" in hyper:
        D = g.cov_scale[None] * correlation(hyper["rho_within"], g.lag_within)
    else:
        D = np.broadcast_to(g.cov_scale, (c,) + g.cov_scale.shape).copy()
    if "tau" in hyper:
        R = g.between_mask[None]
        if "rho_between" in hyper:
            R = R * correlation(hyper["rho_between"], g.lag_between)
        D = D + hyper["tau"].reshape(-1, 1, 1, 1) ** 2 * R
    return D + baseline_sd ** 2 * g.level_mask[None]


def sampling_covariance(g: BlockGroup, hyper: dict) -> np.ndarray:
    """(c, S_g, m, m) blocks of Sigma(rho_within), the sampling covariance of the means."""
    if "rho_within" in hyper:
        return g.cov_scale[None] * correlation(hyper["rho_within"], g.lag_within)
    return np.broadcast_to(g.cov_scale, (hyper["n"],) + g.cov_scale.shape)


@dataclass
class Woodbury:
    """For a chunk of draws: D^-1 r (c, N), diag(D^-1) (c, N), D^-1 U (c, N, p) and M = I + U' D^-1 U (c, p, p)
    with its Cholesky factor; enough for V^-1 r, diag(V^-1) and theta | y."""

    Dinv_r: np.ndarray
    Dinv_diag: np.ndarray
    Dinv_U: np.ndarray
    M: np.ndarray
    M_chol: np.ndarray

    def solve_M(self, b: np.ndarray) -> np.ndarray:
        """M^-1 b for (c, p, k) b."""
        z = np.linalg.solve(self.M_chol, b)
        return np.linalg.solve(np.transpose(self.M_chol, (0, 2, 1)), z)

    def vinv_r(self, U: np.ndarray) -> np.ndarray:
        """V^-1 r (c, N) = D^-1 r - D^-1 U M^-1 U' D^-1 r."""
        b = np.einsum("cnp,cn->cp", U, self.Dinv_r)
        return self.Dinv_r - np.einsum("cnp,cp->cn", self.Dinv_U, self.solve_M(b[:, :, None])[:, :, 0])

    def vinv_diag(self) -> np.ndarray:
        """diag(V^-1) (c, N) = diag(D^-1) - rowwise (D^-1 U) M^-1 (D^-1 U)'."""
        X = self.solve_M(np.transpose(self.Dinv_U, (0, 2, 1)))            # (c, p, N)
        return self.Dinv_diag - np.einsum("cnp,cpn->cn", self.Dinv_U, X)


def woodbury(groups: list[BlockGroup], hyper: dict, baseline_sd: float, resid: np.ndarray, U: np.ndarray
             ) -> Woodbury:
    """The ``Woodbury`` pieces for a chunk of draws: ``resid`` (c, N) = y - level mean, ``U`` (c, N, p)."""
    c, N, p = U.shape
    resid = np.concatenate([resid, np.zeros((c, 1))], axis=1)           # index N: the padding row
    U = np.concatenate([U, np.zeros((c, 1, p))], axis=1)
    Dinv_r, Dinv_diag, Dinv_U = np.zeros((c, N + 1)), np.zeros((c, N + 1)), np.zeros((c, N + 1, p))
    for g in groups:
        L = np.linalg.cholesky(block_covariance(g, hyper, baseline_sd))                  # (c, S, m, m)
        Linv = np.linalg.inv(L)
        Dinv = np.einsum("csji,csjk->csik", Linv, Linv)                                   # L^-T L^-1
        Dinv_r[:, g.rows] = np.einsum("csij,csj->csi", Dinv, resid[:, g.rows])
        Dinv_diag[:, g.rows] = np.diagonal(Dinv, axis1=2, axis2=3)
        Dinv_U[:, g.rows] = np.einsum("csij,csjp->csip", Dinv, U[:, g.rows])
    Dinv_r, Dinv_diag, Dinv_U = Dinv_r[:, :N], Dinv_diag[:, :N], Dinv_U[:, :N]
    M = np.eye(p)[None] + np.einsum("cnp,cnq->cpq", U[:, :N], Dinv_U)
    return Woodbury(Dinv_r, Dinv_diag, Dinv_U, M, np.linalg.cholesky(M))
