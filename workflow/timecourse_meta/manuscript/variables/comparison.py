"""The between-arm block (`<set>.rct.*`): the set's first controlled study (a comparator arm with patients) and,
per outcome, its primary between-arm difference (timecourse_meta.report.between_arm), the other estimand, both
arms' changes, and a count of outcomes whose primary difference has a 95% CI that excludes no difference."""

from __future__ import annotations


import pandas as pd

from timecourse_meta.core.review import Arms
from timecourse_meta.manuscript.variables.context import Collector, Context, read_csv
from timecourse_meta.manuscript.variables.words import finite, join_words, visit_text
from timecourse_meta.report import between_arm
from timecourse_meta.report.figure_data import DISPLAY_UNITS
from timecourse_meta.report.format import fmt_count

NO_CONTROLLED = "no controlled study in this set"
NOT_IN_TRIAL = "not reported by the controlled study"
RECORD_KEYS = ("primary", "primary_estimand", "follow_up_means", "change_scores", "intervention", "comparator")


def comparisons(summary: pd.DataFrame, spec, table: pd.DataFrame, arms: Arms) -> list[dict]:
    """`between_arm.comparisons`: records with the arms' texts under `intervention` / `comparator`."""
    return [dict(rec) for rec in between_arm.comparisons(summary, spec, table, arms=arms)]


def put_comparison(c: Collector, ctx: Context, s: str, prefixes: list[str]) -> None:
    """The randomised comparison of the set's first controlled study (see the module docstring)."""
    ids = ctx.sets.get(s, [])
    part = ctx.studies[ctx.studies["study_id"].isin(ids)]
    arms = ctx.arms
    # a controlled study whose comparator arm has poolable rows (a trial known only from a table, without data,
    # is no comparison); in sheet order
    with_data = set(ctx.table.loc[ctx.table["poolable"] & (ctx.table["arm"] == arms.comparator.id), "study_id"])
    controlled = part[(pd.to_numeric(part[arms.comparator.n_column], errors="coerce").fillna(0) > 0)
                      & part["study_id"].isin(with_data)]
    files = [ctx.files.studies]

    def put(suffix, value, kind="data", files=files, raw_rows=()):
        c.put([f"{p}.rct.{suffix}" for p in prefixes], value, kind=kind, files=files, raw_rows=raw_rows)

    rows = ctx.study_rows(controlled["study_id"].tolist())
    put("n_studies", fmt_count(len(controlled)), raw_rows=rows)
    put("study", join_words([ctx.labels[i] for i in controlled["study_id"]]) if len(controlled) else NO_CONTROLLED,
        raw_rows=rows)
    first = controlled.iloc[0] if len(controlled) else None
    for key, arm in (("n_intervention", arms.intervention), ("n_comparator", arms.comparator)):
        put(key, fmt_count(int(float(first[arm.n_column]))) if first is not None else NO_CONTROLLED, raw_rows=rows)
    put("design", str(first["design_detail"]) if first is not None and str(first.get("design_detail", "")).strip()
        else (NO_CONTROLLED if first is None else "controlled"), raw_rows=rows)
    n_with, clear = 0, []
    for outcome in ctx.outcomes():
        rec = _put_outcome(put, ctx, s, outcome, first)
        if rec is None:
            continue
        n_with += 1
        lo, hi = rec["primary_lower"], rec["primary_upper"]
        if finite(lo) and finite(hi) and (lo > 0 or hi < 0):
            clear.append(ctx.dictionary[outcome].label)
    put("n_outcomes", fmt_count(n_with), kind="derived")
    put("n_clear", fmt_count(len(clear)), kind="derived")
    put("clear_list", join_words(clear) if clear else "none", kind="derived")
    if first is None:
        conclusion = NO_CONTROLLED
    elif not clear:
        conclusion = (f"none of the {fmt_count(n_with)} between-arm differences had a 95% confidence interval "
                      "that excluded no difference")
    else:
        conclusion = (f"{fmt_count(len(clear))} of {fmt_count(n_with)} between-arm differences had a 95% "
                      f"confidence interval that excluded no difference ({join_words(clear)})")
    put("conclusion", conclusion, kind="derived")


def _put_outcome(put, ctx: Context, s: str, outcome: str, first) -> dict | None:
    """One outcome's `rct.<outcome>.*` keys from the controlled study's latest visit with both arms; the record
    used, or None when the study does not report the outcome."""
    spec = ctx.dictionary[outcome]
    path = ctx.files.summaries[(s, outcome)]
    summary = read_csv(path, dtype={"study_id": str})
    recs = comparisons(summary, spec, ctx.table, ctx.arms) if summary is not None else []
    recs = [r for r in recs if first is not None and r["study_id"] == first["study_id"]]
    if not recs:
        for k in (*RECORD_KEYS, "visit_text", "summary"):
            put(f"{outcome}.{k}", NOT_IN_TRIAL if first is not None else NO_CONTROLLED, kind="model", files=[path])
        return None
    rec = recs[-1]  # the latest visit with both arms
    raw = ctx.raw_rows_for(frame=ctx.table[(ctx.table["outcome"] == outcome)
                                          & (ctx.table["study_id"] == rec["study_id"])])

    def fput(k, v):
        put(f"{outcome}.{k}", v, kind="model", files=[path, ctx.files.analysis_table], raw_rows=raw)

    other_name = (between_arm.ESTIMAND_CHANGE if rec["primary_estimand"] == between_arm.ESTIMAND_FOLLOW_UP
                  else between_arm.ESTIMAND_FOLLOW_UP)
    other = rec["change_scores"] if other_name == between_arm.ESTIMAND_CHANGE else rec["follow_up_means"]
    for k in RECORD_KEYS:
        fput(k, rec[k])
    fput("visit_text", visit_text(rec["visit_months"]))
    unit = ("" if spec.analysis_scale == "log" or spec.kind == "binary"
            else " " + DISPLAY_UNITS.get(spec.canonical_unit, spec.canonical_unit))
    head = rec["primary"].replace(" (", f"{unit} (", 1) if rec["primary"] != between_arm.NOT_REPORTED else \
        rec["primary"]
    what = "risk difference in percentage points" if spec.kind == "binary" else f"from {rec['primary_estimand']}"
    text = f"{head} at {visit_text(rec['visit_months'])} ({what}"
    if spec.kind != "binary" and other != between_arm.NOT_REPORTED:
        text += f"; from {other_name}: {other}"
    text += (f"; {ctx.arms.intervention.arm_name} {rec['intervention']}, "
             f"{ctx.arms.comparator.arm_name} {rec['comparator']})")
    fput("summary", text)
    return rec
