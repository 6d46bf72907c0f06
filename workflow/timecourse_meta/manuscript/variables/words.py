"""How the variables put numbers and settings into words: shared phrases, config numbers as written, visit times,
estimates with their intervals (every number through `timecourse_meta.report.format`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from timecourse_meta.manuscript.variables.context import VariablesError
from timecourse_meta.report.format import fmt_count, fmt_estimate, fmt_interval, fmt_number, outcome_digits, sig_digits

TIME_COURSE_WORDS = {"random_walk": "random walk", "piecewise_linear": "piecewise-linear", "emax": "Emax"}
STRUCTURE_WORDS = {"cs": "compound symmetric", "ar1": "first-order autoregressive"}
TAU_FAMILY_WORDS = {"half_normal": "half-normal", "half_cauchy": "half-Cauchy",
                    "half_student_t": "half-Student-t", "exponential": "exponential"}

REPORT_RULE_WORDS = {
    "most_complete_per_visit": ("for each outcome and visit, the report of a patient group with the most patients "
                                "at that visit is used and the group's other reports are left out"),
    "one_report_per_group": ("for each outcome, the single report of a patient group with the most complete data "
                             "across all visits is used and the group's other reports are left out"),
}
NO_DATA = "no study in this set reports a change from baseline"
NOT_ANALYSED = "not analysed (no model results)"
SINGLE = "not estimable (single study)"
NONE = "not estimable (no data)"
LEVEL = 95


def finite(x: Any) -> bool:
    try:
        return x is not None and not isinstance(x, bool) and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def fmt_config_number(x: Any) -> str:
    """A config value as written (0.9 -> "0.9", 1000 -> "1,000", 20230301 as an id: use fmt_number(x, 0))."""
    if isinstance(x, bool) or not finite(x):
        raise VariablesError(f"expected a number, got {x!r}")
    v = float(x)
    if v.is_integer():
        return fmt_count(abs(int(v))) if v >= 0 else fmt_number(v, 0)
    for digits in range(1, 7):
        if round(v, digits) == v:
            return fmt_number(v, digits)
    return fmt_number(v, 6)


def join_words(items: Sequence[str], conjunction: str = "and") -> str:
    items = [str(i) for i in items]
    if not items:
        return "none"
    if len(items) == 1:
        return items[0]
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def unit_digits(spec) -> int:
    """Decimals of an outcome's change on its display scale (percent changes: whole percent)."""
    if spec.analysis_scale in ("log", "logit"):
        return sig_digits("%")
    return outcome_digits(spec)


def visit_number(t: float) -> str:
    return fmt_number(t, 0 if abs(t - round(t)) < 1e-6 else 1)


def visit_text(t: float) -> str:
    s = visit_number(t)
    return f"{s} month" if s == "1" else f"{s} months"


def _with_unit(text: str, unit: str) -> str:
    return f"{text}%" if unit == "%" else (f"{text} {unit}" if unit else text)


def fmt_change(est, lo, hi, digits: int, unit: str, interval: str = "CrI") -> str:
    """An estimate with its interval: "−7.8 (95% CrI −10.1 to −5.0)"; percent (`unit` "%"):
    "−39% (95% CrI −55% to −18%)"; without bounds: "−8.0 (no interval)"."""
    if not (finite(lo) and finite(hi)):
        return f"{_with_unit(fmt_number(est, digits), '%' if unit == '%' else '')} (no interval)"
    if unit == "%":
        if not float(lo) <= float(est) <= float(hi):
            raise VariablesError(f"estimate {est!r} outside its interval [{lo!r}, {hi!r}]")
        return (f"{fmt_number(est, digits)}% ({LEVEL}% {interval} {fmt_number(lo, digits)}% to "
                f"{fmt_number(hi, digits)}%)")
    return fmt_estimate(est, lo, hi, digits, level=LEVEL, interval=interval)


def fmt_range(lo, hi, digits: int, unit: str) -> str:
    if unit == "%":
        return f"{fmt_number(lo, digits)}% to {fmt_number(hi, digits)}%"
    return fmt_interval(lo, hi, digits)


def with_unit_head(change: str, unit: str) -> str:
    """"−7.8 (95% CrI ...)" with the unit after the estimate ("−7.8 points (95% CrI ...)"); percent as is."""
    return change if unit == "%" else change.replace(" (", f" {unit} (", 1)
