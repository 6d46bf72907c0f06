"""Trajectories: the pooled change over time with its credible and prediction bands, over the studies' own
changes; one outcome (`trajectory_plot`) or a grid of outcomes with one legend (`trajectory_grid`).

Artists' gids: `credible_band`, `prediction_band`, `pooled_median`, `interpolated_median`, `null_line`,
`study_points:<label>`, `study_ci:<label>`, `control_points:<label>`, `control_ci:<label>`.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from timecourse_meta.core.review import Arms  # noqa: E402
from timecourse_meta.report.plots.common import (BAND_CRI, BAND_PI, CONTROL_COLOUR, FONT,  # noqa: E402
                                                MAX_WIDTH, POOLED_COLOUR, STUDY_COLOURS, STUDY_MARKERS,
                                                bottom_legend, improvement_note, num, study_styles)


def _point_size(n: float, n_ref: float) -> float:
    return 18.0 + 140.0 * math.sqrt(n / n_ref) if np.isfinite(n) and n_ref > 0 else 30.0


NO_CURVE_NOTE = "no pooled time course"
NOT_POOLED_NOTE = "not pooled at any visit"


def _curve_evidence(curve: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(pooled, interpolated) masks of a curve's rows from its `evidence` column ('pooled', 'interpolated',
    'prior_dominated', ...); time 0 (no change by definition) counts as pooled. Without the column every row
    is pooled (curves built by hand)."""
    t = curve["time_months"].astype(float).to_numpy()
    if "evidence" not in curve.columns:
        return np.ones(len(curve), bool), np.zeros(len(curve), bool)
    ev = curve["evidence"].astype(str).to_numpy()
    pooled = (ev == "pooled") | (t == 0)
    interpolated = (ev == "interpolated") & (t != 0)
    return pooled, interpolated


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Index ranges [a, b] of consecutive True values; a lone baseline row (index 0) is not a run."""
    out, start = [], None
    for i, m in enumerate(list(mask) + [False]):
        if m and start is None:
            start = i
        elif not m and start is not None:
            if not (start == 0 and i - 1 == 0):
                out.append((start, i - 1))
            start = None
    return out


def draw_trajectory(ax, curve: pd.DataFrame | None, points: pd.DataFrame | None, *, unit: str,
                    direction_of_benefit: str, arms: Arms, title: str = "",
                    styles: Mapping[str, tuple[str, str]] | None = None, max_months: float = 12.0,
                    n_ref: float | None = None, dodge: float = 0.12,
                    measure_label: str = "Change from baseline") -> dict:
    """Draw one outcome's trajectory into `ax` (see `trajectory_plot` for the columns); the x axis reads
    'Months after <arms.intervention.short>'.

    Returns what was drawn: {'curve', 'prediction', 'open_points', 'interpolated', 'control'} -> bool.
    """
    drawn = {"curve": False, "prediction": False, "open_points": False, "interpolated": False, "control": False}
    ax.axhline(0.0, color="#555555", lw=0.9, zorder=1, gid="null_line")
    if curve is not None and len(curve):
        _draw_curve(ax, curve, drawn)
    if points is not None and len(points):
        _draw_points(ax, points, styles, n_ref, dodge, drawn)
    ax.set_xlim(-0.4, max_months + 0.6)
    ax.set_xticks([v for v in (0, 1, 3, 6, 9, 12, 18, 24, 36, 48, 60) if v <= max_months])
    ax.set_xlabel(f"Months after {arms.intervention.short}", fontsize=FONT)
    note = improvement_note(direction_of_benefit)
    ax.set_ylabel(f"{measure_label} ({unit})" + (f"\n{note}" if note else ""), fontsize=FONT)
    ax.tick_params(labelsize=FONT)
    ax.grid(axis="y", color="#e5e5e5", lw=0.6, zorder=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    full_title = title + ("" if drawn["curve"] else
                          f"\n({NOT_POOLED_NOTE})" if drawn["interpolated"] else f"\n({NO_CURVE_NOTE})")
    ax.set_title(full_title.strip(), fontsize=FONT + 1, loc="left")
    return drawn


def _draw_curve(ax, curve: pd.DataFrame, drawn: dict) -> None:
    """The pooled curve: bands only over runs of pooled visits (a bar for an isolated one), a dashed line to
    each model-based interpolation."""
    c = curve.sort_values("time_months").reset_index(drop=True)
    t = c["time_months"].astype(float).to_numpy()
    pooled, interpolated = _curve_evidence(c)
    spans = _runs(pooled)
    has_pi = {"pi_lower", "pi_upper"} <= set(c.columns) and c["pi_lower"].notna().any()
    for a, b in spans:  # a band only where the estimate is pooled at the visit (>= 2 studies there)
        part = slice(a, b + 1)
        if b == a:  # an isolated pooled visit: its interval as a bar
            ax.vlines(t[a], c["lower"].iloc[a], c["upper"].iloc[a], color=BAND_CRI, lw=5, alpha=0.8,
                      zorder=3, gid="credible_band")
            ax.plot(t[a], c["estimate"].iloc[a], marker="_", ms=10, mew=2, color=POOLED_COLOUR, zorder=4,
                    gid="pooled_median")
            drawn["curve"] = True
            continue
        if has_pi:
            ax.fill_between(t[part], c["pi_lower"].astype(float)[part], c["pi_upper"].astype(float)[part],
                            color=BAND_PI, alpha=0.55, lw=0, zorder=2, gid="prediction_band")
            drawn["prediction"] = True
        ax.fill_between(t[part], c["lower"].astype(float)[part], c["upper"].astype(float)[part],
                        color=BAND_CRI, alpha=0.55, lw=0, zorder=3, gid="credible_band")
        ax.plot(t[part], c["estimate"].astype(float)[part], color=POOLED_COLOUR, lw=1.8, zorder=4,
                gid="pooled_median")
        drawn["curve"] = True
    # a model-based interpolation (no band): a dashed line from each such visit to its neighbours
    est = c["estimate"].astype(float).to_numpy()
    for j in np.flatnonzero(interpolated):
        for nb in (j - 1, j + 1):
            if 0 <= nb < len(c) and (pooled[nb] or interpolated[nb]) and (nb > j or not interpolated[nb]):
                pair = [min(j, nb), max(j, nb)]
                ax.plot(t[pair], est[pair], color=POOLED_COLOUR, lw=1.2, ls=(0, (4, 2)), zorder=4,
                        gid="interpolated_median")
                drawn["interpolated"] = True


def _draw_points(ax, points: pd.DataFrame, styles, n_ref, dodge: float, drawn: dict) -> None:
    """The studies' own changes (one style per study, dodged where studies share a visit) and, hollow grey
    beside them, their comparator arms' (rows flagged `control`)."""
    points = points.reset_index(drop=True)
    labels = list(dict.fromkeys(points["label"]))
    styles = dict(styles or study_styles(labels))
    if n_ref is None:
        n_ref = max([num(v) for v in points["n"] if np.isfinite(num(v))] + [1.0]) if "n" in points else 1.0
    # dodge studies that share a visit so that their points and bars do not hide each other
    times = points["time_months"].astype(float).round(2)
    per_time = points.assign(_t=times).groupby("_t")["label"].nunique()
    shared = times.map(per_time).to_numpy() > 1
    interval_cols = {"lower", "upper"} <= set(points.columns)
    is_control = (points["control"].fillna(False).astype(bool).to_numpy() if "control" in points.columns
                  else np.zeros(len(points), bool))
    ctl = points[is_control]
    points = points[~is_control].reset_index(drop=True)
    shared = shared[~is_control]
    for j, lab in enumerate(labels):
        own = ctl[ctl["label"] == lab]
        if not len(own):
            continue
        colour, marker = styles.get(lab, (STUDY_COLOURS[j % 12], STUDY_MARKERS[j % 12]))
        x = own["time_months"].astype(float).to_numpy() + 0.25
        if interval_cols:
            lo, hi = own["lower"].astype(float).to_numpy(), own["upper"].astype(float).to_numpy()
            ok = np.isfinite(lo) & np.isfinite(hi)
            ax.vlines(x[ok], lo[ok], hi[ok], color=CONTROL_COLOUR, lw=0.9, ls=(0, (3, 1.5)), zorder=5,
                      gid=f"control_ci:{lab}")
        n = own["n"].astype(float).to_numpy() if "n" in own else np.full(len(own), np.nan)
        ax.scatter(x, own["estimate"].astype(float), s=[_point_size(v, n_ref) for v in n], marker=marker,
                   c="white", edgecolors=CONTROL_COLOUR, linewidths=1.2, zorder=6, gid=f"control_points:{lab}")
        drawn["control"] = True
    labels = [lab for lab in labels if (points["label"] == lab).any()]
    for j, lab in enumerate(labels):
        idx = np.flatnonzero((points["label"] == lab).to_numpy())
        own = points.iloc[idx]
        colour, marker = styles.get(lab, (STUDY_COLOURS[j % 12], STUDY_MARKERS[j % 12]))
        offset = dodge * (j - (len(labels) - 1) / 2) if dodge else 0.0
        x = own["time_months"].astype(float).to_numpy() + np.where(shared[idx], offset, 0.0)
        y = own["estimate"].astype(float).to_numpy()
        n = own["n"].astype(float).to_numpy() if "n" in own else np.full(len(own), np.nan)
        ok = np.ones(len(own), bool)
        if interval_cols:
            lo, hi = own["lower"].astype(float).to_numpy(), own["upper"].astype(float).to_numpy()
            ok = np.isfinite(lo) & np.isfinite(hi)
            if ok.any():
                ax.vlines(x[ok], lo[ok], hi[ok], color=colour, lw=0.9, alpha=0.8, zorder=5,
                          gid=f"study_ci:{lab}")
        drawn["open_points"] |= bool((~ok).any())
        ax.scatter(x, y, s=[_point_size(v, n_ref) for v in n], marker=marker,
                   c=[colour if o else "white" for o in ok], edgecolors=colour, linewidths=0.9, zorder=6,
                   label=lab, gid=f"study_points:{lab}")


def _legend_handles(styles: Mapping[str, tuple[str, str]], drawn: Mapping[str, bool], arms: Arms) -> list:
    handles = []
    if drawn.get("curve"):
        handles.append(Line2D([], [], color=POOLED_COLOUR, lw=1.8, label="Pooled change \u0394(t), median"))
        handles.append(Patch(facecolor=BAND_CRI, alpha=0.55, label="95% credible interval"))
        if drawn.get("prediction"):
            handles.append(Patch(facecolor=BAND_PI, alpha=0.55, label="95% prediction interval"))
    if drawn.get("interpolated"):
        handles.append(Line2D([], [], color=POOLED_COLOUR, lw=1.2, ls=(0, (4, 2)),
                              label="model-based interpolation (< 2 studies at the visit; no band)"))
    for lab, (colour, marker) in styles.items():
        handles.append(Line2D([], [], ls="none", marker=marker, color=colour, ms=6, label=lab))
    if drawn.get("control"):
        handles.append(Line2D([], [], ls="none", marker="o", markerfacecolor="white", markeredgecolor=CONTROL_COLOUR,
                              mew=1.2, ms=6, label=f"hollow grey: {arms.comparator.arm_name}"))
    if drawn.get("open_points"):
        handles.append(Line2D([], [], ls="none", marker="o", markerfacecolor="white", markeredgecolor="#333333",
                              ms=6, label="open marker: no interval reported"))
    return handles


def trajectory_plot(curve: pd.DataFrame | None, points: pd.DataFrame | None, *, outcome_label: str, unit: str,
                    direction_of_benefit: str, arms: Arms, title: str | None = None, max_months: float = 12.0,
                    styles: Mapping[str, tuple[str, str]] | None = None,
                    measure_label: str = "Change from baseline", width: float = 6.0,
                    height: float = 3.2) -> Figure:
    """Pooled change over time with its 95% credible and prediction bands, over the studies' observed changes.

    `curve`: the pooled time course on a visit grid: columns `time_months`, `estimate` (posterior median of
    Delta(t)), `lower`, `upper` (95% CrI) and optionally `pi_lower`, `pi_upper` (95% prediction interval); include
    time 0 (change 0) to anchor the curve at baseline. None = no pooled curve (the title says so).
    `points`: the studies' own observed changes: columns `label`, `time_months`, `estimate`, `n`, optionally
    `lower`, `upper` (drawn as thin vertical bars; a point without an interval is drawn open). One colour and
    marker per study, legend under the plot; marker area grows with n; studies sharing a visit are dodged
    sideways a little so that none hides another.
    Both frames must be on the same scale and `unit` (e.g. percent change for a log-scale outcome).
    """
    labels = list(dict.fromkeys(points["label"])) if points is not None and len(points) else []
    styles = dict(styles or study_styles(labels))
    fig, ax = plt.subplots(figsize=(width, height))
    drawn = draw_trajectory(ax, curve, points, unit=unit, direction_of_benefit=direction_of_benefit, arms=arms,
                            title=title or outcome_label, styles=styles, max_months=max_months,
                            measure_label=measure_label)
    handles = _legend_handles({k: styles[k] for k in labels}, drawn, arms)
    legend_h = 0.22 * math.ceil(len(handles) / 2) + 0.15
    total = height + legend_h
    fig.set_size_inches(width, total)
    need = bottom_legend(fig, handles, 2, total)
    fig.tight_layout(rect=(0, need, 1, 1))
    return fig


def trajectory_grid(panels: Sequence[Mapping], *, arms: Arms, ncols: int = 2, max_months: float = 12.0,
                    panel_width: float = 3.6, panel_height: float = 2.7,
                    styles: Mapping[str, tuple[str, str]] | None = None) -> Figure:
    """One trajectory panel per outcome in a grid, with one shared legend under the panels.

    `panels`: a list of mappings, each with `curve` and `points` (DataFrames as for `trajectory_plot`, either may
    be None), `outcome_label`, `unit`, `direction_of_benefit`, optionally `title`, `measure_label` (default
    'Change'). A study keeps the same colour and marker in every panel; marker sizes share one scale (the largest
    n of all panels).
    `styles`: label -> (colour, marker) to use (e.g. the same for every figure of a study set).
    """
    k = len(panels)
    if k == 0:
        raise ValueError("trajectory_grid needs at least one panel")
    ncols = max(1, min(ncols, k))
    nrows = math.ceil(k / ncols)
    width = min(MAX_WIDTH, panel_width * ncols)
    labels, n_all = [], []
    for p in panels:
        pts = p.get("points")
        if pts is not None and len(pts):
            labels += list(pts["label"])
            if "n" in pts:
                n_all += [v for v in pts["n"].astype(float) if np.isfinite(v)]
    styles = {lab: st for lab, st in (styles or study_styles(labels)).items() if lab in set(labels)}
    n_ref = max(n_all + [1.0])
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, panel_height * nrows), squeeze=False)
    drawn_any = {"curve": False, "prediction": False, "open_points": False, "interpolated": False,
                 "control": False}
    for i, p in enumerate(panels):
        ax = axes[i // ncols][i % ncols]
        drawn = draw_trajectory(ax, p.get("curve"), p.get("points"), unit=p["unit"],
                                direction_of_benefit=p["direction_of_benefit"], arms=arms,
                                title=p.get("title") or p["outcome_label"], styles=styles, max_months=max_months,
                                n_ref=n_ref, measure_label=p.get("measure_label", "Change"))
        for key in drawn_any:
            drawn_any[key] |= drawn[key]
    for j in range(k, nrows * ncols):
        axes[j // ncols][j % ncols].set_axis_off()
    handles = _legend_handles(styles, drawn_any, arms)
    ncol_leg = 3 if width >= 6 else 2
    legend_h = 0.22 * math.ceil(len(handles) / ncol_leg) + 0.15
    total = panel_height * nrows + legend_h
    fig.set_size_inches(width, total)
    need = bottom_legend(fig, handles, ncol_leg, total)
    fig.tight_layout(rect=(0, need, 1, 1))
    return fig
