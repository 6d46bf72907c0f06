"""timecourse_meta.report.format: every number a reader sees is formatted here; known inputs -> known outputs."""

import math
from pathlib import Path

import pytest

from timecourse_meta.report import format as N

M = "\u2212"  # the minus sign every negative number must carry


@pytest.mark.parametrize(
    "x, digits, expected",
    [
        (-2.149, 1, f"{M}2.1"),
        (2.15, 1, "2.2"),          # half away from zero on the decimal value ...
        (2.675, 2, "2.68"),        # ... not on the binary float (format() would give 2.67)
        (-0.125, 2, f"{M}0.13"),
        (-0.04, 1, "0.0"),         # no "−0.0"
        (0, 0, "0"),
        (12, 0, "12"),
        (1234.5, 1, "1234.5"),
        (3, 2, "3.00"),
    ],
)
def test_fmt_number(x, digits, expected):
    assert N.fmt_number(x, digits) == expected


def test_fmt_number_accepts_numpy_scalars():
    np = pytest.importorskip("numpy")
    assert N.fmt_number(np.float64(-1.25), 1) == f"{M}1.3"
    assert N.fmt_number(np.int64(7), 0) == "7"


@pytest.mark.parametrize("bad", [None, math.nan, math.inf, -math.inf, True, "1.2", [1.0]])
def test_fmt_number_rejects_non_numbers(bad):
    with pytest.raises((TypeError, ValueError)):
        N.fmt_number(bad, 1)


def test_fmt_number_rejects_bad_digits():
    with pytest.raises(ValueError):
        N.fmt_number(1.0, -1)


def test_fmt_interval():
    assert N.fmt_interval(-3.04, -1.2, 1) == f"{M}3.0 to {M}1.2"
    assert N.fmt_interval(-0.5, 0.25, 2) == f"{M}0.50 to 0.25"
    with pytest.raises(ValueError, match="above"):
        N.fmt_interval(2.0, 1.0, 1)


def test_fmt_estimate():
    assert N.fmt_estimate(-2.1, -3.0, -1.2, 1) == f"{M}2.1 (95% CrI {M}3.0 to {M}1.2)"
    assert N.fmt_estimate(0.5, 0.1, 0.9, 2, level=90, interval="PI") == "0.50 (90% PI 0.10 to 0.90)"
    with pytest.raises(ValueError, match="outside"):
        N.fmt_estimate(5.0, 0.0, 1.0, 1)


@pytest.mark.parametrize(
    "p, digits, expected",
    [(0.123, 1, "12.3%"), (0.5, 0, "50%"), (1.0, 0, "100%"), (-0.053, 1, f"{M}5.3%"), (0.0049, 1, "0.5%")],
)
def test_fmt_percent(p, digits, expected):
    assert N.fmt_percent(p, digits) == expected


def test_counts():
    assert N.fmt_count(81) == "81"
    assert N.fmt_count(1234) == "1,234"
    assert N.fmt_count(12.0) == "12"
    assert N.fmt_count_percent(11, 49) == "11/49 (22%)"
    assert N.fmt_count_percent(49, 81, 1) == "49/81 (60.5%)"
    for bad in (2.5, -1):
        with pytest.raises(ValueError):
            N.fmt_count(bad)
    with pytest.raises(ValueError):
        N.fmt_count_percent(5, 4)
    with pytest.raises(ValueError):
        N.fmt_count_percent(0, 0)


@pytest.mark.parametrize(
    "p, digits, expected",
    [
        (0.873, 2, "0.87"),
        (0.996, 2, ">0.99"),
        (0.995, 2, ">0.99"),   # rounds to 1.00
        (1.0, 2, ">0.99"),
        (0.994, 2, "0.99"),
        (0.003, 2, "<0.01"),
        (0.0, 2, "<0.01"),
        (0.005, 2, "0.01"),
        (0.9996, 3, ">0.999"),
        (0.0004, 3, "<0.001"),
    ],
)
def test_fmt_probability(p, digits, expected):
    assert N.fmt_probability(p, digits) == expected


@pytest.mark.parametrize("bad", [-0.01, 1.01])
def test_fmt_probability_range(bad):
    with pytest.raises(ValueError):
        N.fmt_probability(bad)


def test_percent_change_from_log_ratio():
    assert N.pct_change_from_log_ratio(0.0) == 0.0
    assert N.pct_change_from_log_ratio(math.log(2)) == pytest.approx(100.0)
    assert N.pct_change_from_log_ratio(math.log(0.5)) == pytest.approx(-50.0)
    assert N.fmt_p_change_from_log_ratio(-0.5) == f"{M}39%"
    assert N.fmt_p_change_from_log_ratio(0.1, 1) == "10.5%"
    assert N.fmt_p_change_from_log_ratio(math.log(1.25)) == "25%"
    assert (N.fmt_p_change_interval_from_log_ratio(-0.5, -0.8, -0.2)
            == f"{M}39% (95% CrI {M}55% to {M}18%)")


def test_sig_digits_by_unit():
    assert N.sig_digits("g/24 h") == 2
    assert N.sig_digits("mL/min/1.73 m2") == 0
    assert N.sig_digits("score") == 1
    assert N.sig_digits("IU/mL") == 0
    assert N.sig_digits("%") == 0
    assert N.sig_digits("log ratio") == 2
    with pytest.raises(ValueError, match="furlongs"):
        N.sig_digits("furlongs")


def test_every_canonical_unit_has_a_rule():
    """Every canonical unit of the outcome dictionary has a reporting rule."""
    from timecourse_meta.data import dictionary
    path = Path(__file__).resolve().parents[1] / "data" / "review" / "outcomes.yaml"
    units = {spec.canonical_unit for spec in dictionary.load(path).values()}
    assert len(units) >= 5, units
    for unit in units:
        assert isinstance(N.sig_digits(unit), int)


def test_fmt_outcome():
    assert N.fmt_outcome(-1.234, "g/24 h") == f"{M}1.23"
    assert N.fmt_outcome(-1.234, "g/24 h", -2.0, -0.5) == f"{M}1.23 (95% CrI {M}2.00 to {M}0.50)"
    assert N.fmt_outcome(12.26, "score", 10.0, 14.0) == "12.3 (95% CrI 10.0 to 14.0)"
    with pytest.raises(ValueError):
        N.fmt_outcome(1.0, "score", lower=0.0)


def test_estimate_in_percent_signs_each_bound():
    assert N.fmt_estimate(-64.4, -79.6, -38.2, 0, interval="CI", percent=True) == \
        "\u221264% (95% CI \u221280% to \u221238%)"
    assert N.fmt_estimate(7.2, -14.0, 33.0, 0, interval="CI", percent=True) == "7% (95% CI \u221214% to 33%)"


def test_interval_in_percent_signs_each_bound():
    assert N.fmt_interval(-55.2, -18.0, 0, percent=True) == f"{M}55% to {M}18%"


# ------------------------------------------------------------------ figure and table cells (one formatter for all)

@pytest.mark.parametrize("values, expected", [((0.5, -3.2), 2), ((12.0, 1.0), 1), ((-150.0, 3.0), 0),
                                              ((99.99,), 1), ((100.0,), 0), ((math.nan, 5.0), 2), ((), 2)])
def test_decimals_for_follows_the_largest_magnitude(values, expected):
    assert N.decimals_for(*values) == expected


def test_bracketed_interval_one_precision_half_up_and_minus_sign():
    assert N.fmt_bracketed(-2.1, -3.243, -0.956) == f"{M}2.10 [{M}3.24, {M}0.96]"
    assert N.fmt_bracketed(-152, -420.9, 116.9) == f"{M}152 [{M}421, 117]"
    assert N.fmt_bracketed(2.675, 2.125, 3.0) == "2.68 [2.13, 3.00]"   # half up on the decimal as written
    assert N.fmt_bracketed(-0.004, -0.5, 0.4) == f"0.00 [{M}0.50, 0.40]"  # no "−0.00"
    assert N.fmt_bracketed(1.0, math.nan, math.nan) == "1.00 [no interval]"
    assert N.fmt_bracketed(None, 1.0, 2.0) == ""
    assert N.fmt_bracketed(1.25, 0.05, 2.5, digits=1) == "1.3 [0.1, 2.5]"
    assert N.fmt_bounds(-1.005, 2.675) == f"[{M}1.01, 2.68]"


@pytest.mark.parametrize("t, number, text", [(1, "1", "1 month"), (6.0, "6", "6 months"),
                                             (0.923, "0.9", "0.9 months"), (0.25, "0.3", "0.3 months"),
                                             (5.9999999, "6", "6 months"), (math.nan, "not reported",
                                                                             "not reported months")])
def test_months(t, number, text):
    assert N.fmt_months(t) == number
    if math.isfinite(t):
        assert N.months_text(t) == text


def test_outcome_precision_comes_from_the_dictionary_when_the_unit_has_no_rule():
    from types import SimpleNamespace

    from timecourse_meta.report import format as F

    points = SimpleNamespace(name="pain", canonical_unit="points", decimals=1)
    assert F.outcome_digits(points) == 1
    assert F.outcome_digits(SimpleNamespace(name="x", canonical_unit="g/24 h", decimals=None)) == 2  # the unit's rule
    assert F.outcome_digits(SimpleNamespace(name="x", canonical_unit="g/24 h", decimals=0)) == 0  # overrides it
    with pytest.raises(F.FormatError, match=r"outcome 'pain'.*'points'.*decimals"):
        F.outcome_digits(SimpleNamespace(name="pain", canonical_unit="points", decimals=None))
