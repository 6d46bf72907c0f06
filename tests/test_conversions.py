"""Tests for timecourse_meta.data.conversions against numbers published by independent sources.

Expected values are copied from documents, never recomputed here with the formula under test:

[METAFOR]  metafor `conv.fivenum()` help page, rendered examples (pkgdown site, file
           docs/reference/conv.fivenum.html in github.com/wviechtb/metafor, same as
           https://wviechtb.github.io/metafor/reference/conv.fivenum.html), default method "luo/wan/shi".
[CURTIS]   metadat `dat.curtis1998` help page, rendered example of metafor
           escalc(measure="ROM") (docs/reference/dat.curtis1998.html in github.com/wviechtb/metadat).
[WAN-T1]   Wan et al. (2014) BMC Med Res Methodol 14:135, Table 1 (values of xi(n), n <= 50),
           https://bmcmedresmethodol.biomedcentral.com/articles/10.1186/1471-2288-14-135/tables/1
[WAN-CV]   Cross Validated answer "How to calculate mean and standard deviation from median and quartiles"
           (R output of Wan's IQR formula: q1 = 0.02, q3 = 0.04, n = 100 -> 0.0150441).
[HANDBOOK] Cochrane Handbook 6.5.2.2 (7.7.3.2 in v5.1): t for a 95% CI with n = 25 is 2.0639, divisor
           2 x 2.0639 = 4.128; large-sample divisors 3.92 (95%), 3.29 (90%), 5.15 (99%).
[CHANGE]   uniqcret.com "Calculating Mean and SD of Change from Baseline Using Correlation" worked example:
           baseline SD 10, follow-up SD 12, r = 0.6 -> SD of change 10.
"""

from __future__ import annotations

import numpy as np
import pytest

from timecourse_meta.data import conversions as cv

# --------------------------------------------------------------------------------------------------------------
# Five-number-summary conversions against metafor's documented output [METAFOR]
# Example data: n = 20 in every row; printed with 7 significant digits, so abs tolerance 1e-6.
# --------------------------------------------------------------------------------------------------------------

# case 1: min = 2, median = 6, max = 14        -> mean 6.594468, sd 3.211576
# case 2: q1 = 4, median = 6, q3 = 10           -> mean 6.719500, sd 4.787076
# case 3: 2, 4, 6, 10, 14                       -> mean 6.938841, sd 3.679435


def test_median_range_matches_metafor():
    assert cv.mean_from_median_range(6, 2, 14, 20) == pytest.approx(6.594468, abs=1e-6)
    assert cv.sd_from_range_wan(2, 14, 20) == pytest.approx(3.211576, abs=1e-6)


def test_median_iqr_matches_metafor():
    assert cv.mean_from_median_iqr(6, 4, 10, 20) == pytest.approx(6.719500, abs=1e-6)
    assert cv.sd_from_iqr_wan(4, 10, 20) == pytest.approx(4.787076, abs=1e-6)


def test_five_number_summary_matches_metafor():
    assert cv.mean_from_median_iqr_range(6, 4, 10, 2, 14, 20) == pytest.approx(6.938841, abs=1e-6)
    assert cv.sd_from_iqr_range_shi(4, 10, 2, 14, 20) == pytest.approx(3.679435, abs=1e-6)


@pytest.mark.parametrize(
    ("statistic", "kwargs", "mean", "sd", "method"),
    [
        ("median_range", dict(median=6, minimum=2, maximum=14), 6.594468, 3.211576, "luo2018_mean+wan2014_sd"),
        ("median_iqr", dict(median=6, q1=4, q3=10), 6.719500, 4.787076, "luo2018_mean+wan2014_sd"),
        (
            "median_iqr_range",
            dict(median=6, q1=4, q3=10, minimum=2, maximum=14),
            6.938841,
            3.679435,
            "luo2018_mean+shi2020_sd",
        ),
    ],
)
def test_dispatcher_median_scenarios_match_metafor(statistic, kwargs, mean, sd, method):
    res = cv.to_mean_sd(statistic, 20, **kwargs)
    assert res.mean == pytest.approx(mean, abs=1e-6)
    assert res.sd == pytest.approx(sd, abs=1e-6)
    assert res.method == method
    assert res.skewed is False  # metafor: "none of the tests are significant"


def test_vectorised_input_matches_scalar_metafor_values():
    means = cv.mean_from_median_range(np.array([6.0, 6.0]), np.array([2.0, 2.0]), np.array([14.0, 14.0]), 20)
    assert isinstance(means, np.ndarray)
    np.testing.assert_allclose(means, [6.594468, 6.594468], atol=1e-6)
    sds = cv.sd_from_iqr_wan([4, 4], [10, 10], [20, 20])
    np.testing.assert_allclose(sds, [4.787076, 4.787076], atol=1e-6)


# --------------------------------------------------------------------------------------------------------------
# Skewness tests (Shi et al. 2023) against metafor's documented tval / crit (printed to 3 decimals) [METAFOR]
# --------------------------------------------------------------------------------------------------------------


def test_skew_test_symmetric_examples_match_metafor():
    s1 = cv.skew_test_median_range(6, 2, 14, 20)
    assert (s1.statistic, s1.critical_value) == (pytest.approx(0.333, abs=5e-4), pytest.approx(0.416, abs=5e-4))
    assert s1.skewed is False
    s2 = cv.skew_test_median_iqr(6, 4, 10, 20)
    assert (s2.statistic, s2.critical_value) == (pytest.approx(0.333, abs=5e-4), pytest.approx(0.578, abs=5e-4))
    assert s2.skewed is False
    s3 = cv.skew_test_median_iqr_range(6, 4, 10, 2, 14, 20)
    assert (s3.statistic, s3.critical_value) == (pytest.approx(0.491, abs=5e-4), pytest.approx(0.666, abs=5e-4))
    assert s3.skewed is False


def test_skew_test_flags_right_skewed_five_numbers_like_metafor():
    # metafor example 3, study 3: min 2, q1 4, median 6, q3 14, max 20, n 20 -> tval 0.818, crit 0.666, sig TRUE
    s = cv.skew_test_median_iqr_range(6, 4, 14, 2, 20, 20)
    assert s.statistic == pytest.approx(0.818, abs=5e-4)
    assert s.critical_value == pytest.approx(0.666, abs=5e-4)
    assert s.skewed is True
    res = cv.to_mean_sd("median_iqr_range", 20, median=6, q1=4, q3=14, minimum=2, maximum=20)
    assert res.skewed is True  # flagged, still converted (the analysis decides)


def test_skew_tests_flag_strong_skew_and_not_exact_symmetry():
    # Exactly symmetric summaries give statistic 0 for every n.
    for n in (10, 30, 100):
        assert cv.skew_test_median_range(5, 0, 10, n).statistic == 0
        assert cv.skew_test_median_range(5, 0, 10, n).skewed is False
        assert cv.skew_test_median_iqr(5, 3, 7, n).skewed is False
        assert cv.skew_test_median_iqr_range(5, 3, 7, 0, 10, n).skewed is False
    # Median at the minimum / first quartile: maximal asymmetry (statistic 1) is flagged.
    assert cv.skew_test_median_range(0, 0, 10, 30).skewed is True
    assert cv.skew_test_median_iqr(3, 3, 7, 30).skewed is True
    assert cv.skew_test_median_iqr_range(3, 3, 7, 3, 40, 30).skewed is True


def test_skew_tests_on_simulated_samples():
    # Five-number summaries of a large log-normal sample are flagged; of a normal sample they are not.
    rng = np.random.default_rng(20240611)
    for sample, expected in ((rng.lognormal(0.0, 1.0, 400), True), (rng.normal(0.0, 1.0, 400), False)):
        a, q1, m, q3, b = np.quantile(sample, [0, 0.25, 0.5, 0.75, 1])
        assert cv.skew_test_median_range(m, a, b, 400).skewed is expected
        assert cv.skew_test_median_iqr(m, q1, q3, 400).skewed is expected
        assert cv.skew_test_median_iqr_range(m, q1, q3, a, b, 400).skewed is expected


def test_skew_test_vectorised():
    res = cv.skew_test_median_range([6, 6], [2, 2], [14, 30], 20)
    assert res.skewed.tolist() == [False, True]


# --------------------------------------------------------------------------------------------------------------
# Wan's xi(n) approximation against Wan's Table 1 [WAN-T1]; Wan's IQR formula [WAN-CV]
# --------------------------------------------------------------------------------------------------------------

WAN_TABLE1 = {10: 3.078, 15: 3.472, 20: 3.735, 25: 3.931, 30: 4.086, 40: 4.322, 50: 4.498}


@pytest.mark.parametrize(("n", "xi"), sorted(WAN_TABLE1.items()))
def test_xi_approximation_tracks_wan_table1(n, xi):
    # Table 1 holds exact 2 E[Z_(n)]; eq. (9) is a Blom-type approximation, close for 10 <= n <= 50.
    assert cv.xi_range(n) == pytest.approx(xi, rel=6e-3)
    assert cv.sd_from_range_wan(0, xi, n) == pytest.approx(1.0, rel=6e-3)


def test_sd_from_iqr_wan_matches_cross_validated_example():
    assert cv.sd_from_iqr_wan(0.02, 0.04, 100) == pytest.approx(0.0150441, abs=5e-8)


def test_eta_tends_to_normal_iqr():
    # IQR of N(0,1) is 2 * 0.6744898 = 1.34898 (standard normal quantile tables).
    assert cv.eta_iqr(10**7) == pytest.approx(1.3489795, abs=1e-5)


def test_wan_five_number_sd_is_average_of_range_and_iqr_estimates():
    # Wan eq. 13 averages the range- and IQR-based estimates; with the metafor example both parts are
    # documented: (3.211576 + 4.787076) / 2.
    assert cv.sd_from_iqr_range_wan(4, 10, 2, 14, 20) == pytest.approx((3.211576 + 4.787076) / 2, abs=1e-6)


# --------------------------------------------------------------------------------------------------------------
# Large normal samples: Luo / Wan / Shi recover the sample mean and SD (seeded simulation)
# --------------------------------------------------------------------------------------------------------------


def _five_numbers(x):
    return np.quantile(x, [0, 0.25, 0.5, 0.75, 1], axis=1)


@pytest.mark.parametrize("n", [51, 201])
def test_median_based_estimates_recover_normal_mean_and_sd(n):
    rng = np.random.default_rng(12345 + n)
    x = rng.normal(50.0, 8.0, size=(400, n))
    a, q1, m, q3, b = _five_numbers(x)
    true_mean, true_sd = x.mean(axis=1), x.std(axis=1, ddof=1)
    estimates = {
        "range": (cv.mean_from_median_range(m, a, b, n), cv.sd_from_range_wan(a, b, n)),
        "iqr": (cv.mean_from_median_iqr(m, q1, q3, n), cv.sd_from_iqr_wan(q1, q3, n)),
        "five": (cv.mean_from_median_iqr_range(m, q1, q3, a, b, n), cv.sd_from_iqr_range_shi(q1, q3, a, b, n)),
    }
    for name, (mean_hat, sd_hat) in estimates.items():
        # nearly unbiased on average (Luo 2018; Wan 2014; Shi 2020 report near-zero bias for normal data)
        assert np.mean(mean_hat - true_mean) == pytest.approx(0.0, abs=0.05), name
        assert np.mean(sd_hat / true_sd) == pytest.approx(1.0, abs=0.03), name
        # and each single estimate is close
        assert np.median(np.abs(mean_hat - true_mean)) < 0.1 * 8.0, name
        assert np.median(np.abs(sd_hat / true_sd - 1)) < 0.1, name


def test_shi_beats_wan_average_for_five_numbers():
    # Shi et al. (2020) motivate their weights by a smaller error than Wan's equal weights (normal data).
    rng = np.random.default_rng(7)
    n = 101
    x = rng.normal(0.0, 1.0, size=(1000, n))
    a, q1, _, q3, b = _five_numbers(x)
    s = x.std(axis=1, ddof=1)
    rmse_shi = np.sqrt(np.mean((cv.sd_from_iqr_range_shi(q1, q3, a, b, n) - s) ** 2))
    rmse_wan = np.sqrt(np.mean((cv.sd_from_iqr_range_wan(q1, q3, a, b, n) - s) ** 2))
    assert rmse_shi < rmse_wan


# --------------------------------------------------------------------------------------------------------------
# SE / CI conversions [HANDBOOK]
# --------------------------------------------------------------------------------------------------------------


def test_t_critical_matches_handbook_n25():
    assert cv.t_critical(25) == pytest.approx(2.0639, abs=5e-5)


def test_sd_from_ci_small_sample_uses_handbook_divisor():
    # n = 25, 95% CI 30.0 to 34.2: SD = sqrt(25) * 4.2 / 4.128 (divisor printed to 4 significant digits)
    assert cv.sd_from_ci(30.0, 34.2, 25) == pytest.approx(5 * 4.2 / 4.128, rel=1e-4)
    assert cv.se_from_ci(30.0, 34.2, 25) == pytest.approx(4.2 / 4.128, rel=1e-4)


@pytest.mark.parametrize(("level", "divisor"), [(0.95, 3.92), (0.90, 3.29), (0.99, 5.15)])
def test_sd_from_ci_large_sample_converges_to_handbook_divisors(level, divisor):
    n = 10**6
    width = 1.0
    # The Handbook's divisors are rounded to 3 significant digits.
    assert cv.sd_from_ci(0.0, width, n, level) == pytest.approx(np.sqrt(n) * width / divisor, rel=2e-3)


def test_sd_from_se():
    assert cv.sd_from_se(1.5, 16) == pytest.approx(6.0)
    assert cv.sd_from_se(2.0, 100) == pytest.approx(20.0)


def test_dispatcher_mean_based():
    assert cv.to_mean_sd("mean_sd", 12, mean=3.1, sd=0.4) == cv.MeanSD(3.1, 0.4, "reported", None)
    r = cv.to_mean_sd("mean_se", 16, mean=3.1, se=1.5)
    assert (r.mean, r.sd, r.method, r.skewed) == (3.1, pytest.approx(6.0), "sd_from_se", None)
    r = cv.to_mean_sd("mean_ci", 25, mean=32.1, ci_lower=30.0, ci_upper=34.2)
    assert r.sd == pytest.approx(5 * 4.2 / 4.128, rel=1e-4)
    assert r.method == "sd_from_ci_t"
    assert r.skewed is None


def test_meansd_is_frozen():
    r = cv.to_mean_sd("mean_sd", 12, mean=3.1, sd=0.4)
    with pytest.raises(AttributeError):
        r.sd = 1.0  # type: ignore[misc]


# --------------------------------------------------------------------------------------------------------------
# Change from baseline [CHANGE] and ratio of means [CURTIS]
# --------------------------------------------------------------------------------------------------------------


def test_change_sd_worked_example():
    assert cv.change_sd(10, 12, 0.6) == pytest.approx(10.0, abs=1e-12)
    assert cv.correlation_from_sds(10, 12, 10) == pytest.approx(0.6, abs=1e-12)


def test_change_sd_limits():
    # r = 0: variances add; r = 1 with equal SDs: no variability in the change; r = -1: SDs add.
    assert cv.change_sd(3, 4, 0) == pytest.approx(5.0)
    assert cv.change_sd(2, 2, 1) == pytest.approx(0.0, abs=1e-12)
    assert cv.change_sd(3, 4, -1) == pytest.approx(7.0)


def test_change_sd_and_correlation_invert_each_other():
    rng = np.random.default_rng(3)
    sd0 = rng.uniform(0.5, 20, 200)
    sd1 = rng.uniform(0.5, 20, 200)
    r = rng.uniform(-0.95, 0.95, 200)
    sdc = cv.change_sd(sd0, sd1, r)
    np.testing.assert_allclose(cv.correlation_from_sds(sd0, sd1, sdc), r, atol=1e-9)
    np.testing.assert_allclose(cv.change_sd(sd0, sd1, cv.correlation_from_sds(sd0, sd1, sdc)), sdc, rtol=1e-9)


def test_correlation_from_inconsistent_sds_raises():
    with pytest.raises(ValueError, match=r"sd_change is inconsistent"):
        cv.correlation_from_sds(1.0, 1.0, 5.0)


# dat.curtis1998 rows 1-6: (m1i, sd1i, n1i, m2i, sd2i, n2i, printed vi), vi to 4 decimals
CURTIS = [
    (6.8169, 1.7699820, 3, 3.9450, 1.1157970, 5, 0.0385),
    (2.5961, 0.6674662, 5, 2.2512, 0.3275839, 5, 0.0175),
    (2.9900, 0.8560000, 5, 1.9300, 0.5520000, 5, 0.0328),
    (5.9100, 1.7420000, 5, 6.6200, 1.6310000, 5, 0.0295),
    (4.6100, 1.4070000, 4, 4.1000, 1.2570000, 4, 0.0468),
    (10.7800, 1.1630000, 5, 6.4200, 2.0260000, 3, 0.0355),
]


@pytest.mark.parametrize("row", CURTIS)
def test_log_mean_se_reproduces_metafor_rom_variance(row):
    m1, s1, n1, m2, s2, n2, vi = row
    l1, se1 = cv.log_mean_and_se(m1, s1, n1)
    l2, se2 = cv.log_mean_and_se(m2, s2, n2)
    assert se1**2 + se2**2 == pytest.approx(vi, abs=5e-5)
    assert l1 - l2 == pytest.approx(np.log(m1 / m2), rel=1e-12)


# --------------------------------------------------------------------------------------------------------------
# Invalid input: ValueError naming the argument and what was expected
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: cv.sd_from_se(1.0, 0), r"n must be >= 1"),
        (lambda: cv.sd_from_se(0.0, 10), r"se must be > 0"),
        (lambda: cv.sd_from_se(None, 10), r"se is required"),
        (lambda: cv.sd_from_se("abc", 10), r"se must be a number"),
        (lambda: cv.sd_from_se(float("nan"), 10), r"se must be finite"),
        (lambda: cv.sd_from_ci(5.0, 4.0, 20), r"upper must be > lower"),
        (lambda: cv.sd_from_ci(4.0, 5.0, 1), r"n must be >= 2"),
        (lambda: cv.sd_from_ci(4.0, 5.0, 20, level=95), r"level must be strictly between 0 and 1"),
        (lambda: cv.mean_from_median_iqr(3.0, 4.0, 6.0, 20), r"q1 must be <= median"),
        (lambda: cv.mean_from_median_iqr(7.0, 4.0, 6.0, 20), r"median must be <= q3"),
        (lambda: cv.mean_from_median_range(3.0, 1.0, 5.0, 0), r"n must be >= 1"),
        (lambda: cv.mean_from_median_iqr_range(5, 4, 6, 4.5, 9, 20), r"minimum must be <= q1"),
        (lambda: cv.sd_from_range_wan(5.0, 5.0, 20), r"maximum must be > minimum"),
        (lambda: cv.sd_from_iqr_wan(6.0, 4.0, 20), r"q3 must be > q1"),
        (lambda: cv.sd_from_iqr_wan(4.0, 6.0, 1), r"n must be >= 2"),
        (lambda: cv.sd_from_iqr_range_shi(4, 6, 1, 5, 20), r"q3 must be <= maximum"),
        (lambda: cv.change_sd(0.0, 1.0, 0.5), r"sd_baseline must be > 0"),
        (lambda: cv.change_sd(1.0, -1.0, 0.5), r"sd_followup must be > 0"),
        (lambda: cv.change_sd(1.0, 1.0, 1.5), r"r must be a correlation in \[-1, 1\]"),
        (lambda: cv.correlation_from_sds(1.0, 1.0, 0.0), r"sd_change must be > 0"),
        (lambda: cv.log_mean_and_se(0.0, 1.0, 10), r"mean must be > 0"),
        (lambda: cv.log_mean_and_se(-2.0, 1.0, 10), r"mean must be > 0"),
        (lambda: cv.log_mean_and_se(2.0, 1.0, 0), r"n must be >= 1"),
        (lambda: cv.skew_test_median_range(1, 2, 3, 10), r"minimum must be <= median"),
    ],
)
def test_invalid_inputs_raise_with_clear_message(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_dispatcher_errors():
    with pytest.raises(cv.NotPoolableError, match=r"median_only.*not poolable"):
        cv.to_mean_sd("median_only", 20, median=5)
    with pytest.raises(cv.NotPoolableError, match=r"mean_only.*not poolable"):
        cv.to_mean_sd("mean_only", 20, mean=5)
    assert issubclass(cv.NotPoolableError, ValueError)
    with pytest.raises(ValueError, match=r"statistic must be one of"):
        cv.to_mean_sd("mean_sem", 20, mean=5, se=1)
    with pytest.raises(ValueError, match=r"statistic='median_iqr' requires q3"):
        cv.to_mean_sd("median_iqr", 20, median=5, q1=4)
    with pytest.raises(ValueError, match=r"statistic='mean_sd' requires sd"):
        cv.to_mean_sd("mean_sd", 20, mean=5)
    with pytest.raises(ValueError, match=r"sd must be > 0"):
        cv.to_mean_sd("mean_sd", 20, mean=5, sd=0)
    with pytest.raises(ValueError, match=r"n must be >= 1"):
        cv.to_mean_sd("mean_sd", 0, mean=5, sd=1)
    with pytest.raises(ValueError, match=r"mean must lie within"):
        cv.to_mean_sd("mean_ci", 20, mean=9, ci_lower=1, ci_upper=2)
    with pytest.raises(ValueError, match=r"q1 must be <= median"):
        cv.to_mean_sd("median_iqr", 20, median=3, q1=4, q3=6)


def test_standard_error_from_se_variance_or_sd_and_n():
    assert cv.standard_error(variance=0.04) == pytest.approx(0.2)
    assert cv.standard_error(se=0.3, variance=0.04) == pytest.approx(0.3)  # a reported SE wins
    assert cv.standard_error(sd=2.0, n=16) == pytest.approx(0.5)
    assert cv.standard_error(sd=2.0) is None and cv.standard_error() is None  # no spread: cannot be weighted
    with pytest.raises(ValueError, match=r"variance must be > 0"):
        cv.standard_error(variance=0)
