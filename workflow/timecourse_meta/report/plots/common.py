"""What every figure shares: print sizes and fonts, colours, study styles, text measuring, the bottom legend
and the atomic save.

Figures are drawn at print size (at most `MAX_WIDTH` 7.5 in wide) with text of at least `MIN_FONT` (8) points.
`save_figure(fig, stem)` writes `stem.png` (300 dpi) and `stem.svg`, each atomically (a temporary file in the
same folder, then `os.replace`), with `bbox_inches="tight"` so that nothing is clipped. Artists carry a `gid` so
that tests (and anyone) can find them; each figure module lists its own.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from timecourse_meta.core import atomic  # noqa: E402

MIN_FONT = 8
FONT = 9
DPI = 300
MAX_WIDTH = 7.5  # inches (a full page width)

POOLED_COLOUR = "#1f3b73"
CONTROL_COLOUR = "#7f7f7f"  # comparator arms: hollow grey, beside their study's intervention arm
BAND_CRI = "#4a78b5"
BAND_PI = "#a9c4e6"
STUDY_COLOURS = ["#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#e6ab02", "#666666",
                 "#1f78b4", "#b2182b", "#35978f", "#8c510a"]
STUDY_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "h", "*"]


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


def num(x: Any) -> float:
    """x as a float; NaN when it is not a number."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def get(obj: Any, key: str, default: Any = None) -> Any:
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


def direction_words(direction_of_benefit: str) -> tuple[str, str] | None:
    """(text left of no change, text right of no change) under the axis. A change after treatment in a
    single arm is not a comparison, so the words name the direction of the outcome ('improvement'), never a
    treatment that it would 'favour'."""
    if direction_of_benefit == "decrease":
        return "\u2190 improvement", "worsening \u2192"
    if direction_of_benefit == "increase":
        return "\u2190 worsening", "improvement \u2192"
    return None


def improvement_note(direction_of_benefit: str) -> str:
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


def text_width(fig: Figure, text: str, size: float = FONT, weight: str = "normal") -> float:
    """Rendered width of `text` in inches."""
    renderer = fig.canvas.get_renderer()
    t = fig.text(0, 0, text, fontsize=size, fontweight=weight)
    width = t.get_window_extent(renderer).width / fig.dpi
    t.remove()
    return width


def bottom_legend(fig: Figure, handles: list, ncol: int, height_in: float) -> float:
    """Put a legend under the axes; returns the fraction of the figure height it needs."""
    rows = math.ceil(len(handles) / ncol)
    need = (0.22 * rows + 0.12) / height_in
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=FONT, frameon=False,
               bbox_to_anchor=(0.5, 0.0), handletextpad=0.4, columnspacing=1.2)
    return need
