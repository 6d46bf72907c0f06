"""Tests for skewness of a median-based summary (Shi et al. 2023, critical values as coded in metafor and
metamedian): a flag beside a converted mean and SD, so that a sensitivity analysis can leave such rows out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from timecourse_meta.data.sample_checks import _arr, _check_n, _check_order, _check_spread, _out

# --------------------------------------------------------------------------------------------------------------
# Skewness tests (Shi, Luo, Wan, et al. 2023)
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkewnessTest:
    """Result of a five-number-summary skewness test at the 5% level.

    statistic and critical_value are floats (arrays for array input); skewed is True when
    statistic >= critical_value, i.e. normality (symmetry) is rejected and the median-based conversion is
    suspect.
    """

    statistic: Any
    critical_value: Any
    skewed: Any


def _skew_result(t: np.ndarray, crit: np.ndarray) -> SkewnessTest:
    t, crit = (np.array(v) for v in np.broadcast_arrays(t, crit))  # writable copies
    skewed = t >= crit
    return SkewnessTest(_out(t), _out(crit), bool(skewed) if np.ndim(skewed) == 0 else skewed)


# Provenance of the critical values (all three scenarios): the test statistics are those of Shi et al. (2023);
# the 5% critical values are the fitted curves as coded, identically, in two independent reference
# implementations -- metafor R/conv.fivenum.r (comment "Shi et al. (2023)"; the 2020 arXiv-preprint constants
# are kept there as comments) and metamedian R/describe_studies.R (perform_skew_test). The published paper's
# own text could not be consulted to confirm the constants.


def skew_test_median_range(median, minimum, maximum, n):
    """Skewness test for min/median/max (Shi et al. 2023, scenario S1).

    T1 = |(min + max - 2 median) / (max - min)| (0 for a symmetric sample); critical value
    1 / ln(n + 9) + 2.5 / (n + 1). Critical values as coded in metafor `conv.fivenum()` and metamedian
    `describe_studies()` (both citing the 2023 paper); not verified against the paper's text.
    """
    m, a, b = _arr(median, "median"), _arr(minimum, "minimum"), _arr(maximum, "maximum")
    n_a = _check_n(n)
    _check_order(minimum=a, median=m, maximum=b)
    _check_spread(a, b, "minimum", "maximum")
    t = np.abs((a + b - 2 * m) / (b - a))
    crit = 1 / np.log(n_a + 9) + 2.5 / (n_a + 1)
    return _skew_result(t, crit)


def skew_test_median_iqr(median, q1, q3, n):
    """Skewness test for q1/median/q3 (Shi et al. 2023, scenario S2).

    T2 = |(q1 + q3 - 2 median) / (q3 - q1)|; critical value 2.65 / sqrt(n) - 6 / n^2. Critical values as
    coded in metafor `conv.fivenum()` and metamedian `describe_studies()`; not verified against the paper's text.
    """
    m, lo, hi = _arr(median, "median"), _arr(q1, "q1"), _arr(q3, "q3")
    n_a = _check_n(n)
    _check_order(q1=lo, median=m, q3=hi)
    _check_spread(lo, hi, "q1", "q3")
    t = np.abs((lo + hi - 2 * m) / (hi - lo))
    crit = 2.65 / np.sqrt(n_a) - 6 / n_a**2
    return _skew_result(t, crit)


def skew_test_median_iqr_range(median, q1, q3, minimum, maximum, n):
    """Skewness test for the five-number summary (Shi et al. 2023, scenario S3).

    T3 = max(2.65 ln(0.6 n) / sqrt(n) * T1, T2) with T1, T2 as in the two three-number tests; critical value
    3 / sqrt(n) - 40 / n^3. Critical values as coded in metafor `conv.fivenum()` and metamedian
    `describe_studies()`; not verified against the paper's text.
    """
    m, lo, hi = _arr(median, "median"), _arr(q1, "q1"), _arr(q3, "q3")
    a, b = _arr(minimum, "minimum"), _arr(maximum, "maximum")
    n_a = _check_n(n)
    _check_order(minimum=a, q1=lo, median=m, q3=hi, maximum=b)
    _check_spread(lo, hi, "q1", "q3")
    t1 = np.abs((a + b - 2 * m) / (b - a))
    t2 = np.abs((lo + hi - 2 * m) / (hi - lo))
    t = np.maximum(2.65 * np.log(0.6 * n_a) / np.sqrt(n_a) * t1, t2)
    crit = 3 / np.sqrt(n_a) - 40 / n_a**3
    return _skew_result(t, crit)
