"""Convert reported summary statistics of a continuous outcome to a mean and an SD.

Meta-analysis of a continuous outcome needs, per arm, a mean, an SD and n. Small trials often report
something else (SE, 95% CI, median with IQR and/or range, change scores), so every
number entering the model passes through one of the functions below. They are pure (no I/O), accept scalars
or NumPy arrays (they broadcast; a scalar in gives a ``float`` out), and raise ``ValueError`` naming the
argument and what was expected when an input cannot describe a real sample.

Sources (formulas checked against the cited papers' reference implementations, see each function):

* Cochrane Handbook v6.x, sections 6.5.2.2 (SD from SE / CI) and 6.5.2.8 (change-from-baseline SDs).
* Luo D, Wan X, Liu J, Tong T (2018). Stat Methods Med Res 27(6):1785-1805 -- means from medians.
* Wan X, Wang W, Liu J, Tong T (2014). BMC Med Res Methodol 14:135 -- SDs from range and/or IQR.
* Shi J, Luo D, Weng H, et al. (2020). Res Synth Methods 11(5):641-654 -- SD from the five-number summary.
* Shi J, Luo D, Wan X, et al. (2023). Stat Methods Med Res 32(7):1338-1360 -- skewness tests (critical
  values as coded in metafor and metamedian; the paper's own text was not available to confirm them).
* Friedrich JO, Adhikari NKJ, Beyene J (2008). BMC Med Res Methodol 8:32 -- ratio of means (log scale).

The median-based formulas assume approximately normal data. The skewness tests flag summaries that look
skewed; the dispatcher `to_mean_sd` reports the flag (it does not drop the study), so the analysis can run
the planned sensitivity analysis without those rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from timecourse_meta.core.errors import EngineError
from timecourse_meta.data.sample_checks import (_arr, _check_n, _check_order, _check_positive,  # noqa: F401
                                                _check_spread, _out, _show)
from timecourse_meta.data.skewness import (SkewnessTest, skew_test_median_iqr,  # noqa: F401
                                           skew_test_median_iqr_range, skew_test_median_range)

__all__ = [
    "MeanSD",
    "NotPoolableError",
    "SkewnessTest",
    "change_sd",
    "correlation_from_sds",
    "eta_iqr",
    "log_mean_and_se",
    "mean_from_median_iqr",
    "mean_from_median_iqr_range",
    "mean_from_median_range",
    "sd_from_ci",
    "sd_from_iqr_range_shi",
    "sd_from_iqr_range_wan",
    "sd_from_iqr_wan",
    "sd_from_range_wan",
    "sd_from_se",
    "se_from_ci",
    "skew_test_median_iqr",
    "skew_test_median_iqr_range",
    "skew_test_median_range",
    "t_critical",
    "to_mean_sd",
    "xi_range",
]


# --------------------------------------------------------------------------------------------------------------
# SD from SE and from a confidence interval (Cochrane Handbook 6.5.2.2)
# --------------------------------------------------------------------------------------------------------------


def sd_from_se(se, n):
    """SD = SE * sqrt(n): the SE of a group mean is SD / sqrt(n) (Cochrane Handbook 6.5.2.2)."""
    se_a = _check_positive(se, "se")
    n_a = _check_n(n)
    return _out(se_a * np.sqrt(n_a))


def t_critical(n, level=0.95):
    """Two-sided t quantile t_{1-(1-level)/2, n-1} used to turn a CI for a mean into an SE.

    Why t and not 1.96: a CI for a mean is mean +/- t_{n-1} * SE. The Handbook uses t for small groups (< 60)
    and 3.92 = 2 * 1.96 for large ones; using t always is right for small n and converges to the normal value
    for large n (n = 10**6 gives 1.95996...), so no arbitrary cut-off is needed.
    """
    n_a = _check_n(n, 2, " (a t-based CI needs n - 1 >= 1 degrees of freedom)")
    level_a = _arr(level, "level")
    if np.any((level_a <= 0) | (level_a >= 1)):
        raise ValueError(f"level must be strictly between 0 and 1, e.g. 0.95 (got {level!r})")
    return _out(stats.t.ppf(1 - (1 - level_a) / 2, n_a - 1))


def se_from_ci(lower, upper, n, level=0.95):
    """SE of a mean from its CI: (upper - lower) / (2 t_{1-(1-level)/2, n-1}) (Cochrane Handbook 6.5.2.2).

    Assumes the CI is symmetric (mean +/- t * SE), i.e. it was computed for the mean on the reported scale.
    """
    lo = _arr(lower, "lower")
    hi = _arr(upper, "upper")
    if np.any(hi <= lo):
        raise ValueError(f"upper must be > lower (got lower={lower!r}, upper={upper!r})")
    t = np.asarray(t_critical(n, level))
    return _out((hi - lo) / (2 * t))


def sd_from_ci(lower, upper, n, level=0.95):
    """SD from a CI for a group mean: sqrt(n) * (upper - lower) / (2 t_{1-(1-level)/2, n-1}).

    Cochrane Handbook 6.5.2.2: the 95% CI of a mean is 2 * 1.96 = 3.92 SEs wide for large n, and for small n
    (< 60) the divisor is 2 * t_{n-1} (n = 25 gives t = 2.0639, divisor 4.128). The t quantile is used for every
    n (see `t_critical`); for large n it equals the Handbook's 3.92 / 3.29 / 5.15 for 95 / 90 / 99 % CIs.
    """
    se = np.asarray(se_from_ci(lower, upper, n, level))
    return _out(se * np.sqrt(_arr(n, "n")))


# --------------------------------------------------------------------------------------------------------------
# Means from medians (Luo et al. 2018)
# --------------------------------------------------------------------------------------------------------------


def mean_from_median_range(median, minimum, maximum, n):
    """Mean from median, min, max and n: w (min + max)/2 + (1 - w) median, w = 4 / (4 + n^0.75).

    Luo et al. (2018), scenario S1 (eq. 7 in metafor's numbering): the optimal weight on the mid-range shrinks
    with n because extremes become noisier estimators of the centre as n grows. Same formula as metafor
    `conv.fivenum()` and meta `mean.sd.range()`.
    """
    m, a, b = _arr(median, "median"), _arr(minimum, "minimum"), _arr(maximum, "maximum")
    n_a = _check_n(n)
    _check_order(minimum=a, median=m, maximum=b)
    w = 4.0 / (4.0 + n_a**0.75)
    return _out(w * (a + b) / 2 + (1 - w) * m)


def mean_from_median_iqr(median, q1, q3, n):
    """Mean from median, quartiles and n: w (q1 + q3)/2 + (1 - w) median, w = 0.7 + 0.39 / n.

    Luo et al. (2018), scenario S2 (eq. 11): quartiles stay informative for large n, so the weight on the
    mid-quartile tends to 0.7. Same formula as metafor `conv.fivenum()` and meta `mean.sd.iqr()`.
    """
    m, lo, hi = _arr(median, "median"), _arr(q1, "q1"), _arr(q3, "q3")
    n_a = _check_n(n)
    _check_order(q1=lo, median=m, q3=hi)
    w = 0.7 + 0.39 / n_a
    return _out(w * (lo + hi) / 2 + (1 - w) * m)


def mean_from_median_iqr_range(median, q1, q3, minimum, maximum, n):
    """Mean from the five-number summary: w1 (min+max)/2 + w2 (q1+q3)/2 + (1 - w1 - w2) median.

    Luo et al. (2018), scenario S3 (eq. 15): w1 = 2.2 / (2.2 + n^0.75), w2 = 0.7 - 0.72 / n^0.55. Same formula
    as metafor `conv.fivenum()` and meta `mean.sd.iqr.range()`.
    """
    m, lo, hi = _arr(median, "median"), _arr(q1, "q1"), _arr(q3, "q3")
    a, b = _arr(minimum, "minimum"), _arr(maximum, "maximum")
    n_a = _check_n(n)
    _check_order(minimum=a, q1=lo, median=m, q3=hi, maximum=b)
    w1 = 2.2 / (2.2 + n_a**0.75)
    w2 = 0.7 - 0.72 / n_a**0.55
    return _out(w1 * (a + b) / 2 + w2 * (lo + hi) / 2 + (1 - w1 - w2) * m)


# --------------------------------------------------------------------------------------------------------------
# SDs from range / IQR (Wan et al. 2014; Shi et al. 2020)
# --------------------------------------------------------------------------------------------------------------

_N_SPREAD_WHY = " (the expected range/IQR of a single observation is 0, so the SD divisor would be 0)"


def xi_range(n):
    """xi(n) = 2 Phi^{-1}((n - 0.375) / (n + 0.25)): expected range of n standard-normal draws (Wan 2014 eq. 9).

    Blom-type approximation of 2 E[Z_(n)]; it is within 0.6% of Wan's exact Table 1 for 10 <= n <= 50.
    """
    n_a = _check_n(n, 2, _N_SPREAD_WHY)
    return _out(2 * stats.norm.ppf((n_a - 0.375) / (n_a + 0.25)))


def eta_iqr(n):
    """eta(n) = 2 Phi^{-1}((0.75 n - 0.125) / (n + 0.25)): expected IQR of n standard normals (Wan 2014 eq. 16)."""
    n_a = _check_n(n, 2, _N_SPREAD_WHY)
    return _out(2 * stats.norm.ppf((0.75 * n_a - 0.125) / (n_a + 0.25)))


def sd_from_range_wan(minimum, maximum, n):
    """SD = (max - min) / xi(n) (Wan et al. 2014, eq. 9): the range of a normal sample grows with n.

    This is the method metafor `conv.fivenum()` uses by default for min/median/max.
    """
    a, b = _arr(minimum, "minimum"), _arr(maximum, "maximum")
    _check_spread(a, b, "minimum", "maximum")
    return _out((b - a) / np.asarray(xi_range(n)))


def sd_from_iqr_wan(q1, q3, n):
    """SD = (q3 - q1) / eta(n) (Wan et al. 2014, eq. 16); eta(n) -> 1.349 as n grows (IQR = 1.35 SD)."""
    lo, hi = _arr(q1, "q1"), _arr(q3, "q3")
    _check_spread(lo, hi, "q1", "q3")
    return _out((hi - lo) / np.asarray(eta_iqr(n)))


def sd_from_iqr_range_wan(q1, q3, minimum, maximum, n):
    """SD = [(max - min)/xi(n) + (q3 - q1)/eta(n)] / 2 (Wan et al. 2014, eq. 13).

    Kept for comparison only: Shi et al. (2020) showed equal weights are sub-optimal; `to_mean_sd` uses
    `sd_from_iqr_range_shi` for the five-number summary.
    """
    lo, hi = _arr(q1, "q1"), _arr(q3, "q3")
    a, b = _arr(minimum, "minimum"), _arr(maximum, "maximum")
    _check_order(minimum=a, q1=lo, q3=hi, maximum=b)
    _check_spread(lo, hi, "q1", "q3")
    return _out(0.5 * ((b - a) / np.asarray(xi_range(n)) + (hi - lo) / np.asarray(eta_iqr(n))))


def sd_from_iqr_range_shi(q1, q3, minimum, maximum, n):
    """SD from the five-number summary, Shi et al. (2020) eq. 11 (shortcut form):

        SD = (max - min) / theta1(n) + (q3 - q1) / theta2(n),
        theta1(n) = (2 + 0.14 n^0.6) Phi^{-1}((n - 0.375) / (n + 0.25)),
        theta2(n) = (2 + 2 / (0.07 n^0.6)) Phi^{-1}((0.75 n - 0.125) / (n + 0.25)).

    Equivalent to w (max-min)/xi(n) + (1-w) (q3-q1)/eta(n) with w = 1 / (1 + 0.07 n^0.6) (eq. 10, as coded in
    metafor `conv.fivenum()`); the weight moves from the range to the IQR as n grows because extremes get
    noisier. Matches meta `mean.sd.iqr.range(method.sd = "Shi")`.
    """
    lo, hi = _arr(q1, "q1"), _arr(q3, "q3")
    a, b = _arr(minimum, "minimum"), _arr(maximum, "maximum")
    _check_order(minimum=a, q1=lo, q3=hi, maximum=b)
    _check_spread(lo, hi, "q1", "q3")
    n_a = _check_n(n, 2, _N_SPREAD_WHY)
    theta1 = (2 + 0.14 * n_a**0.6) * stats.norm.ppf((n_a - 0.375) / (n_a + 0.25))
    theta2 = (2 + 2 / (0.07 * n_a**0.6)) * stats.norm.ppf((0.75 * n_a - 0.125) / (n_a + 0.25))
    return _out((b - a) / theta1 + (hi - lo) / theta2)


# --------------------------------------------------------------------------------------------------------------
# Dispatcher
# --------------------------------------------------------------------------------------------------------------


class NotPoolableError(EngineError, ValueError):
    """The reported statistic cannot give both a mean and an SD (e.g. a median or a mean without any spread)."""


@dataclass(frozen=True)
class MeanSD:
    """A mean and SD ready for pooling, how they were obtained, and the skewness flag (None if not applicable)."""

    mean: float
    sd: float
    method: str
    skewed: bool | None


STATISTICS = ("mean_sd", "mean_se", "mean_ci", "median_iqr", "median_range", "median_iqr_range")
NOT_POOLABLE = {
    "median_only": "a median without IQR or range gives no SD (and no defensible mean)",
    "mean_only": "a mean without SD, SE or CI gives no SD",
}


def _need(statistic: str, **kwargs: Any) -> None:
    for name, value in kwargs.items():
        if value is None:
            raise ValueError(f"statistic={statistic!r} requires {name} (got None)")


def _scalar(x: Any, name: str) -> float:
    a = _arr(x, name)
    if a.ndim != 0:
        raise ValueError(f"{name} must be a single number in to_mean_sd (got an array of shape {a.shape})")
    return float(a)


def to_mean_sd(
    statistic: str,
    n,
    mean=None,
    sd=None,
    se=None,
    ci_lower=None,
    ci_upper=None,
    ci_level=0.95,
    median=None,
    q1=None,
    q3=None,
    minimum=None,
    maximum=None,
) -> MeanSD:
    """Mean and SD of one arm from whatever was reported; `method` records the conversion for the audit trail.

    (Longer than most functions on purpose: one short branch per statistic of the table below, kept together so
    the dispatch reads as the table does.)

    statistic      needs                         method
    mean_sd        mean, sd                      reported
    mean_se        mean, se                      sd_from_se
    mean_ci        mean, ci_lower, ci_upper      sd_from_ci_t            (t quantile, n - 1 df; ci_level)
    median_iqr     median, q1, q3                luo2018_mean+wan2014_sd (Wan eq. 16)
    median_range   median, minimum, maximum      luo2018_mean+wan2014_sd (Wan eq. 9)
    median_iqr_range  all five numbers           luo2018_mean+shi2020_sd (Shi eq. 11)

    SD method choice: Wan (2014) is the only n-aware estimator for a range or an IQR alone; for all five
    numbers Shi (2020) supersedes Wan's equal-weight average (same choice as metafor's default
    "luo/wan/shi"). `skewed` is the Shi et al. (2023) test result for the median-based rows and None
    otherwise; skewed rows are flagged, not dropped, so the analysis decides (sensitivity analysis).
    'median_only' and 'mean_only' raise NotPoolableError. Arguments not needed by `statistic` are ignored.
    Median-based rows need n >= 2 (the formulas divide by the expected spread of n normals); metafor
    additionally skips n < 5, where these approximations are least accurate -- record that in `assumption`.
    """
    if statistic in NOT_POOLABLE:
        raise NotPoolableError(f"statistic={statistic!r} is not poolable: {NOT_POOLABLE[statistic]}")
    if statistic not in STATISTICS:
        raise ValueError(
            f"statistic must be one of {', '.join(STATISTICS)} (or median_only/mean_only, which are not "
            f"poolable); got {statistic!r}"
        )
    n_val = _scalar(n, "n")
    if n_val < 1:
        raise ValueError(f"n must be >= 1 (got {n!r})")

    if statistic == "mean_sd":
        _need(statistic, mean=mean, sd=sd)
        sd_val = _scalar(sd, "sd")
        if sd_val <= 0:
            raise ValueError(f"sd must be > 0 (got {sd!r})")
        return MeanSD(_scalar(mean, "mean"), sd_val, "reported", None)

    if statistic == "mean_se":
        _need(statistic, mean=mean, se=se)
        return MeanSD(_scalar(mean, "mean"), float(sd_from_se(_scalar(se, "se"), n_val)), "sd_from_se", None)

    if statistic == "mean_ci":
        _need(statistic, mean=mean, ci_lower=ci_lower, ci_upper=ci_upper)
        m, lo, hi = _scalar(mean, "mean"), _scalar(ci_lower, "ci_lower"), _scalar(ci_upper, "ci_upper")
        if not lo <= m <= hi:
            raise ValueError(f"mean must lie within [ci_lower, ci_upper] (got mean={m}, CI=({lo}, {hi}))")
        return MeanSD(m, float(sd_from_ci(lo, hi, n_val, ci_level)), "sd_from_ci_t", None)

    if statistic == "median_iqr":
        _need(statistic, median=median, q1=q1, q3=q3)
        med, lo, hi = _scalar(median, "median"), _scalar(q1, "q1"), _scalar(q3, "q3")
        return MeanSD(
            float(mean_from_median_iqr(med, lo, hi, n_val)),
            float(sd_from_iqr_wan(lo, hi, n_val)),
            "luo2018_mean+wan2014_sd",
            skew_test_median_iqr(med, lo, hi, n_val).skewed,
        )

    if statistic == "median_range":
        _need(statistic, median=median, minimum=minimum, maximum=maximum)
        med, a, b = _scalar(median, "median"), _scalar(minimum, "minimum"), _scalar(maximum, "maximum")
        return MeanSD(
            float(mean_from_median_range(med, a, b, n_val)),
            float(sd_from_range_wan(a, b, n_val)),
            "luo2018_mean+wan2014_sd",
            skew_test_median_range(med, a, b, n_val).skewed,
        )

    # median_iqr_range
    _need(statistic, median=median, q1=q1, q3=q3, minimum=minimum, maximum=maximum)
    med, lo, hi = _scalar(median, "median"), _scalar(q1, "q1"), _scalar(q3, "q3")
    a, b = _scalar(minimum, "minimum"), _scalar(maximum, "maximum")
    return MeanSD(
        float(mean_from_median_iqr_range(med, lo, hi, a, b, n_val)),
        float(sd_from_iqr_range_shi(lo, hi, a, b, n_val)),
        "luo2018_mean+shi2020_sd",
        skew_test_median_iqr_range(med, lo, hi, a, b, n_val).skewed,
    )


# --------------------------------------------------------------------------------------------------------------
# Change from baseline (Cochrane Handbook 6.5.2.8) and ratio of means (Friedrich et al. 2008)
# --------------------------------------------------------------------------------------------------------------


def _check_r(r: Any) -> np.ndarray:
    a = _arr(r, "r")
    if np.any((a < -1) | (a > 1)):
        raise ValueError(f"r must be a correlation in [-1, 1] (got {r!r})")
    return a


def standard_error(*, sd=None, n=None, se=None, variance=None) -> float | None:
    """Standard error of a mean: the reported SE, else sqrt(variance) of the estimate, else sd / sqrt(n); None
    when none of these is known (an estimate without any spread cannot be weighted)."""
    if se is not None:
        return float(_check_positive(se, "se"))
    if variance is not None:
        return float(np.sqrt(_check_positive(variance, "variance")))
    if sd is not None and n is not None:
        return float(_check_positive(sd, "sd") / np.sqrt(_check_positive(n, "n")))
    return None


def change_sd(sd_baseline, sd_followup, r):
    """SD of the change score: sqrt(sd0^2 + sd1^2 - 2 r sd0 sd1) (Cochrane Handbook 6.5.2.8).

    Var(X1 - X0) = Var(X0) + Var(X1) - 2 Cov(X0, X1); r is the baseline/follow-up correlation, usually
    imputed (and varied in a sensitivity analysis) because trials rarely report it.
    """
    s0 = _check_positive(sd_baseline, "sd_baseline")
    s1 = _check_positive(sd_followup, "sd_followup")
    r_a = _check_r(r)
    var = s0**2 + s1**2 - 2 * r_a * s0 * s1
    return _out(np.sqrt(np.maximum(var, 0.0)))  # clip -1e-16 rounding when r = 1 and sd0 == sd1


def correlation_from_sds(sd_baseline, sd_followup, sd_change):
    """Implied correlation r = (sd0^2 + sd1^2 - sdc^2) / (2 sd0 sd1) (Cochrane Handbook 6.5.2.8).

    Used on a trial that reports all three SDs to obtain an r to impute for trials that do not. Raises if the
    three SDs are inconsistent (need |sd0 - sd1| <= sd_change <= sd0 + sd1, i.e. r in [-1, 1]).
    """
    s0 = _check_positive(sd_baseline, "sd_baseline")
    s1 = _check_positive(sd_followup, "sd_followup")
    sc = _check_positive(sd_change, "sd_change")
    r = (s0**2 + s1**2 - sc**2) / (2 * s0 * s1)
    if np.any(np.abs(r) > 1 + 1e-12):
        raise ValueError(
            "sd_change is inconsistent with sd_baseline and sd_followup: expected "
            "|sd_baseline - sd_followup| <= sd_change <= sd_baseline + sd_followup so that r is in [-1, 1] "
            f"(got r = {_show(r)})"
        )
    return _out(np.clip(r, -1.0, 1.0))


def log_mean_and_se(mean, sd, n):
    """(log(mean), SE of log(mean)) with SE = sd / (mean sqrt(n)) by the delta method.

    For ratio-of-means outcomes (Friedrich, Adhikari & Beyene 2008): log(RoM) = log(mean1) - log(mean2) with
    variance SE1^2 + SE2^2 (the sampling variance of metafor escalc measure "ROM", vtype "LS"). The mean must be > 0
    because only ratio-scale (positive) outcomes have a meaningful ratio of means.
    """
    m = _check_positive(mean, "mean")
    s = _check_positive(sd, "sd")
    n_a = _check_n(n)
    return _out(np.log(m)), _out(s / (m * np.sqrt(n_a)))
