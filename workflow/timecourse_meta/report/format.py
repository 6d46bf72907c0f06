"""Formatting of every number that reaches a reader (tables, figures, claims, manuscript text), in one tested
place: an included table and an inline number of the text can never disagree in a digit.

Conventions (used by every function here, so the manuscript is consistent):

* Negative numbers carry the Unicode minus sign U+2212 ("−"), never a hyphen-minus; a value that rounds to
  zero is printed without a sign ("0.0", not "−0.0").
* Rounding is half away from zero on the decimal value as written (2.675 -> "2.68", -0.125 -> "−0.13"),
  not on its binary float approximation, so the printed value is what a reader rounding by hand gets.
* Intervals are written "lower to upper" (never "lower-upper", which is ambiguous next to minus signs):
  "−2.1 (95% CrI −3.0 to −1.2)".
* Probabilities that round to 0 or 1 are written "<0.01" / ">0.99" (never "0.00" / "1.00": a posterior
  probability estimated from draws is never exactly 0 or 1).
* Counts of 1,000 or more get a comma thousands separator ("1,234"); use `fmt_count`, not for years.
* NaN, infinity, None and booleans are errors, never a blank or "nan" (except in `fmt_bracketed` and
  `fmt_months`, the figure and table cells whose missing values have words of their own).
* Figures and the claims check write an estimate with its interval in brackets, "−2.10 [−3.24, −0.96]"
  (`fmt_bracketed`), with one precision for the three numbers chosen by their magnitude (`decimals_for`).

`outcome_digits(spec)` is the single rule for how many decimals an outcome is reported with: the outcome
dictionary's `decimals` when it gives one, else `sig_digits(canonical unit)` (the engine's rule for common
clinical units). A unit without a rule and without `decimals` is an error naming the outcome.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

from timecourse_meta.core.errors import EngineError

MINUS = "\u2212"
DASH = "\u2014"

__all__ = [
    "MINUS",
    "DASH",
    "DECIMALS_BY_UNIT",
    "fmt_number",
    "fmt_interval",
    "fmt_estimate",
    "fmt_percent",
    "fmt_count",
    "fmt_count_percent",
    "fmt_probability",
    "pct_change_from_log_ratio",
    "fmt_p_change_from_log_ratio",
    "fmt_p_change_interval_from_log_ratio",
    "sig_digits",
    "outcome_digits",
    "FormatError",
    "fmt_outcome",
    "decimals_for",
    "fmt_bracketed",
    "fmt_bounds",
    "fmt_months",
    "months_text",
]


def _check_real(x, name: str = "value") -> float:
    # (no `numbers.Real` check: this module's own name would shadow the stdlib module if run as a script)
    if x is None or isinstance(x, (bool, str, bytes, complex)):
        raise TypeError(f"{name} must be a real number, got {x!r}")
    try:
        xf = float(x)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {x!r}") from None
    if not math.isfinite(xf):
        raise ValueError(f"{name} must be finite, got {x!r}")
    return xf


def _check_digits(digits) -> int:
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 0:
        raise ValueError(f"digits must be a non-negative integer, got {digits!r}")
    return digits


def _round_decimal(x, digits: int) -> Decimal:
    """Round half away from zero on the shortest decimal representation of x."""
    d = Decimal(repr(float(x))) if not isinstance(x, int) else Decimal(x)
    return d.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


def _signed(text: str) -> str:
    """Replace a leading hyphen-minus by the Unicode minus; drop the sign of a zero."""
    if text.startswith("-"):
        body = text[1:]
        if set(body.replace(".", "").replace(",", "")) <= {"0"}:
            return body
        return MINUS + body
    return text


def fmt_number(x, digits: int = 1) -> str:
    """`x` with exactly `digits` decimals: fmt_number(-2.149, 1) == "−2.1"."""
    xf = _check_real(x)
    digits = _check_digits(digits)
    return _signed(f"{_round_decimal(xf, digits):f}")


def fmt_interval(lower, upper, digits: int = 1, percent: bool = False) -> str:
    """An interval's bounds: fmt_interval(-3.04, -1.2, 1) == "−3.0 to −1.2"; with `percent` (values already in
    percent) each bound carries its sign: "−55% to −18%"."""
    lo, hi = _check_real(lower, "lower"), _check_real(upper, "upper")
    if lo > hi:
        raise ValueError(f"interval lower bound {lower!r} is above upper bound {upper!r}")
    sign = "%" if percent else ""
    return f"{fmt_number(lo, digits)}{sign} to {fmt_number(hi, digits)}{sign}"


def fmt_estimate(estimate, lower, upper, digits: int = 1, level: int = 95, interval: str = "CrI",
                 percent: bool = False) -> str:
    """Estimate with its interval: fmt_estimate(-2.1, -3.0, -1.2) == "−2.1 (95% CrI −3.0 to −1.2)".

    `interval` names the kind ("CrI" credible, "CI" confidence, "PI" prediction interval). `percent`: values
    already in percent, each with its sign: "−64% (95% CI −80% to −38%)".
    """
    est = _check_real(estimate, "estimate")
    lo, hi = _check_real(lower, "lower"), _check_real(upper, "upper")
    if not lo <= est <= hi:
        raise ValueError(f"estimate {estimate!r} is outside its interval [{lower!r}, {upper!r}]")
    if isinstance(level, bool) or not 0 < level < 100:
        raise ValueError(f"level must be a percentage between 0 and 100, got {level!r}")
    sign = "%" if percent else ""
    return f"{fmt_number(est, digits)}{sign} ({level:g}% {interval} {fmt_interval(lo, hi, digits, percent)})"


def fmt_percent(proportion, digits: int = 0) -> str:
    """A proportion (0.123) as a percentage: fmt_percent(0.123, 1) == "12.3%"."""
    p = _check_real(proportion, "proportion")
    return f"{fmt_number(100.0 * p, digits)}%"


def fmt_count(n) -> str:
    """A count: fmt_count(81) == "81", fmt_count(1234) == "1,234". Must be a whole number >= 0."""
    nf = _check_real(n, "count")
    if nf != int(nf) or nf < 0:
        raise ValueError(f"a count must be a non-negative whole number, got {n!r}")
    return f"{int(nf):,}"


def fmt_count_percent(events, total, digits: int = 0) -> str:
    """Events of a total with the percentage: fmt_count_percent(11, 49) == "11/49 (22%)"."""
    e, t = fmt_count(events), fmt_count(total)
    if float(total) == 0:
        raise ValueError("total must be positive")
    if float(events) > float(total):
        raise ValueError(f"events {events!r} exceed total {total!r}")
    return f"{e}/{t} ({fmt_percent(float(events) / float(total), digits)})"


def fmt_probability(p, digits: int = 2) -> str:
    """A probability with `digits` decimals, never printed as 0 or 1.

    fmt_probability(0.873) == "0.87"; fmt_probability(0.996) == ">0.99"; fmt_probability(0.003) == "<0.01".
    """
    pf = _check_real(p, "probability")
    digits = _check_digits(digits)
    if digits == 0:
        raise ValueError("a probability needs at least one decimal")
    if not 0.0 <= pf <= 1.0:
        raise ValueError(f"a probability must be within [0, 1], got {p!r}")
    text = fmt_number(pf, digits)
    step = Decimal(1).scaleb(-digits)
    if Decimal(text) >= 1:
        return ">" + f"{Decimal(1) - step:f}"
    if Decimal(text) <= 0:
        return "<" + f"{step:f}"
    return text


def pct_change_from_log_ratio(log_ratio) -> float:
    """Percent change implied by a log ratio of means: 100 * (exp(x) - 1)."""
    return 100.0 * math.expm1(_check_real(log_ratio, "log ratio"))


def fmt_p_change_from_log_ratio(log_ratio, digits: int = 0) -> str:
    """A log ratio as a signed percent change: fmt_p_change_from_log_ratio(-0.5) == "−39%"."""
    return f"{fmt_number(pct_change_from_log_ratio(log_ratio), digits)}%"


def fmt_p_change_interval_from_log_ratio(estimate, lower, upper, digits: int = 0, level: int = 95,
                                         interval: str = "CrI") -> str:
    """Log-ratio estimate and interval as percent changes: "−39% (95% CrI −55% to −18%)".

    exp is monotone, so the transformed bounds stay ordered.
    """
    est, lo, hi = (pct_change_from_log_ratio(v) for v in (estimate, lower, upper))
    if not lo <= est <= hi:
        raise ValueError(f"estimate {estimate!r} is outside its interval [{lower!r}, {upper!r}]")
    return fmt_estimate(est, lo, hi, digits, level=level, interval=interval, percent=True)


# Decimals by canonical outcome unit (data/review/outcomes.yaml), chosen so the printed
# precision matches the measurement's own: a 24-h excretion in g/24 h to 0.01 g, a clearance to 1 mL/min,
# a serum concentration to 1 µmol/L or 0.1 mg/dL, scores to 0.1 point, titres to whole units,
# log ratios to 0.01, percentages and counts (events, patients, cells) to whole units.
DECIMALS_BY_UNIT: dict[str, int] = {
    "g/24 h": 2,
    "mL/min": 0,
    "mL/min/1.73 m2": 0,
    "umol/L": 0,
    "µmol/L": 0,
    "mg/dL": 1,
    "g/L": 1,
    "score": 1,
    "IU/mL": 0,
    "unit": 1,
    "weeks": 1,
    "months": 1,
    "years": 1,
    "%": 0,
    "events": 0,
    "patients": 0,
    "cells per patient": 0,
    "log ratio": 2,
    "ratio": 2,
    "probability": 2,
}


class FormatError(EngineError, ValueError):
    """No reporting precision for a unit: the outcome dictionary must give one."""


def sig_digits(unit: str) -> int:
    """Decimals to report an outcome in `unit` with (the reporting rule). Unknown unit -> FormatError."""
    try:
        return DECIMALS_BY_UNIT[unit]
    except (KeyError, TypeError):
        known = ", ".join(sorted(DECIMALS_BY_UNIT))
        raise FormatError(f"no reporting rule for unit {unit!r} (known units: {known}); give the outcome a "
                          "'decimals:' entry in the outcome dictionary") from None


def outcome_digits(spec) -> int:
    """Decimals of one outcome in its canonical unit: the dictionary's `decimals` when given, else the unit's
    rule (sig_digits)."""
    decimals = getattr(spec, "decimals", None)
    if decimals is None and isinstance(spec, dict):
        decimals = spec.get("decimals")
    if decimals is not None:
        return int(decimals)
    unit = spec.get("canonical_unit") if isinstance(spec, dict) else spec.canonical_unit
    try:
        return sig_digits(unit)
    except FormatError:
        name = spec.get("name") if isinstance(spec, dict) else getattr(spec, "name", "")
        raise FormatError(f"outcome dictionary, outcome '{name}': no reporting precision for its canonical unit "
                          f"{unit!r}; add 'decimals: <0-4>' to its entry") from None


def fmt_outcome(estimate, unit: str, lower=None, upper=None, level: int = 95, interval: str = "CrI") -> str:
    """An outcome value (with its interval when given) at the unit's reporting precision."""
    digits = sig_digits(unit)
    if lower is None and upper is None:
        return fmt_number(estimate, digits)
    if lower is None or upper is None:
        raise ValueError("give both interval bounds or neither")
    return fmt_estimate(estimate, lower, upper, digits, level=level, interval=interval)


# ----------------------------------------------------------------------------------------------------------------
# Figure and table cells: precision by magnitude, bracketed intervals, visit times
# ----------------------------------------------------------------------------------------------------------------

def _finite_or_nan(x) -> float:
    """x as a float; NaN for a missing or non-numeric cell (the callers below print words for those)."""
    if x is None or isinstance(x, (bool, str, bytes)):
        return math.nan
    try:
        xf = float(x)
    except (TypeError, ValueError):
        return math.nan
    return xf if math.isfinite(xf) else math.nan


def decimals_for(*values) -> int:
    """Decimals for numbers shown together: 0 if the largest magnitude is >= 100, 1 if >= 10, else 2."""
    finite = [abs(v) for v in map(_finite_or_nan, values) if math.isfinite(v)]
    m = max(finite) if finite else 0.0
    return 0 if m >= 100 else 1 if m >= 10 else 2


def fmt_bounds(lower, upper, digits: int | None = None) -> str:
    """An interval in brackets: fmt_bounds(-3.244, -0.96) == "[−3.24, −0.96]" (digits from `decimals_for`)."""
    lo, hi = _finite_or_nan(lower), _finite_or_nan(upper)
    d = decimals_for(lo, hi) if digits is None else digits
    return f"[{fmt_number(lo, d)}, {fmt_number(hi, d)}]"


def fmt_bracketed(estimate, lower, upper, digits: int | None = None) -> str:
    """A figure's or the claims check's estimate with its interval, one precision for the three numbers:
    fmt_bracketed(-2.104, -3.244, -0.96) == "−2.10 [−3.24, −0.96]"; "−2.10 [no interval]" without bounds;
    "" without an estimate."""
    e, lo, hi = (_finite_or_nan(v) for v in (estimate, lower, upper))
    d = decimals_for(e, lo, hi) if digits is None else digits
    if not math.isfinite(e):
        return ""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{fmt_number(e, d)} [no interval]"
    return f"{fmt_number(e, d)} {fmt_bounds(lo, hi, d)}"


def fmt_months(t) -> str:
    """A visit time in months: "6" for whole months (within 1e-6), "0.9" otherwise; "not reported" if missing."""
    v = _finite_or_nan(t)
    if not math.isfinite(v):
        return "not reported"
    return fmt_number(round(v), 0) if abs(v - round(v)) < 1e-6 else fmt_number(v, 1)


def months_text(t) -> str:
    """"1 month", "6 months", "0.9 months"."""
    s = fmt_months(t)
    return f"{s} month" if s == "1" else f"{s} months"
