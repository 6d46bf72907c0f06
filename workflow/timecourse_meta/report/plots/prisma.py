"""The PRISMA 2020 flow diagram of one study set (counts: `timecourse_meta.report.prisma`).

The standard layout: the stages Identification, Screening and Included as bars on the left; per search a column
of boxes joined by arrows (records identified -> studies assessed -> studies included), with the boxes of what
left the flow to the right of the arrow (reports collated into studies; studies excluded or not analysed, with
reasons). With two searches the columns are "previous studies" and "new studies" and a last box gives the total
(PRISMA 2020's template for updated reviews). Every count is its own text artist whose `gid` is the box id, so
that a test can read what was drawn.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from timecourse_meta.report.format import fmt_count
from timecourse_meta.report.plots.common import MAX_WIDTH, MIN_FONT, enforce_min_font
from timecourse_meta.report.prisma import SEARCH_WORDS, Flow, label_of

FONT = MIN_FONT
LINE = FONT * 1.3 / 72          # inches per text line
PAD = 0.07                      # inches inside a box
GAP = 0.28                      # inches between rows
BAND = 0.32                     # width of the stage bars
STAGE_COLOUR = "#c6dbef"
EDGE = "#1f3b73"


def _wrap(text: str, width_in: float, bold: bool = False) -> list[str]:
    """Lines that fit the width (a character is about half, in bold 0.56, of the font size wide)."""
    return textwrap.wrap(text, max(12, int(width_in * 72 / ((0.56 if bold else 0.5) * FONT)) - 1))


def _n(count: int) -> str:
    """'(n = 4)' with no-break spaces: a count is never split across lines."""
    return f"(n\u00a0=\u00a0{fmt_count(int(count))})"


class _Canvas:
    """Boxes laid out in inches from the top; `draw` puts them on a figure of the final height."""

    def __init__(self):
        self.items: list[tuple] = []   # ("box", x, top, w, h) | ("text", x, top, str, gid, bold) | ("arrow", ...)

    def box(self, x: float, top: float, w: float, parts: list[tuple[str, str, bool]]) -> float:
        """A box of text parts (text, gid, bold), each wrapped to the width; returns its height."""
        y = top + PAD
        for text, gid, bold in parts:
            lines = _wrap(text, w - 2 * PAD, bold)
            self.items.append(("text", x + PAD, y, "\n".join(lines), gid, bold))
            y += LINE * len(lines)
        h = y - top + PAD
        self.items.append(("box", x, top, w, h))
        return h

    def arrow(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.items.append(("arrow", x0, y0, x1, y1))

    def draw(self, height: float, stages: list[tuple[str, float, float]]) -> Figure:
        fig = plt.figure(figsize=(MAX_WIDTH, height))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, MAX_WIDTH)
        ax.set_ylim(height, 0)
        ax.axis("off")
        for name, top, bottom in stages:
            ax.add_patch(Rectangle((0.05, top), BAND - 0.08, bottom - top, facecolor=STAGE_COLOUR,
                                   edgecolor="none", gid=f"stage.{name}"))
            ax.text(0.05 + (BAND - 0.08) / 2, (top + bottom) / 2, name, rotation=90, ha="center", va="center",
                    fontsize=FONT, fontweight="bold", gid=f"stage.{name}")
        for item in self.items:
            if item[0] == "box":
                _, x, top, w, h = item
                ax.add_patch(Rectangle((x, top), w, h, facecolor="white", edgecolor=EDGE, linewidth=0.8))
            elif item[0] == "text":
                _, x, y, text, gid, bold = item
                ax.text(x, y, text, ha="left", va="top", fontsize=FONT, fontweight="bold" if bold else "normal",
                        gid=gid, linespacing=1.15, fontstyle="italic" if gid.startswith("search.") else "normal")
            else:
                _, x0, y0, x1, y1 = item
                ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                            arrowprops={"arrowstyle": "-|>", "color": EDGE, "lw": 0.8, "shrinkA": 0, "shrinkB": 0})
        return enforce_min_font(fig)


def prisma_figure(flow: Flow, *, set_name: str, search_names: Mapping[str, str] | None = None,
                  labels: Mapping[str, str] | None = None) -> Figure:
    """The flow diagram of `flow`; `search_names`: search -> its description (config review.searches),
    `labels`: record type / exclusion reason -> the vocabulary's words."""
    search_names = search_names or {}
    two = len(flow.searches) > 1
    col_w = (MAX_WIDTH - BAND - 0.1) / len(flow.searches)
    main_w, side_w = col_w * 0.5, col_w * 0.42
    canvas, b = _Canvas(), flow.boxes
    xs = [BAND + 0.05 + i * col_w for i in range(len(flow.searches))]
    side = [x + main_w + 0.12 for x in xs]

    def row(top: float, x_of, w: float, parts_of) -> list[float]:
        return [canvas.box(x_of[i], top, w, parts_of(c)) for i, c in enumerate(flow.searches)]

    def records(c):
        title = f"{SEARCH_WORDS.get(c, c).capitalize()}: records identified" if two else "Records identified"
        about = search_names.get(c, f"{c} search")
        return [(f"{title} {_n(b[f'{c}.records'])}", f"{c}.records", True), (about, f"search.{c}", False)] + [
            (f"{label_of(k, labels)} {_n(v)}", k, False) for k, v in b.items() if k.startswith(f"{c}.records.")]

    def excluded(c):
        return [(f"Studies excluded or not analysed {_n(b[f'{c}.excluded'])}", f"{c}.excluded", True)] + [
            (f"{label_of(k, labels)} {_n(v)}", k, False) for k, v in b.items() if k.startswith(f"{c}.excluded.")]

    def included(c):
        new = "New studies included" if two and c != flow.searches[0] else "Studies included"
        return [(f"{new} in the analysis of {set_name} {_n(b[f'{c}.included'])}", f"{c}.included", True),
                (f"Reports of included studies {_n(b[f'{c}.included_reports'])}", f"{c}.included_reports", False)]

    top = 0.05
    h_rec = row(top, xs, main_w, records)
    overlap_top = top + max(h_rec) + GAP * 0.5
    h_ovl = row(overlap_top, side, side_w, lambda c: [(
        f"Reports of a patient group already counted, collated into its study {_n(b[f'{c}.overlap'])}",
        f"{c}.overlap", False)])
    studies_top = overlap_top + max(h_ovl) + GAP * 0.5
    h_std = row(studies_top, xs, main_w, lambda c: [
        (f"Studies (patient groups) assessed {_n(b[f'{c}.studies'])}", f"{c}.studies", True)])
    excl_top = studies_top + max(h_std) + GAP * 0.5
    h_exc = row(excl_top, side, side_w, excluded)
    included_top = excl_top + max(h_exc) + GAP * 0.5
    h_inc = row(included_top, xs, main_w, included)
    for i, x in enumerate(xs):
        mid = x + main_w / 2
        canvas.arrow(mid, top + h_rec[i], mid, studies_top)
        canvas.arrow(mid, studies_top + h_std[i], mid, included_top)
        canvas.arrow(mid, overlap_top + h_ovl[i] / 2, side[i], overlap_top + h_ovl[i] / 2)
        canvas.arrow(mid, excl_top + h_exc[i] / 2, side[i], excl_top + h_exc[i] / 2)
    bottom = included_top + max(h_inc)
    if two:
        total_top = bottom + GAP
        h = canvas.box(xs[0], total_top, col_w + main_w, [
            (f"Total studies included in the analysis of {set_name} {_n(b['total.included'])}", "total.included",
             True),
            (f"Reports of total included studies {_n(b['total.included_reports'])}", "total.included_reports",
             False)])
        for i, x in enumerate(xs):
            canvas.arrow(x + main_w / 2, included_top + h_inc[i], x + main_w / 2, total_top)
        bottom = total_top + h
    stages = [("Identification", top, top + max(h_rec)), ("Screening", overlap_top, excl_top + max(h_exc)),
              ("Included", included_top, bottom)]
    return canvas.draw(bottom + 0.08, stages)
