"""Input checks shared by the conversion formulas: arrays in, floats out, and the errors a review author
reads when a reported summary cannot describe a real sample (naming the argument and what was expected)."""

from __future__ import annotations

from typing import Any

import numpy as np

# --------------------------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------------------------


def _arr(x: Any, name: str) -> np.ndarray:
    """Float array of `x`; rejects None, non-numbers and NaN/inf so that errors name the bad argument."""
    if x is None:
        raise ValueError(f"{name} is required (got None)")
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array of numbers (got {x!r})") from None
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite (got {x!r})")
    return a


def _out(a: np.ndarray) -> float | np.ndarray:
    """Return a Python float for 0-d results, so scalar callers get scalars back."""
    a = np.asarray(a)
    return float(a) if a.ndim == 0 else a


def _check_n(n: Any, minimum: int = 1, why: str = "") -> np.ndarray:
    a = _arr(n, "n")
    if np.any(a < minimum):
        raise ValueError(f"n must be >= {minimum}{why} (got {n!r})")
    return a


def _check_positive(x: Any, name: str) -> np.ndarray:
    a = _arr(x, name)
    if np.any(a <= 0):
        raise ValueError(f"{name} must be > 0 (got {x!r})")
    return a


def _check_order(**values: np.ndarray) -> None:
    """Require the given quantiles to be non-decreasing in the order passed (e.g. minimum <= median <= maximum)."""
    names = list(values)
    for lo, hi in zip(names, names[1:]):
        if np.any(values[lo] > values[hi]):
            raise ValueError(
                f"{lo} must be <= {hi} (expected {' <= '.join(names)}; got {lo}={_show(values[lo])}, "
                f"{hi}={_show(values[hi])})"
            )


def _check_spread(lower: np.ndarray, upper: np.ndarray, lower_name: str, upper_name: str) -> None:
    """A zero width (max == min, q3 == q1) would give SD = 0, which no sample of a continuous outcome has."""
    if np.any(upper <= lower):
        raise ValueError(
            f"{upper_name} must be > {lower_name} (a zero spread gives SD = 0; got {lower_name}={_show(lower)}, "
            f"{upper_name}={_show(upper)})"
        )


def _show(a: np.ndarray) -> Any:
    return float(a) if np.ndim(a) == 0 else a.tolist()
