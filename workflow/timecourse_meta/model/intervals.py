"""Closed-form intervals of one study's estimates (t for means, Wilson/Newcombe for a risk difference,
Clopper-Pearson for a proportion); every ``level`` is the two-sided coverage (``model.interval_level``)."""
from __future__ import annotations

import math


def t_quantile(level: float, df: float) -> float:
    """Two-sided t critical value (the methods use t-based intervals for small samples)."""
    from scipy import stats
    return float(stats.t.ppf(1 - (1 - level) / 2, df))


def t_interval(est: float, se: float, df: float, level: float = 0.95) -> tuple[float, float]:
    q = t_quantile(level, df)
    return est - q * se, est + q * se


def wilson_interval(events: float, total: float, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (Newcombe 1998, method 3)."""
    from scipy import stats
    z = float(stats.norm.ppf(1 - (1 - level) / 2))
    p = events / total
    centre = p + z * z / (2 * total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    den = 1 + z * z / total
    return (centre - half) / den, (centre + half) / den


def newcombe_interval(e1: float, n1: float, e2: float, n2: float, level: float = 0.95) -> tuple[float, float]:
    """Hybrid score interval of p1 - p2 (Newcombe 1998, Stat Med 17:873, method 10): Wilson limits of each
    proportion combined as D - sqrt((p1-l1)^2 + (u2-p2)^2), D + sqrt((u1-p1)^2 + (p2-l2)^2). Unlike Wald it
    stays inside [-1, 1] and keeps its coverage for 0 or 1 events in 6-12 patients."""
    p1, p2 = e1 / n1, e2 / n2
    l1, u1 = wilson_interval(e1, n1, level)
    l2, u2 = wilson_interval(e2, n2, level)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def clopper_pearson(events: float, total: float, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a proportion, closed form through beta quantiles."""
    from scipy import stats
    a = (1 - level) / 2
    lo = 0.0 if events <= 0 else float(stats.beta.ppf(a, events, total - events + 1))
    hi = 1.0 if events >= total else float(stats.beta.ppf(1 - a, events + 1, total - events))
    return lo, hi
