"""The sensitivity figure of one outcome: every variant's estimate at the key visit as a row, grouped by what the
variant changes, the main analysis first and highlighted.

A reader scans it in seconds: the main estimate is a bold blue row with a dashed vertical line and a light band
(its 95% CrI) running through every row; the solid grey line is no change; variants that overturn the main
conclusion are red; a variant without an estimate (failed the convergence gate, not applicable) says why in its
row instead of a point.

Artists' gids: `main_point`, `main_ci`, `main_line`, `main_band`, `null_line`, `variant_point:<id>`,
`variant_ci:<id>`, `variant_note:<id>`, `group_label:<group>`, `column_estimate`, `verdict_text`,
`direction_left`/`direction_right`.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Collection

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.transforms import offset_copy  # noqa: E402

from timecourse_meta.report.format import decimals_for, fmt_bracketed, fmt_probability  # noqa: E402
from timecourse_meta.report.plots.common import (FONT, MAX_WIDTH, POOLED_COLOUR, direction_words,  # noqa: E402
                                                num, text_width)

OVERTURN_COLOUR = "#b2182b"
NOTE_COLOUR = "#666666"
BAND_COLOUR = "#dbe5f3"
ROW_H = 0.24  # inches per row


def _layout_rows(results: pd.DataFrame, groups: dict) -> list[tuple[str, object]]:
    """('group', name) and ('variant', row) entries, top to bottom: the groups in `groups` order."""
    entries = []
    present = list(dict.fromkeys(results["group"]))
    for g in [g for g in groups if g in present] + [g for g in present if g not in groups]:
        part = results[results["group"] == g]
        if g != "main":
            entries.append(("group", g))
        entries += [("variant", r) for _, r in part.iterrows()]
    return entries


def _right_text(r, decimals: int, binary: bool) -> str:
    est = num(r["estimate"])
    if not math.isfinite(est):
        return ""
    text = fmt_bracketed(est, r["lower"], r["upper"], decimals)
    p = num(r["p_improvement"])
    if not binary and math.isfinite(p):
        text += f"   P {fmt_probability(p)}"
    return text


def sensitivity_plot(results: pd.DataFrame, *, title: str, verdict: str, xlabel: str, groups: dict,
                     direction_of_benefit: str = "", overturning: Collection[str] = (), binary: bool = False,
                     decimals: int | None = None, max_width: float = MAX_WIDTH) -> Figure:
    """Variants as rows (`report.sensitivity.variant_results` columns: variant, group, label, status, note,
    estimate, lower, upper, p_improvement), grouped under the names of `groups`; the `main` row highlighted;
    `overturning`: variant ids drawn in red; a row without an estimate shows its reason (status and note).
    `binary`: a proportion (no no-change line, no P column). `decimals`: of the estimate column (the
    table's, `report.sensitivity.digits_of`; default by magnitude)."""
    entries = _layout_rows(results.reset_index(drop=True), groups)
    n = len(entries)
    main = results[results["variant"] == "main"]
    m_est = num(main["estimate"].iloc[0]) if len(main) else math.nan
    m_lo = num(main["lower"].iloc[0]) if len(main) else math.nan
    m_hi = num(main["upper"].iloc[0]) if len(main) else math.nan
    values = [v for c in ("estimate", "lower", "upper") for v in results[c].astype(float) if math.isfinite(v)]
    if not binary:
        values.append(0.0)
    lo_all, hi_all = (min(values), max(values)) if values else (0.0, 1.0)
    span = (hi_all - lo_all) or 1.0
    if decimals is None:
        decimals = decimals_for(*values) if values else 1
    wrapped = textwrap.wrap(verdict, 100)
    if len(wrapped) > 4:  # the table has the full list
        wrapped = wrapped[:3] + [textwrap.shorten(" ".join(wrapped[3:]), 96, placeholder=" \u2026")]
    head_in = 0.5 + 0.17 * len(wrapped)
    axes_h = ROW_H * (n + 0.6)
    height = head_in + axes_h + 0.75
    fig, ax = plt.subplots(figsize=(max_width, height))
    ax.set_ylim(n - 0.4, -0.6)
    ax.set_xlim(lo_all - 0.05 * span, hi_all + 0.05 * span)
    if math.isfinite(m_lo) and math.isfinite(m_hi):
        ax.axvspan(m_lo, m_hi, color=BAND_COLOUR, zorder=0, lw=0, gid="main_band")
    if math.isfinite(m_est):
        ax.axvline(m_est, color=POOLED_COLOUR, ls=(0, (4, 2)), lw=1.0, zorder=1, gid="main_line")
    if not binary:
        ax.axvline(0.0, color="#555555", lw=0.9, zorder=1, gid="null_line")
    labels, bold, right = [], [], []
    for y, (kind, item) in enumerate(entries):
        if kind == "group":
            labels.append(groups.get(item, item))
            bold.append("group")
            continue
        labels.append(str(item["label"]))
        bold.append("main" if item["variant"] == "main" else "")
        right.append((y, _right_text(item, decimals, binary), item["variant"] == "main"))
        _draw_variant(ax, item, y, overturning)
    _style(fig, ax, labels, bold, xlabel, direction_of_benefit, binary)
    _lay_out(fig, ax, labels, bold, right, height, head_in, axes_h, max_width)
    fig.text(0.01, 1 - 0.08 / height, title, fontsize=FONT + 1, fontweight="bold", ha="left", va="top")
    fig.text(0.01, 1 - 0.32 / height, "\n".join(wrapped), fontsize=FONT, ha="left", va="top",
             color=OVERTURN_COLOUR if verdict.startswith("fragile") else "#222222", gid="verdict_text")
    return fig


def _draw_variant(ax, r, y: int, overturning: Collection[str]) -> None:
    est, lo, hi = num(r["estimate"]), num(r["lower"]), num(r["upper"])
    vid = str(r["variant"])
    if not math.isfinite(est):
        reason = {"failed_gate": "not assessable: failed the convergence gate",
                  "not_applicable": "not applicable", "same_as_main": "same as the main analysis"}.get(r["status"])
        if reason is None:  # fitted, but without an estimate at the visit: its note says so
            note = f"not assessable: {r['note'] or 'no estimate at this visit'}"
        else:
            note = f"{reason}: {r['note']}" if r["note"] else reason
        ax.text(0.01, y, note, transform=ax.get_yaxis_transform(), ha="left", va="center",
                fontsize=FONT, style="italic", color=NOTE_COLOUR, gid=f"variant_note:{vid}", zorder=5,
                bbox=dict(facecolor="white", edgecolor="none", pad=0.5, alpha=0.85))
        return
    is_main = vid == "main"
    colour = POOLED_COLOUR if is_main else OVERTURN_COLOUR if vid in overturning else "#333333"
    if math.isfinite(lo) and math.isfinite(hi):
        ax.plot([lo, hi], [y, y], color=colour, lw=2.2 if is_main else 1.2, solid_capstyle="butt", zorder=3,
                gid="main_ci" if is_main else f"variant_ci:{vid}")
    ax.plot([est], [y], marker="D" if is_main else "s", ms=7 if is_main else 5, color=colour, ls="none",
            zorder=4, gid="main_point" if is_main else f"variant_point:{vid}")


def _style(fig, ax, labels, bold, xlabel: str, direction_of_benefit: str, binary: bool) -> None:
    ax.set_yticks(range(len(labels)), labels)
    ax.tick_params(axis="y", length=0, labelsize=FONT, pad=6)
    ax.tick_params(axis="x", labelsize=FONT)
    for lab, b in zip(ax.get_yticklabels(), bold):
        if b:
            lab.set_fontweight("bold")
        if b == "main":
            lab.set_color(POOLED_COLOUR)
        if b == "group":
            lab.set_gid(f"group_label:{lab.get_text()}")
            lab.set_color("#444444")
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel(xlabel, fontsize=FONT)
    words = None if binary else direction_words(direction_of_benefit)
    if words:
        kw = dict(xycoords=("data", "axes fraction"), textcoords="offset points", fontsize=FONT, va="top",
                  color="#333333", annotation_clip=False)
        ax.annotate(words[0], xy=(0.0, 0), xytext=(-4, -32), ha="right", gid="direction_left", **kw)
        ax.annotate(words[1], xy=(0.0, 0), xytext=(4, -32), ha="left", gid="direction_right", **kw)


def _lay_out(fig, ax, labels, bold, right, height: float, head_in: float, axes_h: float,
             max_width: float) -> None:
    """Label column | plot | estimate column, measured so nothing is clipped."""
    left_in = max([text_width(fig, s, FONT, "bold" if b else "normal") for s, b in zip(labels, bold)] + [1.0]) + 0.15
    est_w = max([text_width(fig, t, FONT, "bold" if b else "normal") for _, t, b in right]
                + [text_width(fig, "Estimate [95% CrI]", FONT, "bold")]) + 0.1
    plot_in = max(2.0, max_width - left_in - est_w - 0.2)
    width = left_in + plot_in + est_w + 0.2
    fig.set_size_inches(width, height)
    ax.set_position((left_in / width, 0.75 / height, plot_in / width, axes_h / height))
    for t in ax.texts:  # a reason in place of a point: over the plot and the (empty) estimate column
        if str(t.get_gid()).startswith("variant_note:"):
            text = t.get_text()
            while len(text) > 12 and text_width(fig, text, FONT) > plot_in + est_w - 0.1:
                text = textwrap.shorten(text, width=len(text) - 4, placeholder=" \u2026")
            t.set_text(text)
    tr = offset_copy(ax.get_yaxis_transform(), fig=fig, x=0.15, y=0, units="inches")
    for y, text, b in right:
        ax.text(1.0, y, text, transform=tr, ha="left", va="center", fontsize=FONT,
                fontweight="bold" if b else "normal", color=POOLED_COLOUR if b else "#222222",
                gid="column_estimate")
    ax.text(1.0, -1.0, "Estimate [95% CrI]", transform=tr, ha="left", va="center", fontsize=FONT,
            fontweight="bold")
