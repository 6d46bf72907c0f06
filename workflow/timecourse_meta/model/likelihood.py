"""The continuous model's marginal likelihood y ~ MvNormal(level_mean, V) by study block (``blocks``): the log
density in PyTensor (a batched Cholesky per group of equally sized study blocks, then the Woodbury identity
and the determinant lemma for the time course, the rank-p term that couples studies) and a numpy random
draw for prior predictive sampling. Exactly the dense MvNormal's density (up to rounding), without any
N x N matrix."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from timecourse_meta.model.blocks import BlockGroup, correlation


def _value(x):
    """The number behind a constant or a ``pm.Data`` container."""
    return x.get_value() if hasattr(x, "get_value") else x


@dataclass
class MarginalSpec:
    """What the log density needs: the block groups, their ``pm.Data`` sampling-covariance scales, the level
    mean (the first parameter of ``logp`` and ``random``), the loading Z (N x K) with the time-course design H
    (K x p, a ``pm.Data``; None for emax: H = delta_sd t/(ET50 + t), ``delta_sd`` a ``pm.Data``), the visit
    times ``t``, ``baseline_sd`` (a ``pm.Data``; 0 without baseline levels), and the names of the
    hyperparameters passed in order (a subset of rho_within, tau, rho_between, et50). The prior parameters are
    ``pm.Data`` so that another prior is a data change (``build.data_updates``); ``random`` reads their values."""

    groups: list[BlockGroup]
    cov_scales: list
    Z: np.ndarray
    H: object
    t: np.ndarray
    delta_sd: object
    baseline_sd: object
    names: list[str]

    # symbolic --------------------------------------------------------------------------------------------
    def _loading(self, hyper):
        import pytensor.tensor as pt
        if self.H is None:
            h = self.delta_sd * self.t / (hyper["et50"] + self.t)
            return pt.dot(self.Z, h)[:, None]
        H = pt.specify_shape(pt.as_tensor_variable(self.H), np.shape(_value(self.H)))
        return pt.dot(self.Z, H)

    def _block_cov(self, g: BlockGroup, cov_scale, hyper):
        import pytensor.tensor as pt

        def corr(rho, lag):
            return pt.switch(pt.eq(lag, 0.0), 1.0, pt.power(rho, lag))

        D = cov_scale * corr(hyper["rho_within"], g.lag_within) if "rho_within" in hyper else cov_scale
        if "tau" in hyper:
            R = g.between_mask * corr(hyper["rho_between"], g.lag_between) if "rho_between" in hyper \
                else g.between_mask
            D = D + hyper["tau"] ** 2 * R
        if g.level_mask.any():
            D = D + self.baseline_sd ** 2 * g.level_mask
        return D

    def logp(self, value, level_mean, *params):
        """log N(value | level_mean, V): per group L = chol(D_g) (batched), then
        log|V| = log|D| + log|M| and r'V^-1 r = r'D^-1 r - b'M^-1 b with M = I + U'D^-1 U, b = U'D^-1 r."""
        import pytensor.tensor as pt
        from pytensor.tensor.slinalg import cholesky, solve_triangular

        hyper = dict(zip(self.names, params))
        n = int(self.Z.shape[0])
        # static shapes: numba's batched linear algebra (and its gradient) needs them to avoid object mode
        r = pt.specify_shape(value, (n,)) - pt.specify_shape(level_mean, (n,))
        r = pt.concatenate([r, pt.zeros((1,))])                                 # index n: padding rows
        p = 1 if self.H is None else int(np.shape(_value(self.H))[1])
        U = pt.concatenate([self._loading(hyper), pt.zeros((1, p))], axis=0)
        logdet, quad = pt.constant(0.0), pt.constant(0.0)
        UDU, UDr = pt.zeros((p, p)), pt.zeros((p,))
        for g, cov_scale in zip(self.groups, self.cov_scales):
            cov_scale = pt.specify_shape(cov_scale, g.cov_scale.shape)
            L = cholesky(self._block_cov(g, cov_scale, hyper), lower=True, on_error="nan")      # (S, m, m)
            x = solve_triangular(L, r[g.rows][..., None], lower=True, b_ndim=2)[..., 0]        # (S, m)
            W = solve_triangular(L, U[g.rows], lower=True, b_ndim=2)                            # (S, m, p)
            eye = np.eye(g.rows.shape[1])
            logdet = logdet + 2.0 * pt.sum(pt.log(pt.sum(L * eye, axis=-1)))              # log diag(L)
            quad = quad + pt.sum(x ** 2)
            UDU = UDU + pt.tensordot(W, W, axes=[[0, 1], [0, 1]])
            UDr = UDr + pt.tensordot(W, x, axes=[[0, 1], [0, 1]])
        Lm = cholesky(pt.eye(p) + UDU, lower=True, on_error="nan")
        w = solve_triangular(Lm, UDr, lower=True)
        logdet = logdet + 2.0 * pt.sum(pt.log(pt.sum(Lm * np.eye(p), axis=-1)))
        quad = quad - pt.sum(w ** 2)
        out = -0.5 * (n * math.log(2.0 * math.pi) + logdet + quad)
        return pt.switch(pt.isnan(out), -np.inf, out)

    # numpy -----------------------------------------------------------------------------------------------
    def random(self, level_mean, *params, rng=None, size=None):
        """y = level_mean + U theta + e, theta ~ N(0, I_p), e ~ N(0, D) by block (prior predictive)."""
        from timecourse_meta.model.blocks import block_covariance
        size = tuple(np.atleast_1d(size).astype(int)) if size is not None and np.size(size) else ()
        c = int(np.prod(size)) if size else 1
        hyper = {k: np.broadcast_to(np.asarray(v, float), size).reshape(c) for k, v in zip(self.names, params)}
        hyper["n"] = c
        if self.H is None:
            h = float(_value(self.delta_sd)) * self.t[None, :] / (hyper["et50"][:, None] + self.t[None, :])
            U = np.einsum("nk,ck->cn", self.Z, h)[:, :, None]
        else:
            ZH = self.Z @ np.asarray(_value(self.H), float)
            U = np.broadcast_to(ZH, (c,) + ZH.shape)
        y = np.asarray(level_mean, float).reshape(-1, U.shape[1])[:1] + \
            np.einsum("cnp,cp->cn", U, rng.standard_normal((c, U.shape[2])))
        y = np.concatenate([y, np.zeros((c, 1))], axis=1)                      # index N: padding
        for g, cov_scale in zip(self.groups, self.cov_scales):
            g_now = BlockGroup(**{**g.__dict__, "cov_scale": np.asarray(_value(cov_scale), float)})
            L = np.linalg.cholesky(block_covariance(g_now, hyper, float(_value(self.baseline_sd))))
            y[:, g.rows] += np.einsum("csij,csj->csi", L, rng.standard_normal(L.shape[:3]))
        return y[:, :-1].reshape(size + (y.shape[1] - 1,))
