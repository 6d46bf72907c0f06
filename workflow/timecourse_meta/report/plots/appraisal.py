"""Critical appraisal figures: a robvis-style traffic-light plot and a summary bar per checklist item.

Judgement colours, symbols and legend texts and checklist names come from the review's vocabulary
(`core.review.Vocabulary`), in its order. Artists' gids: `judgements:<checklist>`,
`summary:<checklist>:<judgement>:<item>`.
"""

from __future__ import annotations

import math
import textwrap
from typing import Iterable, Mapping

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from timecourse_meta.core.review import Vocabulary  # noqa: E402
from timecourse_meta.report.format import fmt_number  # noqa: E402
from timecourse_meta.report.plots.common import FONT, MIN_FONT, text_width  # noqa: E402

# text on a judgement's colour is black above this relative luminance (WCAG definition), white below: black on
# light fills (yellow, mid grey, white), white on saturated dark ones (green, red)
INK_LUMINANCE = 0.3


def _ink(colour: str) -> str:
    """Black or white text, whichever reads on `colour` (`INK_LUMINANCE`)."""
    rgb = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in to_rgb(colour)]
    return "black" if 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2] > INK_LUMINANCE else "white"


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


def _check_judgements(appraisal: pd.DataFrame, vocabulary: Vocabulary) -> None:
    bad = sorted(set(appraisal["judgement"].astype(str)) - set(vocabulary.judgements))
    if bad:
        raise ValueError(f"unknown judgement(s) {bad}; expected one of {list(vocabulary.judgements)} (the "
                         "review's vocabulary, `judgements`)")


def _judgement_legend(fig: Figure, present: Iterable[str], vocabulary: Vocabulary, y: float = 0.0) -> None:
    handles = []
    for j, judgement in vocabulary.judgements.items():
        if j not in present:
            continue
        colour, symbol, text = judgement.colour, judgement.symbol, judgement.legend
        handles.append(Line2D([], [], ls="none", marker="o", ms=10, markerfacecolor=colour,
                              markeredgecolor="#555555", label=f"{symbol}  {text}" if symbol else text))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles) if len(handles) <= 4 else 3,
               fontsize=FONT, frameon=False,
               bbox_to_anchor=(0.5, y), handletextpad=0.3, columnspacing=1.2)


def traffic_light_plot(appraisal: pd.DataFrame, *, vocabulary: Vocabulary,
                       labels: Mapping[str, str] | None = None, width: float = 6.8) -> Figure:
    """robvis-style traffic-light plot: one coloured circle with a symbol per study and checklist item.

    `appraisal`: one row per study and item; columns `study_id`, `item_id`, `judgement` (a code of
    `vocabulary.judgements`), optionally `checklist` (one panel per checklist, since items differ; titled by
    `vocabulary.checklists`) and `item` (the question, printed as a key 'Q1 ...' under each panel). Studies are
    rows, items columns, both in the sheet's order; `labels` maps study_id to the displayed name. Each
    judgement's colour and symbol are the vocabulary's (e.g. green '+', red '−', yellow '?', grey 'NR'); every
    judgement keeps its own, never merged. A study without a judgement for an item of its checklist gets no
    marker.
    """
    _check_judgements(appraisal, vocabulary)
    labels = dict(labels or {})
    lists = _checklists(appraisal)
    parts = [(cl, appraisal if cl == "" else appraisal[appraisal["checklist"] == cl]) for cl in lists]
    fig = plt.figure(figsize=(width, 4.0))
    all_labels = [labels.get(s, s) for s in dict.fromkeys(appraisal["study_id"])]
    left_in = max(text_width(fig, s, FONT) for s in all_labels) + 0.25
    line_h = 0.142  # inches per key line at 8 pt, line spacing 1.25
    key_chars = max(40, int((width - 0.2) / 0.068))
    layout, total = [], 0.0
    for cl, part in parts:
        items = _items(part)
        studies = list(dict.fromkeys(part["study_id"]))
        key = "\n".join(textwrap.fill(f"Q{i} {_question(part, it)}", key_chars, subsequent_indent="     ")
                        for i, it in enumerate(items, 1))
        h = _TITLE_H + _HEAD_H + _CELL * len(studies) + 0.1 + line_h * (key.count("\n") + 1) + _GAP_H
        layout.append((cl, part, items, studies, key, h))
        total += h
    n_j = len(set(appraisal["judgement"].astype(str)))
    total += 0.25 * math.ceil(n_j / (n_j if n_j <= 4 else 3)) + 0.05
    fig.set_size_inches(width, total)
    top = total
    for cl, part, items, studies, key, h in layout:
        _traffic_panel(fig, cl, part, items, studies, key, top, (left_in, width, total), labels, vocabulary)
        top -= h
    _judgement_legend(fig, set(appraisal["judgement"].astype(str)), vocabulary, y=0.0)
    return fig


_CELL, _TITLE_H, _HEAD_H, _GAP_H = 0.42, 0.3, 0.3, 0.25  # traffic-light cell, panel title, header, gap (inches)


def _traffic_panel(fig: Figure, cl: str, part: pd.DataFrame, items: list, studies: list, key: str, top: float,
                   frame: tuple[float, float, float], labels: Mapping[str, str], vocabulary: Vocabulary) -> None:
    """One checklist's panel, its top `top` inches from the figure's bottom: circles, title and question key.
    `frame`: (left margin, figure width, figure height) in inches."""
    left_in, width, total = frame
    ax_bottom = top - _TITLE_H - _HEAD_H - _CELL * len(studies)
    ax = fig.add_axes((left_in / width, ax_bottom / total, _CELL * len(items) / width,
                       _CELL * len(studies) / total))
    xs, ys, colours, symbols = [], [], [], []
    for yi, sid in enumerate(studies):
        own = part[part["study_id"] == sid]
        for xi, it in enumerate(items):
            hit = own[own["item_id"] == it]
            if hit.empty:
                continue
            judgement = vocabulary.judgements[str(hit["judgement"].iloc[0])]
            xs.append(xi)
            ys.append(yi)
            colours.append(judgement.colour)
            symbols.append(judgement.symbol)
    ax.scatter(xs, ys, s=280, c=colours, edgecolors="#555555", linewidths=0.7, zorder=3,
               gid=f"judgements:{cl or 'all'}")
    for x, y, sym, col in zip(xs, ys, symbols, colours):
        if sym:
            ax.text(x, y, sym, ha="center", va="center", fontsize=FONT if len(sym) < 2 else MIN_FONT,
                    fontweight="bold", color=_ink(col), zorder=4)
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
    name = vocabulary.checklists.get(cl, cl)
    n_st = len(studies)
    if name:
        fig.text(0.1 / width, (top - 0.05) / total, f"{name} ({n_st} {'study' if n_st == 1 else 'studies'})",
                 fontsize=FONT + 1, fontweight="bold", va="top")
    fig.text(0.1 / width, (ax_bottom - 0.12) / total, key, fontsize=MIN_FONT, va="top", ha="left",
             color="#333333", linespacing=1.25)


def appraisal_summary_plot(appraisal: pd.DataFrame, *, vocabulary: Vocabulary, width: float = 7.0,
                           wrap: int = 48) -> Figure:
    """Stacked horizontal bars per checklist item: the percentage of studies with each judgement.

    `appraisal`: as for `traffic_light_plot`. One panel per checklist; items on the y axis (question text,
    wrapped); x axis 'Studies (%)' from 0 to 100; every judgement (including unclear and not reported) its own
    segment, in the vocabulary's order of judgements; segments of 10% or more are labelled.
    """
    _check_judgements(appraisal, vocabulary)
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
            for j, judgement in vocabulary.judgements.items():
                share = 100.0 * (own == j).sum() / len(own) if len(own) else 0.0
                if share <= 0:
                    continue
                colour = judgement.colour
                ax.barh(yi, share, left=left, height=0.7, color=colour, edgecolor="#555555", linewidth=0.5,
                        gid=f"summary:{cl or 'all'}:{j}:{it}")
                if share >= 10:
                    ax.text(left + share / 2, yi, f"{fmt_number(share, 0)}%", ha="center", va="center",
                            fontsize=MIN_FONT, color=_ink(colour))
                left += share
        ax.set_yticks(range(len(items)),
                      [textwrap.fill(f"Q{i} {_question(part, it)}", wrap) for i, it in enumerate(items, 1)])
        ax.set_ylim(len(items) - 0.5, -0.5)
        ax.set_xlim(0, 100)
        ax.set_xlabel("Studies (%)", fontsize=FONT)
        ax.tick_params(labelsize=FONT)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        name = vocabulary.checklists.get(cl, cl)
        ax.set_title(f"{name} ({n_st} {'study' if n_st == 1 else 'studies'})" if name else "",
                     fontsize=FONT + 1, loc="left", fontweight="bold")
    fig.tight_layout(rect=(0, 0.55 / (sum(heights) + 0.7), 1, 1))
    _judgement_legend(fig, set(appraisal["judgement"].astype(str)), vocabulary, y=0.0)
    return fig
