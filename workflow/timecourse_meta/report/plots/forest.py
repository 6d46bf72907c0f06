"""Forest plot of one outcome at one visit (RevMan / metafor::forest() layout).

Artists' gids: `study_ci:<label>`, `study_point:<label>`, `control_ci:<label>`, `control_point:<label>`,
`pooled_diamond`, `prediction_interval`, `null_line`, `pooled_note`, `direction_left`/`direction_right`,
`column_n`, `column_estimate`.
"""

from __future__ import annotations

import math
from typing import Mapping

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Polygon  # noqa: E402
from matplotlib.transforms import offset_copy  # noqa: E402

from timecourse_meta.report.format import decimals_for, fmt_bounds, fmt_bracketed, months_text  # noqa: E402
from timecourse_meta.report.plots.common import (CONTROL_COLOUR, FONT, MAX_WIDTH,  # noqa: E402
                                                POOLED_COLOUR, direction_words, get, num, text_width)


def forest_plot(studies: pd.DataFrame, pooled: Mapping | pd.Series | pd.DataFrame | None = None, *,
                outcome_label: str, unit: str, direction_of_benefit: str, visit_months: float | None = None,
                title: str | None = None, measure_label: str = "Change from baseline",
                study_interval: str = "95% CI", pooled_label: str = "Pooled change (95% CrI)",
                null_value: float = 0.0, decimals: int | None = None, plot_width: float = 3.0,
                max_width: float = MAX_WIDTH) -> Figure:
    """Forest plot of one outcome at one visit, in the RevMan / metafor::forest() layout.

    `studies`: one row per study, drawn top to bottom in the given order; columns `label`, `estimate`, `lower`,
    `upper` (the study's interval; NaN = none reported: hollow marker and '[no interval]') and `n` (patients;
    NaN allowed, shown 'NR'); optional `control` (True: the row is a comparator arm's own change, drawn as a
    hollow grey circle with a dashed interval beside its study's intervention arm, not counted in the pooled n);
    optional
    `time_months`: when it differs from `visit_months` by more than 0.05 the
    row label says at which time the study measured (e.g. 'Smith 2016 (at 0.9 months)'). Marker area grows with n.
    `pooled`: mapping / Series / one-row DataFrame with `estimate`, `lower`, `upper` (posterior median and 95%
    CrI), optionally `pi_lower`, `pi_upper` (95% prediction interval for a new study) and `label`. With a single
    study no pooled diamond is drawn (whatever `pooled` holds) and the note 'single study: no pooled estimate' is
    shown; with several studies and no pooled estimate the note 'no pooled estimate available' is shown.
    The x axis reads `measure_label (unit)`; the vertical line marks no change (`null_value`); under the axis the
    side of improvement and of worsening follow `direction_of_benefit` (`decrease`/`increase`).
    Right-hand columns: n and 'estimate [lower, upper]' (`format.fmt_bracketed`; the pooled row's n is the sum
    of the study rows' n).
    The figure is as wide as its text needs (plot area
    `plot_width` inches), at most `max_width` inches (the plot area shrinks first).
    """
    studies = studies.reset_index(drop=True)
    k = len(studies)
    control = (studies["control"].fillna(False).astype(bool).to_numpy() if "control" in studies.columns
               else np.zeros(k, bool))
    single = int((~control).sum()) == 1
    show_pooled = (not single) and pooled is not None and np.isfinite(num(get(pooled, "estimate")))
    pi_lo, pi_hi = num(get(pooled, "pi_lower")), num(get(pooled, "pi_upper"))
    show_pi = show_pooled and np.isfinite(pi_lo) and np.isfinite(pi_hi)

    # rows: header at y = -1, studies at y = 0..k-1 (top to bottom), a gap, pooled row, prediction interval
    y_pooled = k + 0.6
    y_max = (y_pooled + 1.0 if show_pi else y_pooled) + 0.6
    axes_h = 0.27 * (y_max + 1.4)
    height = axes_h + 0.35 + 0.9
    fig, ax = plt.subplots(figsize=(max_width, height))
    ax.set_ylim(y_max, -1.4)

    values = [null_value]
    for col in ("estimate", "lower", "upper"):
        values += [v for v in studies[col].astype(float) if np.isfinite(v)]
    if show_pooled:
        values += [num(get(pooled, c)) for c in ("estimate", "lower", "upper")]
    if show_pi:
        values += [pi_lo, pi_hi]
    lo_all, hi_all = min(values), max(values)
    span = hi_all - lo_all or 1.0
    ax.set_xlim(lo_all - 0.06 * span, hi_all + 0.06 * span)
    if decimals is None:
        decimals = decimals_for(*values)

    rows = _draw_rows(ax, studies, control, visit_months, decimals)
    n_total = sum(v for v, c in zip(rows["n_values"], control) if np.isfinite(v) and not c)
    if show_pooled:
        _draw_pooled(ax, pooled, rows, y_pooled, n_total, decimals, show_pi, pooled_label)
    else:
        note = ("single study: no pooled estimate" if single else
                "no pooled estimate available" if k > 1 else "no study reports this outcome at this visit")
        ax.text(0.5, y_pooled, note, transform=ax.get_yaxis_transform(), ha="center", va="center",
                fontsize=FONT, style="italic", color="#444444", gid="pooled_note")
    words = _style_axes(ax, rows, null_value, y_max, f"{measure_label} ({unit})", direction_of_benefit)
    _lay_out(fig, ax, rows, words, f"{measure_label} [{study_interval}]", height, axes_h, plot_width, max_width)
    if title is None:
        title = outcome_label + (f" at {months_text(visit_months)}" if visit_months is not None else "")
    fig.text(0.01, 1 - 0.08 / height, title, fontsize=FONT + 1, fontweight="bold", ha="left", va="top")
    return fig


def _draw_rows(ax, studies: pd.DataFrame, control: np.ndarray, visit_months: float | None, decimals: int) -> dict:
    """Each study row's interval and marker (a comparator arm hollow grey); returns the row texts: `yticks`,
    `ylabels`, `bold_rows`, `col_n`, `col_est` ((y, text, bold) per row) and the rows' `n_values`."""
    k = len(studies)
    n_values = [num(v) for v in studies["n"]] if "n" in studies.columns else [math.nan] * k
    n_max = max([v for v in n_values if np.isfinite(v)] + [1.0])
    rows = {"yticks": [], "ylabels": [], "bold_rows": set(), "col_n": [], "col_est": [], "n_values": n_values}
    for i, r in studies.iterrows():
        est, lo, hi = num(r["estimate"]), num(r["lower"]), num(r["upper"])
        n = n_values[i]
        label = str(r["label"])
        has_ci = np.isfinite(lo) and np.isfinite(hi)
        if has_ci and control[i]:
            ax.plot([lo, hi], [i, i], color=CONTROL_COLOUR, lw=1.1, ls=(0, (3, 1.5)), gid=f"control_ci:{label}")
        elif has_ci:
            ax.plot([lo, hi], [i, i], color="black", lw=1.1, solid_capstyle="butt", gid=f"study_ci:{label}")
        size = 4.0 + 6.0 * math.sqrt(n / n_max) if np.isfinite(n) else 5.0
        if control[i]:  # a comparator arm's own change: shown beside its study's intervention arm, never pooled
            ax.plot([est], [i], marker="o", ms=size, color="white", markeredgecolor=CONTROL_COLOUR, mew=1.3,
                    ls="none", gid=f"control_point:{label}")
        else:
            ax.plot([est], [i], marker="s", ms=size, color="#333333" if has_ci else "white",
                    markeredgecolor="#333333", ls="none", gid=f"study_point:{label}")
        t_row = num(r["time_months"]) if "time_months" in studies.columns else math.nan
        shown = label
        if visit_months is not None and np.isfinite(t_row) and abs(t_row - float(visit_months)) > 0.05:
            shown = f"{label} (at {months_text(t_row)})"
        rows["yticks"].append(i)
        rows["ylabels"].append(shown)
        rows["col_n"].append((i, f"{int(n)}" if np.isfinite(n) else "NR", False))
        rows["col_est"].append((i, fmt_bracketed(est, lo, hi, decimals), False))
    return rows


def _draw_pooled(ax, pooled, rows: dict, y_pooled: float, n_total: float, decimals: int, show_pi: bool,
                 pooled_label: str) -> None:
    """The pooled diamond (and the prediction interval a row below), with their row texts."""
    est, lo, hi = (num(get(pooled, c)) for c in ("estimate", "lower", "upper"))
    h = 0.34
    ax.add_patch(Polygon([(lo, y_pooled), (est, y_pooled - h), (hi, y_pooled), (est, y_pooled + h)],
                         closed=True, facecolor=POOLED_COLOUR, edgecolor=POOLED_COLOUR, gid="pooled_diamond"))
    rows["yticks"].append(y_pooled)
    rows["ylabels"].append(str(get(pooled, "label", None) or pooled_label))
    rows["bold_rows"].add(len(rows["ylabels"]) - 1)
    rows["col_n"].append((y_pooled, f"{int(n_total)}" if n_total > 0 else "", True))
    rows["col_est"].append((y_pooled, fmt_bracketed(est, lo, hi, decimals), True))
    if show_pi:
        pi_lo, pi_hi = num(get(pooled, "pi_lower")), num(get(pooled, "pi_upper"))
        y_pi = y_pooled + 1.0
        ax.plot([pi_lo, pi_hi], [y_pi, y_pi], color=POOLED_COLOUR, lw=2.0, solid_capstyle="butt",
                marker="|", ms=9, mew=1.6, gid="prediction_interval")
        rows["yticks"].append(y_pi)
        rows["ylabels"].append("95% prediction interval")
        rows["col_est"].append((y_pi, fmt_bounds(pi_lo, pi_hi, decimals), False))


def _style_axes(ax, rows: dict, null_value: float, y_max: float, xlabel: str,
                direction_of_benefit: str) -> tuple[str, str] | None:
    """Row labels (pooled bold), the no-change line, spines, the x label and the direction words under it;
    returns the direction words (their width sets the plot's)."""
    ax.set_yticks(rows["yticks"], rows["ylabels"])
    ax.tick_params(axis="y", length=0, labelsize=FONT, pad=6)
    ax.tick_params(axis="x", labelsize=FONT)
    for j, lab in enumerate(ax.get_yticklabels()):
        if j in rows["bold_rows"]:
            lab.set_fontweight("bold")
    ax.plot([null_value, null_value], [-0.5, y_max], color="#555555", lw=0.9, zorder=0, gid="null_line")
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel(xlabel, fontsize=FONT)
    words = direction_words(direction_of_benefit)
    if words:
        kw = dict(xycoords=("data", "axes fraction"), textcoords="offset points", fontsize=FONT,
                  va="top", color="#333333", annotation_clip=False)
        ax.annotate(words[0], xy=(null_value, 0), xytext=(-4, -36), ha="right", gid="direction_left", **kw)
        ax.annotate(words[1], xy=(null_value, 0), xytext=(4, -36), ha="left", gid="direction_right", **kw)
    return words


def _lay_out(fig: Figure, ax, rows: dict, words, header_est: str, height: float, axes_h: float,
             plot_width: float, max_width: float) -> None:
    """Measured layout, label column | plot | n column | estimate column, and the columns' texts."""
    bold_rows, col_n, col_est = rows["bold_rows"], rows["col_n"], rows["col_est"]
    left_in = max([text_width(fig, s, FONT, "bold" if j in bold_rows else "normal")
                   for j, s in enumerate(rows["ylabels"])] + [text_width(fig, "Study", FONT, "bold")]) + 0.15
    n_w = max([text_width(fig, s, FONT, "bold" if b else "normal") for _, s, b in col_n]
              + [text_width(fig, "n", FONT, "bold")])
    est_w = max([text_width(fig, s, FONT, "bold" if b else "normal") for _, s, b in col_est]
                + [text_width(fig, header_est, FONT, "bold")])
    gap = 0.15
    right_in = gap + n_w + gap + est_w + 0.05
    words_w = sum(text_width(fig, w, FONT) for w in words) + 0.1 if words else 0.0
    plot_in = max(plot_width, words_w * 1.05)
    width = left_in + plot_in + right_in
    if width > max_width:
        plot_in = max(1.6, max_width - left_in - right_in)
        width = left_in + plot_in + right_in
    fig.set_size_inches(width, height)
    ax.set_position((left_in / width, 0.9 / height, plot_in / width, axes_h / height))
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
