"""The randomised comparison: each controlled study's arms and their difference, per outcome and visit.

A before-after change in the intervention arm is not an effect of the intervention: the comparator arm of a
randomised trial changes too (regression to the mean, background treatment). This module turns the model
summaries' closed-form rows into the table a reader of a trial expects, one row per controlled study, outcome
and visit:

* the intervention arm's own change from baseline and the comparator arm's (``study_observed`` /
  ``control_observed``),
* the between-arm difference from follow-up means and from change scores (``between_arm_difference`` rows
  with their ``estimand``; the one marked ``primary`` is the configured primary estimand, Cochrane Handbook
  10.5.2: either is valid for a randomised trial),
* binary outcomes: events/total per arm and the risk difference.

Log-scale outcomes are shown as percent changes and percent differences of the mean (ratio of means); every
number is formatted by `timecourse_meta.report.format`, so the table and the text agree. The arm columns
are named after the review's arms (`core.review.Arms`: their `arm_name`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from timecourse_meta.core.review import Arms
from timecourse_meta.report.figure_data import DISPLAY_UNITS
from timecourse_meta.report.format import fmt_count, fmt_estimate, fmt_number, outcome_digits, sig_digits
from timecourse_meta.core.values import to_float

ESTIMAND_FOLLOW_UP = "follow-up means"
ESTIMAND_CHANGE = "change scores"
ESTIMAND_RISK = "risk difference"
NOT_REPORTED = "not reported"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def columns(*, arms: Arms) -> list[str]:
    """The table's columns; the arms' by their `arm_name` (e.g. 'Treated arm', 'Control arm')."""
    return ["Outcome", "Study", "Visit (months)", _capital(arms.intervention.arm_name),
            _capital(arms.comparator.arm_name), "Difference at follow-up", "Difference in change from baseline",
            "Primary estimand"]


_num = to_float  # a cell as a number, NaN when it is not one (core.values)


def _truthy(x) -> bool:
    return str(x).strip().lower() in ("true", "1", "yes")


def _pct(x: float) -> float:
    return 100.0 * math.expm1(x)


def _interval(est, lo, hi, digits: int, percent: bool, interval: str = "CI") -> str:
    if not all(np.isfinite([est, lo, hi])):
        return NOT_REPORTED if not np.isfinite(est) else f"{fmt_number(est, digits)}{'%' if percent else ''}"
    return fmt_estimate(est, lo, hi, digits, level=95, interval=interval, percent=percent)


def _near(frame: pd.DataFrame, visit: float) -> pd.DataFrame:
    return frame[np.isclose(frame["visit_months"].astype(float), float(visit), atol=0.01)]


def _arm_change(summary: pd.DataFrame, quantity: str, study: str, visit: float, log: bool, digits: int) -> str:
    rows = summary[(summary["quantity"] == quantity) & (summary["study_id"].astype(str) == study)]
    rows = _near(rows, visit)
    if rows.empty:
        return NOT_REPORTED
    r = rows.iloc[0]
    est, lo, hi = _num(r["median"]), _num(r["lower"]), _num(r["upper"])
    if log:
        est, lo, hi = _pct(est), _pct(lo), _pct(hi)
    return _interval(est, lo, hi, digits, log)


def _events(table: pd.DataFrame | None, outcome: str, study: str, arm_is_control: bool, visit: float,
            arms: Arms) -> str:
    if table is None:
        return NOT_REPORTED
    part = table[(table["outcome"] == outcome) & (table["study_id"].astype(str) == study)]
    part = part[~part["arm"].map(arms.is_intervention).astype(bool) == arm_is_control]
    part = part[np.isclose(pd.to_numeric(part["time_months"], errors="coerce"), float(visit), atol=0.01)]
    part = part.dropna(subset=["events", "total"]) if {"events", "total"} <= set(part.columns) else part.iloc[0:0]
    if part.empty:
        return NOT_REPORTED
    r = part.iloc[0]
    e, n = int(round(float(r["events"]))), int(round(float(r["total"])))
    return f"{fmt_count(e)}/{fmt_count(n)} ({fmt_number(100.0 * e / n, 0)}%)"


def comparisons(summary: pd.DataFrame, spec, table: pd.DataFrame | None = None, *, arms: Arms) -> list[dict]:
    """One record per controlled study and visit of one outcome: `study_id`, `visit_months`, the texts
    `intervention`, `comparator` (each arm's change, or events/total), `follow_up_means`, `change_scores`,
    `primary_estimand`, `primary`, and the primary estimand's numbers on the display scale (`primary_estimate`, `primary_lower`, `primary_upper`) and its
    `analysis_ids` (the rows it was computed from). [] without a controlled study."""
    diff = summary[summary["quantity"] == "between_arm_difference"]
    diff = diff[diff["visit_months"].astype(float) > 0]
    if diff.empty:
        return []
    log = spec.analysis_scale == "log" and spec.kind == "continuous"
    binary = spec.kind == "binary"
    digits = sig_digits("%") if (log or binary) else outcome_digits(spec)
    out = []
    for (study, visit), grp in diff.groupby([diff["study_id"].astype(str), diff["visit_months"].astype(float)],
                                            sort=True):
        rec = {"study_id": study, "visit_months": float(visit), ESTIMAND_FOLLOW_UP: NOT_REPORTED,
               ESTIMAND_CHANGE: "not applicable" if binary else NOT_REPORTED, "primary_estimand": NOT_REPORTED,
               "primary": NOT_REPORTED, "primary_estimate": math.nan, "primary_lower": math.nan,
               "primary_upper": math.nan, "analysis_ids": ""}
        rows = list(grp.itertuples())
        for r in rows:
            estimand = str(getattr(r, "estimand", "") or "")
            est, lo, hi = _num(r.median), _num(r.lower), _num(r.upper)
            if log:
                est, lo, hi = _pct(est), _pct(lo), _pct(hi)
            if binary:
                est, lo, hi = 100 * est, 100 * lo, 100 * hi
                estimand = ESTIMAND_FOLLOW_UP  # a risk difference compares the arms at follow-up
            text = _interval(est, lo, hi, digits, log)
            if estimand in rec:
                rec[estimand] = text
            if _truthy(getattr(r, "primary", False)) or len(rows) == 1:
                rec.update(primary_estimand=ESTIMAND_RISK if binary else estimand, primary=text,
                           primary_estimate=est, primary_lower=lo, primary_upper=hi,
                           analysis_ids=str(getattr(r, "analysis_ids", "") or ""))
        if binary:
            rec["intervention"] = _events(table, spec.name, study, False, visit, arms)
            rec["comparator"] = _events(table, spec.name, study, True, visit, arms)
        else:
            rec["intervention"] = _arm_change(summary, "study_observed", study, visit, log, digits)
            rec["comparator"] = _arm_change(summary, "control_observed", study, visit, log, digits)
        rec["follow_up_means"], rec["change_scores"] = rec.pop(ESTIMAND_FOLLOW_UP), rec.pop(ESTIMAND_CHANGE)
        out.append(rec)
    return out


def between_arm_rows(summary: pd.DataFrame, spec, labels: Mapping[str, str],
                     table: pd.DataFrame | None = None, *, arms: Arms) -> list[dict]:
    """The table rows of one outcome (see the module docstring); [] without a controlled study."""
    names = columns(arms=arms)
    log = spec.analysis_scale == "log" and spec.kind == "continuous"
    unit = "%" if log else ("percentage points" if spec.kind == "binary" else spec.canonical_unit)
    unit = DISPLAY_UNITS.get(unit, unit)
    return [dict(zip(names, [
        f"{spec.label} ({unit})" if unit else spec.label,
        labels.get(rec["study_id"], rec["study_id"]),
        fmt_number(rec["visit_months"], 0 if float(rec["visit_months"]).is_integer() else 1),
        rec["intervention"],
        rec["comparator"],
        rec["follow_up_means"],
        rec["change_scores"],
        rec["primary_estimand"],
    ])) for rec in comparisons(summary, spec, table, arms=arms)]


def between_arm_table(summaries: Mapping[str, pd.DataFrame], dictionary: Mapping, labels: Mapping[str, str],
                      table: pd.DataFrame | None = None, *, arms: Arms) -> pd.DataFrame:
    """All outcomes' rows in the order of `summaries` (the config's outcome order)."""
    rows = []
    for outcome, summary in summaries.items():
        if summary is None or summary.empty:
            continue
        rows += between_arm_rows(summary, dictionary[outcome], labels, table, arms=arms)
    return pd.DataFrame(rows, columns=columns(arms=arms))
