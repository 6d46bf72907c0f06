"""The supplement's table of the time-course comparison: each shape's PSIS-LOO expected log predictive
density, its difference from the best, whether the estimate is reliable, and which shape the stated rule used.

Read from the model summaries' ``elpd_loo`` rows (one per time course, their note carrying ArviZ's comparison
columns) and the ``time_course_choice`` row (the rule's decision and reason, `models.choose_time_course`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pandas as pd

from timecourse_meta.report.format import fmt_number

COLUMNS = ["Outcome", "Time course", "elpd (SE)", "Difference from the best (SE)", "Pareto k above 0.7",
           "Used", "Why"]
TIME_COURSE_WORDS = {"random_walk": "random walk", "piecewise_linear": "piecewise linear", "emax": "Emax"}
_NOTE = re.compile(r"elpd_diff (?P<diff>[-\d.e+]+) \(se (?P<dse>[-\d.e+]+)\).*?pareto-k warning (?P<warn>True|False)"
                   r".*?reported: (?P<used>\w+)")
NONE_TEXT = "no outcome had two or more studies with three or more follow-up times: no comparison"


def comparison_rows(summary: pd.DataFrame, label: str) -> list[dict]:
    """The rows of one outcome (none without a comparison)."""
    elpd = summary[summary["quantity"] == "elpd_loo"]
    if elpd.empty:
        return []
    choice = summary[summary["quantity"] == "time_course_choice"]
    why = str(choice["note"].iloc[0]) if len(choice) else ""
    why = re.sub(r"\s*\(time_course_rule: \w+\)$", "", why)
    for key, words in TIME_COURSE_WORDS.items():
        why = why.replace(key, words)
    rows = []
    for r in elpd.sort_values("median", ascending=False).itertuples():
        m = _NOTE.search(str(r.note))
        se = (float(r.upper) - float(r.median)) / 2
        diff, dse = (float(m["diff"]), float(m["dse"])) if m else (float("nan"), float("nan"))
        rows.append({
            "Outcome": label,
            "Time course": TIME_COURSE_WORDS.get(r.time_course, r.time_course),
            "elpd (SE)": f"{fmt_number(float(r.median), 1)} ({fmt_number(se, 1)})",
            "Difference from the best (SE)": ("best" if diff == 0 else
                                              f"{fmt_number(-diff, 1)} ({fmt_number(dse, 1)})") if m else "",
            "Pareto k above 0.7": ("yes" if m["warn"] == "True" else "no") if m else "",
            "Used": "yes" if m and m["used"] == r.time_course else "no",
            "Why": why if m and m["used"] == r.time_course else "",
        })
    return rows


def comparison_table(summaries: Mapping[str, pd.DataFrame], labels: Mapping[str, str]) -> pd.DataFrame:
    """All outcomes of a study set with a comparison, in the order of `summaries`."""
    rows = []
    for outcome, summary in summaries.items():
        rows += comparison_rows(summary, labels.get(outcome, outcome))
    if not rows:
        return pd.DataFrame([{c: (NONE_TEXT if c == "Outcome" else "") for c in COLUMNS}], columns=COLUMNS)
    return pd.DataFrame(rows, columns=COLUMNS)
