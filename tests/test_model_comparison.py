"""The time-course comparison table reads the summaries' elpd rows and says which shape was used and why."""

import pandas as pd

from timecourse_meta.report import model_comparison

MINUS = "\u2212"


def _summary(used="random_walk"):
    def elpd(tc, e, se, diff, dse, rank, warn):
        return dict(quantity="elpd_loo", time_course=tc, median=e, lower=e - 2 * se, upper=e + 2 * se,
                    note=f"rank {rank}; elpd_diff {diff} (se {dse}); weight 0.5; p_loo 3; pareto-k warning {warn}; "
                         f"converged True; reported: {used}")
    return pd.DataFrame([
        elpd("emax", -22.6, 4.1, 0, 0, 0, True), elpd("piecewise_linear", -26.1, 5.3, 3.55, 2.28, 1, True),
        elpd("random_walk", -29.8, 2.3, 7.23, 2.15, 2, True),
        dict(quantity="time_course_choice", time_course=used, note=(
            "configured time course random_walk kept: emax ranks first (elpd_loo higher by 7.23, 2 x SE 4.3), "
            "but PSIS-LOO is unreliable here (Pareto k above 0.7 for some study means) (time_course_rule: loo)")),
    ])


def test_rows_in_elpd_order_with_differences_and_the_rule_decision():
    t = model_comparison.comparison_table({"sledai": _summary()}, {"sledai": "SLEDAI score"})
    assert list(t["Time course"]) == ["Emax", "piecewise linear", "random walk"]
    assert list(t["elpd (SE)"]) == [f"{MINUS}22.6 (4.1)", f"{MINUS}26.1 (5.3)", f"{MINUS}29.8 (2.3)"]
    assert list(t["Difference from the best (SE)"]) == ["best", f"{MINUS}3.6 (2.3)", f"{MINUS}7.2 (2.2)"]  # half away from zero
    assert list(t["Used"]) == ["no", "no", "yes"] and list(t["Pareto k above 0.7"]) == ["yes"] * 3
    why = t.loc[t["Used"] == "yes", "Why"].iloc[0]
    assert why.startswith("configured time course random walk kept: Emax ranks first") and "time_course_rule" not in why


def test_no_comparison_says_so():
    t = model_comparison.comparison_table({"c3": pd.DataFrame({"quantity": ["delta"], "note": [""]})}, {})
    assert t.iloc[0]["Outcome"] == model_comparison.NONE_TEXT
