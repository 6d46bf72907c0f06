"""The supplement's model figures: prior against posterior densities, the posterior predictive check, and
ArviZ rank and trace plots. Each takes an `arviz.InferenceData` plus variable names.

Artists' gids: `prior:<var>[i]`, `posterior:<var>[i]`, `ppc_observed`, `ppc_interval:<i>`.
"""

from __future__ import annotations

import math
import warnings
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from timecourse_meta.report.plots.common import (BAND_CRI, BAND_PI, FONT, MAX_WIDTH, MIN_FONT,  # noqa: E402
                                                POOLED_COLOUR, bottom_legend, enforce_min_font)


def _flat_components(da) -> list[tuple[str, np.ndarray]]:
    """(suffix, draws) for each scalar component of a DataArray with chain/draw dims."""
    other = [d for d in da.dims if d not in ("chain", "draw")]
    if not other:
        return [("", np.asarray(da.values).reshape(-1))]
    stacked = da.stack(__sample__=("chain", "draw")).transpose(*other, "__sample__")
    values = np.asarray(stacked.values)
    out = []
    for idx in np.ndindex(values.shape[:-1]):
        coords = []
        for dim, i in zip(other, idx):
            c = da.coords[dim].values[i] if dim in da.coords else i
            coords.append(str(c))
        out.append((f"[{', '.join(coords)}]", values[idx]))
    return out


def _density(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import arviz as az

    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2 or np.ptp(x) == 0:
        return np.array([x.mean() if x.size else 0.0] * 2), np.array([0.0, 1.0])
    grid, pdf = az.kde(x)
    return np.asarray(grid), np.asarray(pdf)


def prior_posterior_plot(idata, var_names: Sequence[str], *, labels: Mapping[str, str] | None = None,
                         ncols: int = 3, prior_group: str = "prior") -> Figure:
    """Prior (dashed grey) against posterior (blue, filled) density of each component of each variable.

    `idata`: an InferenceData with a `posterior` group and, for the comparison, a `prior` group (prior
    predictive sampling draws); a variable missing from the prior gets its posterior only and the note
    'prior draws not available'. `labels`: var name -> axis label (e.g. 'tau' -> 'Between-study SD \u03c4 (g/24 h)').
    One panel per scalar component (vector variables give one panel per element, titled var[coord]).
    Densities are arviz KDEs (boundary-corrected for bounded parameters such as tau and correlations).
    """
    labels = dict(labels or {})
    panels = []
    for var in var_names:
        if var not in idata.posterior:
            raise KeyError(f"{var!r} is not in the posterior (has {list(idata.posterior.data_vars)})")
        post = _flat_components(idata.posterior[var])
        prior_group_obj = getattr(idata, prior_group, None) if hasattr(idata, prior_group) else None
        prior = (_flat_components(prior_group_obj[var]) if prior_group_obj is not None
                 and var in prior_group_obj else None)
        for i, (suffix, draws) in enumerate(post):
            panels.append((var, suffix, draws, prior[i][1] if prior and i < len(prior) else None))
    k = len(panels)
    ncols = max(1, min(ncols, k))
    nrows = math.ceil(k / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(min(MAX_WIDTH, 2.5 * ncols), 2.1 * nrows + 0.5),
                             squeeze=False)
    for i, (var, suffix, post, prior) in enumerate(panels):
        ax = axes[i // ncols][i % ncols]
        g, d = _density(post)
        ax.fill_between(g, d, color=BAND_CRI, alpha=0.35, lw=0)
        ax.plot(g, d, color=POOLED_COLOUR, lw=1.5, gid=f"posterior:{var}{suffix}")
        if prior is not None:
            gp, dp = _density(prior)
            ax.plot(gp, dp, color="#555555", lw=1.3, ls="--", gid=f"prior:{var}{suffix}")
            lo = min(np.quantile(post, 0.001), np.quantile(prior, 0.005))
            hi = max(np.quantile(post, 0.999), np.quantile(prior, 0.995))
            ax.set_xlim(lo, hi)
        else:
            ax.text(0.98, 0.95, "prior draws\nnot available", transform=ax.transAxes, ha="right", va="top",
                    fontsize=MIN_FONT, style="italic")
        ax.set_title(f"{var}{suffix}", fontsize=FONT, loc="left")
        ax.set_xlabel(labels.get(var, var), fontsize=FONT)
        ax.set_yticks([])
        ax.tick_params(labelsize=FONT)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    for j in range(k, nrows * ncols):
        axes[j // ncols][j % ncols].set_axis_off()
    fig.tight_layout(rect=(0, 0.45 / (2.1 * nrows + 0.5), 1, 1))
    handles = [Line2D([], [], color="#555555", ls="--", lw=1.3, label="Prior"),
               Patch(facecolor=BAND_CRI, alpha=0.35, edgecolor=POOLED_COLOUR, label="Posterior")]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=FONT, frameon=False)
    return fig


def ppc_plot(idata, var_name: str, *, obs_labels: Sequence[str] | None = None, unit: str = "",
             title: str | None = None, width: float = 6.5, value_label: str | None = None) -> Figure:
    """Posterior predictive check for few observations: each observed value against its predictive 50%/95%
    intervals (an interval per observation reads better than a density overlay when there are 2-30 numbers).

    `idata` needs `posterior_predictive[var_name]` (chain, draw, obs...) and `observed_data[var_name]`.
    `obs_labels`: one label per observation (e.g. 'Smith 2017, 6 m'), top to bottom; default 'obs 1', ...
    Observed points outside the 95% interval are drawn in red and counted in the title. The x axis reads
    `value_label (unit)` (default: the variable's name).
    """
    pp = idata.posterior_predictive[var_name]
    obs = np.asarray(idata.observed_data[var_name].values, dtype=float).reshape(-1)
    other = [d for d in pp.dims if d not in ("chain", "draw")]
    draws = np.asarray(pp.stack(__s__=("chain", "draw")).transpose(*other, "__s__").values, dtype=float)
    draws = draws.reshape(-1, draws.shape[-1])
    if draws.shape[0] != obs.size:
        raise ValueError(f"{var_name}: {draws.shape[0]} predicted vs {obs.size} observed values")
    labels = list(obs_labels) if obs_labels is not None else [f"obs {i + 1}" for i in range(obs.size)]
    q = np.quantile(draws, [0.025, 0.25, 0.5, 0.75, 0.975], axis=1)
    y = np.arange(obs.size)
    height = 1.1 + 0.3 * obs.size + 0.35
    fig, ax = plt.subplots(figsize=(width, height))
    outside = (obs < q[0]) | (obs > q[4])
    for i in y:
        ax.plot([q[0, i], q[4, i]], [i, i], color=BAND_PI, lw=2.0, solid_capstyle="butt", gid=f"ppc_interval:{i}")
        ax.plot([q[1, i], q[3, i]], [i, i], color=BAND_CRI, lw=5.0, solid_capstyle="butt")
    ax.scatter(obs, y, marker="D", s=26, color=np.where(outside, "#c0282d", "black"), zorder=4, gid="ppc_observed")
    ax.set_yticks(y, labels)
    ax.set_ylim(obs.size - 0.5, -0.7)
    ax.set_xlabel(f"{value_label or var_name}" + (f" ({unit})" if unit else ""), fontsize=FONT)
    ax.tick_params(labelsize=FONT)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    handles = [Line2D([], [], color=BAND_PI, lw=2.0, label="95% predictive interval"),
               Line2D([], [], color=BAND_CRI, lw=5.0, label="50% predictive interval"),
               Line2D([], [], ls="none", marker="D", color="black", label="Observed (red: outside 95%)")]
    ax.set_title((title or "Posterior predictive check")
                 + f" ({int(outside.sum())} of {obs.size} observed outside the 95% interval)",
                 fontsize=FONT + 1, loc="left")
    need = bottom_legend(fig, handles, 3, height)
    fig.tight_layout(rect=(0, need, 1, 1))
    return fig


def _arviz_figure(axes) -> Figure:
    arr = np.atleast_1d(np.asarray(axes, dtype=object)).ravel()
    return arr[0].get_figure()


def rank_plot(idata, var_names: Sequence[str], **kwargs) -> Figure:
    """ArviZ rank plots (bars per chain) of the named variables; uniform bars mean well-mixed chains."""
    import arviz as az

    with warnings.catch_warnings():  # arviz 0.23 uses a matplotlib API deprecated in 3.11
        warnings.simplefilter("ignore", matplotlib.MatplotlibDeprecationWarning)
        axes = az.plot_rank(idata, var_names=list(var_names), kind="bars", **kwargs)
    fig = _arviz_figure(axes)
    for ax in fig.axes:
        ax.tick_params(labelsize=FONT)
        ax.title.set_fontsize(FONT)
        ax.xaxis.label.set_fontsize(FONT)
        ax.yaxis.label.set_fontsize(FONT)
    enforce_min_font(fig)
    fig.set_size_inches(min(MAX_WIDTH, fig.get_size_inches()[0]), fig.get_size_inches()[1])
    fig.tight_layout()
    return fig


def trace_plot(idata, var_names: Sequence[str], **kwargs) -> Figure:
    """ArviZ trace plots (density and trace per chain) of the named variables."""
    import arviz as az

    with warnings.catch_warnings():  # arviz 0.23 uses a matplotlib API deprecated in 3.11
        warnings.simplefilter("ignore", matplotlib.MatplotlibDeprecationWarning)
        axes = az.plot_trace(idata, var_names=list(var_names), compact=True, **kwargs)
    fig = _arviz_figure(axes)
    for ax in fig.axes:
        ax.tick_params(labelsize=FONT)
        ax.title.set_fontsize(FONT)
        ax.xaxis.label.set_fontsize(FONT)
        ax.yaxis.label.set_fontsize(FONT)
    w, h = fig.get_size_inches()
    fig.set_size_inches(min(MAX_WIDTH, w), h * min(MAX_WIDTH, w) / w if w > MAX_WIDTH else h)
    enforce_min_font(fig)
    fig.tight_layout()
    return fig
