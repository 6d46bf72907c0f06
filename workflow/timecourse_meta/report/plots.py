"""Figures of the review: forest plots, trajectories, critical appraisal, and the supplement's model figures.

Every plotting function takes plain pandas DataFrames (columns documented in its docstring) or, for the model
figures, an `arviz.InferenceData` plus variable names; it returns a `matplotlib.figure.Figure` and never writes a
file. `save_figure(fig, stem)` writes `stem.png` (300 dpi) and `stem.svg`, each atomically (a temporary file in
the same folder, then `os.replace`), with `bbox_inches="tight"` so that nothing is clipped.

Artists carry a `gid` so that tests (and anyone) can find them: forest `study_ci:<label>`, `study_point:<label>`,
`pooled_diamond`, `prediction_interval`, `null_line`; trajectory `credible_band`, `prediction_band`,
`pooled_median`, `study_points:<label>`; appraisal `judgements:<checklist>`, `summary:<checklist>:<judgement>`;
model figures `prior:<var>[i]`, `posterior:<var>[i]`, `ppc_observed`, `ppc_interval:<i>`.

Sizes: figures are drawn at print size (at most 7.5 in wide) with text of at least `MIN_FONT` (8) points.
"""

from __future__ import annotations

import math
import os
import textwrap
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch, Polygon  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from timecourse_meta.core import atomic  # noqa: E402
from timecourse_meta.report.tables import CHECKLIST_NAMES, decimals_for, fmt_interval, fmt_number, months_text  # noqa: E402

MIN_FONT = 8
FONT = 9
DPI = 300
MAX_WIDTH = 7.5  # inches (a full page width)

POOLED_COLOUR = "#1f3b73"
CONTROL_COLOUR = "#7f7f7f"  # control arms: hollow grey, beside the MSC arm of their study
BAND_CRI = "#4a78b5"
BAND_PI = "#a9c4e6"
STUDY_COLOURS = ["#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#e6ab02", "#666666",
                 "#1f78b4", "#b2182b", "#35978f", "#8c510a"]
STUDY_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "h", "*"]

# Critical appraisal: judgement -> (face colour, symbol, legend text). robvis-like colours.
JUDGEMENT_STYLE = {
    "yes": ("#2e9e44", "+", "Yes (low concern)"),
    "no": ("#c0282d", "\u2212", "No (high concern)"),
    "unclear": ("#f2c41d", "?", "Unclear"),
    "not_reported": ("#9e9e9e", "NR", "Not reported"),
    "not_applicable": ("#ffffff", "", "Not applicable"),
}
JUDGEMENT_ORDER = list(JUDGEMENT_STYLE)


# ----------------------------------------------------------------------------------------------------------------
# Saving and shared helpers
# ----------------------------------------------------------------------------------------------------------------

def enforce_min_font(fig: Figure, minimum: float = MIN_FONT) -> Figure:
    """Raise every text of the figure (tick labels included) to at least `minimum` points."""
    for ax in fig.axes:
        for tick_text in ax.get_xticklabels() + ax.get_yticklabels():
            if tick_text.get_fontsize() < minimum:
                tick_text.set_fontsize(minimum)
        for axis in (ax.xaxis, ax.yaxis):
            if axis.label.get_fontsize() < minimum:
                axis.label.set_fontsize(minimum)
    for t in fig.findobj(Text):
        if t.get_fontsize() < minimum:
            t.set_fontsize(minimum)
    return fig


def save_figure(fig: Figure, stem: str | os.PathLike, dpi: int = DPI,
                formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Write `stem.png` (at `dpi`) and `stem.svg`, each to a temporary name in the same folder, then os.replace.

    Texts are raised to MIN_FONT points first; `bbox_inches="tight"` keeps labels outside the axes in the file.
    Returns the written paths. A failure leaves no partial file behind (and an older complete file untouched).
    """
    stem = Path(stem)
    if stem.suffix.lower() in {".png", ".svg", ".pdf"}:
        stem = stem.with_suffix("")
    enforce_min_font(fig)
    written = []
    for fmt in formats:
        target = stem.parent / f"{stem.name}.{fmt}"
        # fixed SVG id salt and no date: the same figure gives the same bytes on every run
        with atomic.atomic_path(target, suffix=f".{fmt}") as tmp, plt.rc_context({"svg.hashsalt": "timecourse_meta"}):
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight", pad_inches=0.05,
                        metadata={"Date": None} if fmt == "svg" else None)
        written.append(target)
    return written


def _num(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def _get(obj: Any, key: str, default: Any = None) -> Any:
    """Value of `key` from a dict, a Series or a one-row DataFrame (None-safe)."""
    if obj is None:
        return default
    if isinstance(obj, pd.DataFrame):
        if obj.empty or key not in obj.columns:
            return default
        return obj[key].iloc[0]
    if isinstance(obj, (pd.Series, Mapping)):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _direction_words(direction_of_benefit: str) -> tuple[str, str] | None:
    """(text left of no change, text right of no change) under the axis. A change after treatment in a
    single arm is not a comparison, so the words name the direction of the outcome ('improvement'), never a
    treatment that it would 'favour'."""
    if direction_of_benefit == "decrease":
        return "\u2190 improvement", "worsening \u2192"
    if direction_of_benefit == "increase":
        return "\u2190 worsening", "improvement \u2192"
    return None


def _improvement_note(direction_of_benefit: str) -> str:
    if direction_of_benefit == "decrease":
        return "\u2193 lower = improvement"
    if direction_of_benefit == "increase":
        return "\u2191 higher = improvement"
    return ""


def study_styles(labels: Iterable[str]) -> dict[str, tuple[str, str]]:
    """label -> (colour, marker), stable in the order given (shared across the panels of one figure)."""
    out = {}
    for i, lab in enumerate(dict.fromkeys(labels)):
        out[lab] = (STUDY_COLOURS[i % len(STUDY_COLOURS)], STUDY_MARKERS[i % len(STUDY_MARKERS)])
    return out


# ----------------------------------------------------------------------------------------------------------------
# Forest plot
# ----------------------------------------------------------------------------------------------------------------

def _text_width(fig: Figure, text: str, size: float = FONT, weight: str = "normal") -> float:
    """Rendered width of `text` in inches."""
    renderer = fig.canvas.get_renderer()
    t = fig.text(0, 0, text, fontsize=size, fontweight=weight)
    width = t.get_window_extent(renderer).width / fig.dpi
    t.remove()
    return width


def forest_plot(studies: pd.DataFrame, pooled: Mapping | pd.Series | pd.DataFrame | None = None, *,
                outcome_label: str, unit: str, direction_of_benefit: str, visit_months: float | None = None,
                title: str | None = None, measure_label: str = "Change from baseline",
                study_interval: str = "95% CI", pooled_label: str = "Pooled change (95% CrI)",
                null_value: float = 0.0, decimals: int | None = None, plot_width: float = 3.0,
                max_width: float = MAX_WIDTH) -> Figure:
    """Forest plot of one outcome at one visit, in the RevMan / metafor::forest() layout.

    `studies`: one row per study, drawn top to bottom in the given order; columns `label`, `estimate`, `lower`,
    `upper` (the study's interval; NaN = none reported: hollow marker and '[no interval]') and `n` (patients;
    NaN allowed, shown 'NR'); optional `control` (True: the row is a control arm's own change, drawn as a hollow
    grey circle with a dashed interval beside its study's MSC arm, not counted in the pooled n); optional
    `time_months`: when it differs from `visit_months` by more than 0.05 the
    row label says at which time the study measured (e.g. 'Li 2016 (at 0.9 months)'). Marker area grows with n.
    `pooled`: mapping / Series / one-row DataFrame with `estimate`, `lower`, `upper` (posterior median and 95%
    CrI), optionally `pi_lower`, `pi_upper` (95% prediction interval for a new study) and `label`. With a single
    study no pooled diamond is drawn (whatever `pooled` holds) and the note 'single study: no pooled estimate' is
    shown; with several studies and no pooled estimate the note 'no pooled estimate available' is shown.
    The x axis reads `measure_label (unit)`; the vertical line marks no change (`null_value`); under the axis the
    side of improvement and of worsening follow `direction_of_benefit` (`decrease`/`increase`).
    Right-hand columns: n and 'estimate [lower, upper]' (the pooled row's n is the sum of the study rows' n).
    The figure is as wide as its text needs (plot area
    `plot_width` inches), at most `max_width` inches (the plot area shrinks first).
    """
    studies = studies.reset_index(drop=True)
    k = len(studies)
    control = (studies["control"].fillna(False).astype(bool).to_numpy() if "control" in studies.columns
               else np.zeros(k, bool))
    single = int((~control).sum()) == 1
    show_pooled = (not single) and pooled is not None and np.isfinite(_num(_get(pooled, "estimate")))
    pi_lo, pi_hi = _num(_get(pooled, "pi_lower")), _num(_get(pooled, "pi_upper"))
    show_pi = show_pooled and np.isfinite(pi_lo) and np.isfinite(pi_hi)
    has_n = "n" in studies.columns

    # rows: header at y = -1, studies at y = 0..k-1 (top to bottom), a gap, pooled row, prediction interval
    y_pooled = k + 0.6
    y_pi = y_pooled + 1.0
    y_max = (y_pi if show_pi else y_pooled) + 0.6
    row_in = 0.27
    top_in, bottom_in = 0.35, 0.9
    axes_h = row_in * (y_max + 1.4)
    height = axes_h + top_in + bottom_in
    fig, ax = plt.subplots(figsize=(max_width, height))
    ax.set_ylim(y_max, -1.4)

    values = [null_value]
    for col in ("estimate", "lower", "upper"):
        values += [v for v in studies[col].astype(float) if np.isfinite(v)]
    if show_pooled:
        values += [_num(_get(pooled, c)) for c in ("estimate", "lower", "upper")]
    if show_pi:
        values += [pi_lo, pi_hi]
    lo_all, hi_all = min(values), max(values)
    span = hi_all - lo_all or 1.0
    ax.set_xlim(lo_all - 0.06 * span, hi_all + 0.06 * span)
    if decimals is None:
        decimals = decimals_for(*values)
    n_values = [_num(v) for v in studies["n"]] if has_n else [math.nan] * k
    n_max = max([v for v in n_values if np.isfinite(v)] + [1.0])

    yticks, ylabels, bold_rows = [], [], set()
    col_n, col_est = [], []  # (y, text, bold)
    for i, r in studies.iterrows():
        est, lo, hi = _num(r["estimate"]), _num(r["lower"]), _num(r["upper"])
        n = n_values[i]
        label = str(r["label"])
        has_ci = np.isfinite(lo) and np.isfinite(hi)
        if has_ci and control[i]:
            ax.plot([lo, hi], [i, i], color=CONTROL_COLOUR, lw=1.1, ls=(0, (3, 1.5)), gid=f"control_ci:{label}")
        elif has_ci:
            ax.plot([lo, hi], [i, i], color="black", lw=1.1, solid_capstyle="butt", gid=f"study_ci:{label}")
        size = 4.0 + 6.0 * math.sqrt(n / n_max) if np.isfinite(n) else 5.0
        if control[i]:  # a control arm's own change: shown beside its study's MSC arm, never pooled
            ax.plot([est], [i], marker="o", ms=size, color="white", markeredgecolor=CONTROL_COLOUR, mew=1.3,
                    ls="none", gid=f"control_point:{label}")
        else:
            ax.plot([est], [i], marker="s", ms=size, color="#333333" if has_ci else "white",
                    markeredgecolor="#333333", ls="none", gid=f"study_point:{label}")
        t_row = _num(r["time_months"]) if "time_months" in studies.columns else math.nan
        shown = label
        if visit_months is not None and np.isfinite(t_row) and abs(t_row - float(visit_months)) > 0.05:
            shown = f"{label} (at {months_text(t_row)})"
        yticks.append(i)
        ylabels.append(shown)
        col_n.append((i, f"{int(n)}" if np.isfinite(n) else "NR", False))
        col_est.append((i, fmt_interval(est, lo, hi, decimals), False))

    n_total = sum(v for v, c in zip(n_values, control) if np.isfinite(v) and not c)
    if show_pooled:
        est, lo, hi = (_num(_get(pooled, c)) for c in ("estimate", "lower", "upper"))
        h = 0.34
        ax.add_patch(Polygon([(lo, y_pooled), (est, y_pooled - h), (hi, y_pooled), (est, y_pooled + h)],
                             closed=True, facecolor=POOLED_COLOUR, edgecolor=POOLED_COLOUR, gid="pooled_diamond"))
        yticks.append(y_pooled)
        ylabels.append(str(_get(pooled, "label", None) or pooled_label))
        bold_rows.add(len(ylabels) - 1)
        col_n.append((y_pooled, f"{int(n_total)}" if n_total > 0 else "", True))
        col_est.append((y_pooled, fmt_interval(est, lo, hi, decimals), True))
        if show_pi:
            ax.plot([pi_lo, pi_hi], [y_pi, y_pi], color=POOLED_COLOUR, lw=2.0, solid_capstyle="butt",
                    marker="|", ms=9, mew=1.6, gid="prediction_interval")
            yticks.append(y_pi)
            ylabels.append("95% prediction interval")
            col_est.append((y_pi, f"[{fmt_number(pi_lo, decimals)}, {fmt_number(pi_hi, decimals)}]", False))
    else:
        note = ("single study: no pooled estimate" if single else
                "no pooled estimate available" if k > 1 else "no study reports this outcome at this visit")
        ax.text(0.5, y_pooled, note, transform=ax.get_yaxis_transform(), ha="center", va="center",
                fontsize=FONT, style="italic", color="#444444", gid="pooled_note")

    ax.set_yticks(yticks, ylabels)
    ax.tick_params(axis="y", length=0, labelsize=FONT, pad=6)
    ax.tick_params(axis="x", labelsize=FONT)
    for j, lab in enumerate(ax.get_yticklabels()):
        if j in bold_rows:
            lab.set_fontweight("bold")
    ax.plot([null_value, null_value], [-0.5, y_max], color="#555555", lw=0.9, zorder=0, gid="null_line")
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel(f"{measure_label} ({unit})", fontsize=FONT)
    words = _direction_words(direction_of_benefit)
    if words:
        kw = dict(xycoords=("data", "axes fraction"), textcoords="offset points", fontsize=FONT,
                  va="top", color="#333333", annotation_clip=False)
        ax.annotate(words[0], xy=(null_value, 0), xytext=(-4, -36), ha="right", gid="direction_left", **kw)
        ax.annotate(words[1], xy=(null_value, 0), xytext=(4, -36), ha="left", gid="direction_right", **kw)

    # measured layout: label column | plot | n column | estimate column
    header_est = f"{measure_label} [{study_interval}]"
    left_in = max([_text_width(fig, s, FONT, "bold" if j in bold_rows else "normal")
                   for j, s in enumerate(ylabels)] + [_text_width(fig, "Study", FONT, "bold")]) + 0.15
    n_w = max([_text_width(fig, s, FONT, "bold" if b else "normal") for _, s, b in col_n]
              + [_text_width(fig, "n", FONT, "bold")])
    est_w = max([_text_width(fig, s, FONT, "bold" if b else "normal") for _, s, b in col_est]
                + [_text_width(fig, header_est, FONT, "bold")])
    gap = 0.15
    right_in = gap + n_w + gap + est_w + 0.05
    words_w = sum(_text_width(fig, w, FONT) for w in words) + 0.1 if words else 0.0
    plot_in = max(plot_width, words_w * 1.05)
    width = left_in + plot_in + right_in
    if width > max_width:
        plot_in = max(1.6, max_width - left_in - right_in)
        width = left_in + plot_in + right_in
    fig.set_size_inches(width, height)
    ax.set_position((left_in / width, bottom_in / height, plot_in / width, axes_h / height))
    from matplotlib.transforms import offset_copy

    base = ax.get_yaxis_transform()
    tr_n = offset_copy(base, fig=fig, x=gap, y=0, units="inches")
    tr_est = offset_copy(base, fig=fig, x=gap + n_w + gap, y=0, units="inches")
    for y, text, bold in col_n:
        ax.text(1.0, y, text, transform=tr_n, ha="left", va="center", fontsize=FONT,
                fontweight="bold" if bold else "normal", gid="column_n")
    for y, text, bold in col_est:
        ax.text(1.0, y, text, transform=tr_est, ha="left", va="center", fontsize=FONT,
                fontweight="bold" if bold else "normal", gid="column_estimate")
    ax.text(1.0, -1.0, "n", transform=tr_n, ha="left", va="center", fontsize=FONT, fontweight="bold")
    ax.text(1.0, -1.0, header_est, transform=tr_est, ha="left", va="center", fontsize=FONT, fontweight="bold")
    tr_study = offset_copy(base, fig=fig, x=-6 / 72, y=0, units="inches")
    ax.text(0.0, -1.0, "Study", transform=tr_study, ha="right", va="center", fontsize=FONT, fontweight="bold")
    if title is None:
        title = outcome_label + (f" at {months_text(visit_months)}" if visit_months is not None else "")
    fig.text(0.01, 1 - 0.08 / height, title, fontsize=FONT + 1, fontweight="bold", ha="left", va="top")
    return fig


# ----------------------------------------------------------------------------------------------------------------
# Trajectory
# ----------------------------------------------------------------------------------------------------------------

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
                    direction_of_benefit: str, title: str = "",
                    styles: Mapping[str, tuple[str, str]] | None = None, max_months: float = 12.0,
                    n_ref: float | None = None, dodge: float = 0.12,
                    measure_label: str = "Change from baseline") -> dict:
    """Draw one outcome's trajectory into `ax` (see `trajectory_plot` for the columns).

    Returns what was drawn: {'curve': bool, 'prediction': bool, 'open_points': bool}.
    """
    drawn = {"curve": False, "prediction": False, "open_points": False, "interpolated": False, "control": False}
    ax.axhline(0.0, color="#555555", lw=0.9, zorder=1, gid="null_line")
    if curve is not None and len(curve):
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
    if points is not None and len(points):
        points = points.reset_index(drop=True)
        labels = list(dict.fromkeys(points["label"]))
        styles = dict(styles or study_styles(labels))
        if n_ref is None:
            n_ref = max([_num(v) for v in points["n"] if np.isfinite(_num(v))] + [1.0]) if "n" in points else 1.0
        # dodge studies that share a visit so that their points and bars do not hide each other
        times = points["time_months"].astype(float).round(2)
        per_time = points.assign(_t=times).groupby("_t")["label"].nunique()
        shared = times.map(per_time).to_numpy() > 1
        interval_cols = {"lower", "upper"} <= set(points.columns)
        is_control = (points["control"].fillna(False).astype(bool).to_numpy() if "control" in points.columns
                      else np.zeros(len(points), bool))
        ctl = points[is_control]
        points = points[~is_control].reset_index(drop=True)
        times = times[~is_control].reset_index(drop=True)
        shared = shared[~is_control]
        for j, lab in enumerate(labels):
            if not len(ctl[ctl["label"] == lab]):
                continue
            own = ctl[ctl["label"] == lab]
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
    ax.set_xlim(-0.4, max_months + 0.6)
    ax.set_xticks([v for v in (0, 1, 3, 6, 9, 12, 18, 24, 36, 48, 60) if v <= max_months])
    ax.set_xlabel("Months after MSCT", fontsize=FONT)
    note = _improvement_note(direction_of_benefit)
    ax.set_ylabel(f"{measure_label} ({unit})" + (f"\n{note}" if note else ""), fontsize=FONT)
    ax.tick_params(labelsize=FONT)
    ax.grid(axis="y", color="#e5e5e5", lw=0.6, zorder=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    full_title = title + ("" if drawn["curve"] else
                          f"\n({NOT_POOLED_NOTE})" if drawn["interpolated"] else f"\n({NO_CURVE_NOTE})")
    ax.set_title(full_title.strip(), fontsize=FONT + 1, loc="left")
    return drawn


def _legend_handles(styles: Mapping[str, tuple[str, str]], drawn: Mapping[str, bool]) -> list:
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
        handles.append(Line2D([], [], ls="none", marker="o", markerfacecolor="white",
                              markeredgecolor=CONTROL_COLOUR, mew=1.2, ms=6, label="hollow grey: control arm"))
    if drawn.get("open_points"):
        handles.append(Line2D([], [], ls="none", marker="o", markerfacecolor="white", markeredgecolor="#333333",
                              ms=6, label="open marker: no interval reported"))
    return handles


def _bottom_legend(fig: Figure, handles: list, ncol: int, height_in: float) -> float:
    """Put a legend under the axes; returns the fraction of the figure height it needs."""
    rows = math.ceil(len(handles) / ncol)
    need = (0.22 * rows + 0.12) / height_in
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=FONT, frameon=False,
               bbox_to_anchor=(0.5, 0.0), handletextpad=0.4, columnspacing=1.2)
    return need


def trajectory_plot(curve: pd.DataFrame | None, points: pd.DataFrame | None, *, outcome_label: str, unit: str,
                    direction_of_benefit: str, title: str | None = None, max_months: float = 12.0,
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
    drawn = draw_trajectory(ax, curve, points, unit=unit, direction_of_benefit=direction_of_benefit,
                            title=title or outcome_label, styles=styles, max_months=max_months,
                            measure_label=measure_label)
    handles = _legend_handles({k: styles[k] for k in labels}, drawn)
    legend_h = 0.22 * math.ceil(len(handles) / 2) + 0.15
    total = height + legend_h
    fig.set_size_inches(width, total)
    need = _bottom_legend(fig, handles, 2, total)
    fig.tight_layout(rect=(0, need, 1, 1))
    return fig


def trajectory_grid(panels: Sequence[Mapping], *, ncols: int = 2, max_months: float = 12.0,
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
                                direction_of_benefit=p["direction_of_benefit"],
                                title=p.get("title") or p["outcome_label"], styles=styles, max_months=max_months,
                                n_ref=n_ref, measure_label=p.get("measure_label", "Change"))
        for key in drawn_any:
            drawn_any[key] |= drawn[key]
    for j in range(k, nrows * ncols):
        axes[j // ncols][j % ncols].set_axis_off()
    handles = _legend_handles(styles, drawn_any)
    ncol_leg = 3 if width >= 6 else 2
    legend_h = 0.22 * math.ceil(len(handles) / ncol_leg) + 0.15
    total = panel_height * nrows + legend_h
    fig.set_size_inches(width, total)
    need = _bottom_legend(fig, handles, ncol_leg, total)
    fig.tight_layout(rect=(0, need, 1, 1))
    return fig


# ----------------------------------------------------------------------------------------------------------------
# Critical appraisal
# ----------------------------------------------------------------------------------------------------------------

def _checklists(appraisal: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(appraisal["checklist"])) if "checklist" in appraisal.columns else [""]


def _items(part: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(part["item_id"]))


def _question(part: pd.DataFrame, item: str) -> str:
    if "item" in part.columns:
        q = part.loc[part["item_id"] == item, "item"].iloc[0]
        if isinstance(q, str) and q.strip():
            return q.strip()
    return item


def _check_judgements(appraisal: pd.DataFrame) -> None:
    bad = sorted(set(appraisal["judgement"].astype(str)) - set(JUDGEMENT_STYLE))
    if bad:
        raise ValueError(f"unknown judgement(s) {bad}; expected one of {JUDGEMENT_ORDER}")


def _judgement_legend(fig: Figure, present: Iterable[str], y: float = 0.0) -> None:
    handles = []
    for j in JUDGEMENT_ORDER:
        if j not in present:
            continue
        colour, symbol, text = JUDGEMENT_STYLE[j]
        handles.append(Line2D([], [], ls="none", marker="o", ms=10, markerfacecolor=colour,
                              markeredgecolor="#555555", label=f"{symbol}  {text}" if symbol else text))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles) if len(handles) <= 4 else 3,
               fontsize=FONT, frameon=False,
               bbox_to_anchor=(0.5, y), handletextpad=0.3, columnspacing=1.2)


def traffic_light_plot(appraisal: pd.DataFrame, *, labels: Mapping[str, str] | None = None,
                       width: float = 6.8) -> Figure:
    """robvis-style traffic-light plot: one coloured circle with a symbol per study and checklist item.

    `appraisal`: one row per study and item; columns `study_id`, `item_id`, `judgement` (`yes`, `no`, `unclear`,
    `not_reported`, `not_applicable`), optionally `checklist` (one panel per checklist, since items differ) and
    `item` (the question, printed as a key 'Q1 ...' under each panel). Studies are rows, items columns, both in
    the sheet's order; `labels` maps study_id to the displayed name. Colours/symbols: yes green '+', no red '−',
    unclear yellow '?', not reported grey 'NR', not applicable white (blank); unclear and not reported are kept
    apart, never merged. A study without a judgement for an item of its checklist gets no marker.
    """
    _check_judgements(appraisal)
    labels = dict(labels or {})
    lists = _checklists(appraisal)
    parts = [(cl, appraisal if cl == "" else appraisal[appraisal["checklist"] == cl]) for cl in lists]
    fig = plt.figure(figsize=(width, 4.0))
    all_labels = [labels.get(s, s) for s in dict.fromkeys(appraisal["study_id"])]
    left_in = max(_text_width(fig, s, FONT) for s in all_labels) + 0.25
    cell = 0.42
    line_h = 0.142  # inches per key line at 8 pt, line spacing 1.25
    title_h, head_h, gap_h = 0.3, 0.3, 0.25
    key_chars = max(40, int((width - 0.2) / 0.068))
    layout, total = [], 0.0
    for cl, part in parts:
        items = _items(part)
        studies = list(dict.fromkeys(part["study_id"]))
        key = "\n".join(textwrap.fill(f"Q{i} {_question(part, it)}", key_chars, subsequent_indent="     ")
                        for i, it in enumerate(items, 1))
        h = title_h + head_h + cell * len(studies) + 0.1 + line_h * (key.count("\n") + 1) + gap_h
        layout.append((cl, part, items, studies, key, h))
        total += h
    n_j = len(set(appraisal["judgement"].astype(str)))
    total += 0.25 * math.ceil(n_j / (n_j if n_j <= 4 else 3)) + 0.05
    fig.set_size_inches(width, total)
    top = total
    for cl, part, items, studies, key, h in layout:
        grid_w = cell * len(items)
        ax_top = top - title_h - head_h
        ax_bottom = ax_top - cell * len(studies)
        ax = fig.add_axes((left_in / width, ax_bottom / total, grid_w / width, cell * len(studies) / total))
        xs, ys, colours, symbols = [], [], [], []
        for yi, sid in enumerate(studies):
            own = part[part["study_id"] == sid]
            for xi, it in enumerate(items):
                hit = own[own["item_id"] == it]
                if hit.empty:
                    continue
                j = str(hit["judgement"].iloc[0])
                xs.append(xi)
                ys.append(yi)
                colours.append(JUDGEMENT_STYLE[j][0])
                symbols.append(JUDGEMENT_STYLE[j][1])
        ax.scatter(xs, ys, s=280, c=colours, edgecolors="#555555", linewidths=0.7, zorder=3,
                   gid=f"judgements:{cl or 'all'}")
        for x, y, sym, col in zip(xs, ys, symbols, colours):
            if sym:
                ax.text(x, y, sym, ha="center", va="center", fontsize=FONT if len(sym) < 2 else MIN_FONT,
                        fontweight="bold", color="black" if col in ("#f2c41d", "#9e9e9e") else "white",
                        zorder=4)
        ax.set_xlim(-0.5, len(items) - 0.5)
        ax.set_ylim(len(studies) - 0.5, -0.5)
        ax.set_xticks(range(len(items)), [f"Q{i}" for i in range(1, len(items) + 1)])
        ax.xaxis.tick_top()
        ax.set_yticks(range(len(studies)), [labels.get(s, s) for s in studies])
        ax.tick_params(length=0, labelsize=FONT)
        for side in ax.spines.values():
            side.set_visible(False)
        ax.set_axisbelow(True)
        ax.grid(color="#dddddd", lw=0.6)
        name = CHECKLIST_NAMES.get(cl, cl)
        n_st = len(studies)
        if name:
            fig.text(0.1 / width, (top - 0.05) / total, f"{name} ({n_st} {'study' if n_st == 1 else 'studies'})",
                     fontsize=FONT + 1, fontweight="bold", va="top")
        fig.text(0.1 / width, (ax_bottom - 0.12) / total, key, fontsize=MIN_FONT, va="top", ha="left",
                 color="#333333", linespacing=1.25)
        top -= h
    _judgement_legend(fig, set(appraisal["judgement"].astype(str)), y=0.0)
    return fig


def appraisal_summary_plot(appraisal: pd.DataFrame, *, width: float = 7.0, wrap: int = 48) -> Figure:
    """Stacked horizontal bars per checklist item: the percentage of studies with each judgement.

    `appraisal`: as for `traffic_light_plot`. One panel per checklist; items on the y axis (question text,
    wrapped); x axis 'Studies (%)' from 0 to 100; every judgement (including unclear and not reported) its own
    segment, in the order yes, no, unclear, not reported, not applicable; segments of 10% or more are labelled.
    """
    _check_judgements(appraisal)
    lists = _checklists(appraisal)
    parts = [(cl, appraisal if cl == "" else appraisal[appraisal["checklist"] == cl]) for cl in lists]
    n_lines = []
    for cl, part in parts:
        n_lines.append(sum(len(textwrap.wrap(_question(part, it), wrap)) for it in _items(part)))
    heights = [0.6 + max(0.5 * len(_items(p)), 0.16 * nl) for (cl, p), nl in zip(parts, n_lines)]
    fig, axes = plt.subplots(len(parts), 1, figsize=(width, sum(heights) + 0.7), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, (cl, part) in zip(axes[:, 0], parts):
        items = _items(part)
        n_st = part["study_id"].nunique()
        for yi, it in enumerate(items):
            own = part[part["item_id"] == it]["judgement"].astype(str)
            left = 0.0
            for j in JUDGEMENT_ORDER:
                share = 100.0 * (own == j).sum() / len(own) if len(own) else 0.0
                if share <= 0:
                    continue
                colour = JUDGEMENT_STYLE[j][0]
                ax.barh(yi, share, left=left, height=0.7, color=colour, edgecolor="#555555", linewidth=0.5,
                        gid=f"summary:{cl or 'all'}:{j}:{it}")
                if share >= 10:
                    ax.text(left + share / 2, yi, f"{share:.0f}%", ha="center", va="center", fontsize=MIN_FONT,
                            color="black" if j in ("unclear", "not_reported", "not_applicable") else "white")
                left += share
        ax.set_yticks(range(len(items)),
                      [textwrap.fill(f"Q{i} {_question(part, it)}", wrap) for i, it in enumerate(items, 1)])
        ax.set_ylim(len(items) - 0.5, -0.5)
        ax.set_xlim(0, 100)
        ax.set_xlabel("Studies (%)", fontsize=FONT)
        ax.tick_params(labelsize=FONT)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        name = CHECKLIST_NAMES.get(cl, cl)
        ax.set_title(f"{name} ({n_st} {'study' if n_st == 1 else 'studies'})" if name else "",
                     fontsize=FONT + 1, loc="left", fontweight="bold")
    fig.tight_layout(rect=(0, 0.55 / (sum(heights) + 0.7), 1, 1))
    _judgement_legend(fig, set(appraisal["judgement"].astype(str)), y=0.0)
    return fig


# ----------------------------------------------------------------------------------------------------------------
# Model figures (supplement)
# ----------------------------------------------------------------------------------------------------------------

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
    `obs_labels`: one label per observation (e.g. 'Deng 2017, 6 m'), top to bottom; default 'obs 1', ...
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
    need = _bottom_legend(fig, handles, 3, height)
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
