"""Reading a cell as a number: one rule for the modules that need "a float, or NaN when it is not one"."""

from __future__ import annotations

import math


def to_float(x) -> float:
    """`x` as a float; NaN when it cannot be read as one (None, empty text, words)."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan
