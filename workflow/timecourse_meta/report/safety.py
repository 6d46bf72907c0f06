"""Safety: the adverse events each study reports, as a table, and the pooled incidence of comparable events.

Adverse events are rarely poolable: most reports give a count without a denominator or a time, or one row per
patient's event. The table lists every row of the outcomes sheet whose outcome is a safety outcome (config
`safety.outcomes`) for the analysed studies of a set, as reported: the event, its count, its timing and the
authors' judgement of its relation to the intervention (outcomes-sheet column `relation`). Events that studies
report with totals (config `safety.pooled`, binary outcomes of config `binary_outcomes`) are pooled by the
binary model already fitted for them, by follow-up duration; `pooled_table` reads those summaries and adds
nothing of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from timecourse_meta.core.review import Arms
from timecourse_meta.core.values import to_float
from timecourse_meta.report.format import fmt_count, fmt_count_percent, fmt_estimate, fmt_number

RELATION_WORDS = {"related": "related", "possibly_related": "possibly related", "not_related": "not related",
                  "not_stated": "not stated", "": "not stated"}
TIME_WORDS = {"days": ("day", "days"), "weeks": ("week", "weeks"), "months": ("month", "months")}
EVENT_COLUMNS = ["study_id", "study", "arm", "event", "outcome", "count", "timing", "relation", "pooled", "row_id"]
POOLED_COLUMNS = ["outcome", "follow_up_months", "estimate", "what_it_is", "n_studies", "n_patients"]


def _text(x) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return ""
    s = str(x).strip()
    return "" if s.lower() == "nan" else s


def _whole(x) -> str:
    v = to_float(x)
    return fmt_count(int(v)) if np.isfinite(v) and float(v).is_integer() else fmt_number(v, 2)


def count_text(row: Mapping) -> str:
    """The reported count as printed: events/total (percent), a count (of n), a percent, or a value."""
    statistic, unit = _text(row.get("statistic")), _text(row.get("unit"))
    events, total = to_float(row.get("events")), to_float(row.get("total"))
    if statistic == "events_total" and np.isfinite(events) and np.isfinite(total):
        return fmt_count_percent(int(events), int(total))
    if statistic == "count":
        n = to_float(row.get("n"))
        of = f" of {_whole(n)}" if np.isfinite(n) else ""
        count = to_float(row.get("count"))
        if count == 1 and unit in ("events", "patients", "cases"):  # the sheet's unit is a plural noun
            unit = unit[:-1]
        return f"{_whole(row.get('count'))} {unit}{of}".strip()
    if statistic == "percent":
        head = f"{_whole(events)} " if np.isfinite(events) else ""
        return f"{head}({fmt_number(to_float(row.get('percent')), 1)}%)".strip()
    value = to_float(row.get("value"))
    return f"{_whole(value)} {unit}".strip() if np.isfinite(value) else "not reported"


def timing_text(row: Mapping) -> str:
    """When the event happened, or by when it was counted ('day 7', 'by 12 months'), or 'not reported'."""
    t, unit = to_float(row.get("time_value")), _text(row.get("time_unit"))
    if not np.isfinite(t):
        return "not reported"
    one, many = TIME_WORDS.get(unit, (unit, unit))
    if unit == "days":
        return f"day {_whole(t)}"
    return f"by {_whole(t)} {one if t == 1 else many}"


def events_table(outcomes: pd.DataFrame, study_ids: Iterable[str], safety_outcomes: Iterable[str], *,
                 labels: Mapping[str, str], outcome_labels: Mapping[str, str], arms: Arms,
                 pooled_outcomes: Iterable[str] = ()) -> pd.DataFrame:
    """One row per reported safety number of the given studies, in the order of `study_ids` then the sheet.
    `pooled` says whether the row enters the pooled incidence (a usable row of a pooled outcome)."""
    ids, wanted, pooled = list(study_ids), list(safety_outcomes), set(pooled_outcomes)
    part = outcomes[outcomes["study_id"].isin(ids) & outcomes["outcome"].isin(wanted)].copy()
    part["_order"] = part["study_id"].map({s: i for i, s in enumerate(ids)})
    part = part.sort_values(["_order"], kind="stable")
    rows = []
    for r in part.to_dict("records"):
        arm = arms.intervention.arm_name if arms.is_intervention(r["arm"]) else arms.comparator.arm_name
        usable = _text(r.get("usable")).lower() == "yes"
        rows.append({"study_id": r["study_id"], "study": labels.get(r["study_id"], r["study_id"]), "arm": arm,
                     "event": _text(r.get("outcome_reported")),
                     "outcome": outcome_labels.get(r["outcome"], r["outcome"]), "count": count_text(r),
                     "timing": timing_text(r), "relation": RELATION_WORDS.get(_text(r.get("relation")), "not stated"),
                     "pooled": "yes" if usable and r["outcome"] in pooled else "no", "row_id": r["row_id"]})
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)


def pooled_table(summaries: Mapping[str, pd.DataFrame | None], outcome_labels: Mapping[str, str]) -> pd.DataFrame:
    """Per pooled safety outcome and follow-up duration: the binary model's proportion (percent) with its
    interval and the model's own label of what the number is (pooled from k studies, or one study's estimate)."""
    rows = []
    for outcome, summary in summaries.items():
        if summary is None or summary.empty:
            continue
        prop = summary[summary["quantity"] == "proportion"].sort_values("visit_months", kind="stable")
        for r in prop.to_dict("records"):
            t = to_float(r.get("visit_months"))
            interval = "CrI" if pd.isna(r.get("study_id")) or _text(r.get("study_id")) == "" else "CI"
            rows.append({"outcome": outcome_labels.get(outcome, outcome),
                         "follow_up_months": _whole(t) if np.isfinite(t) else "not reported",
                         "estimate": fmt_estimate(100 * r["median"], 100 * r["lower"], 100 * r["upper"], 1,
                                                  interval=interval) + " %",
                         "what_it_is": _text(r.get("label")),
                         "n_studies": _whole(r.get("n_studies")), "n_patients": _whole(r.get("n_patients"))})
    return pd.DataFrame(rows, columns=POOLED_COLUMNS)


def counts(events: pd.DataFrame) -> dict[str, int]:
    """What the text states about the table: studies and rows, and rows by the authors' judgement of relation."""
    by = events["relation"].value_counts() if len(events) else pd.Series(dtype=int)
    return {"n_studies": int(events["study_id"].nunique()) if len(events) else 0, "n_rows": int(len(events)),
            "n_related": int(by.get("related", 0) + by.get("possibly related", 0)),
            "n_not_related": int(by.get("not related", 0)), "n_not_stated": int(by.get("not stated", 0)),
            "n_pooled_rows": int((events["pooled"] == "yes").sum()) if len(events) else 0}
