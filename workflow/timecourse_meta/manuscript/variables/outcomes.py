"""The outcome blocks (`<set>.<outcome>.*`): a continuous outcome at its key visit (the forest plot's and the
summary-of-findings table's visit, numbers identical to that table's through `figure_data.finding`), and a binary
outcome at every follow-up duration with the one of most studies as its headline."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from timecourse_meta.manuscript.variables.context import Collector, Context, read_csv
from timecourse_meta.manuscript.variables.words import (LEVEL, NO_DATA, NONE, NOT_ANALYSED, SINGLE, finite,
                                                        fmt_change, fmt_range, unit_digits, visit_number,
                                                        visit_text, with_unit_head)
from timecourse_meta.report import figure_data
from timecourse_meta.report.figure_data import display_unit
from timecourse_meta.report.format import fmt_count, fmt_estimate, fmt_probability, sig_digits

_CONTINUOUS_KEYS = ("visit", "visit_text", "n_studies", "n_patients", "change", "prediction", "p_improvement",
                    "tau", "tau_note", "status", "summary")
_BINARY_KEYS = ("visit", "visit_text", "n_studies", "n_patients", "status", "proportion", "prediction", "tau",
                "summary")


def likelihood_rows(ctx: Context, s: str, outcome: str) -> pd.DataFrame:
    """The intervention arm's poolable rows of `outcome` in study set `s` (every row its model uses)."""
    t = ctx.table
    return t[(t["outcome"] == outcome) & (t["arm"] == ctx.arms.intervention.id) & t["poolable"]
             & (t["study_id"].isin(ctx.sets.get(s, [])))]


def _key_visit(path: Path) -> float | None:
    frame = read_csv(path)
    if frame is None or frame.empty or "key_visit_months" not in frame:
        return None
    v = frame["key_visit_months"].iloc[0]
    return float(v) if finite(v) else None


def _studies_total(ctx: Context, s: str, outcome: str) -> int:
    cov = ctx.coverage
    hit = cov[(cov["study_set"] == s) & (cov["outcome"] == outcome)]
    return int(hit["studies"].iloc[0]) if len(hit) else 0


# ------------------------------------------------------------------------------------------ continuous

def put_continuous(c: Collector, ctx: Context, s: str, outcome: str, prefixes: list[str]) -> str:
    """Put one continuous outcome's keys; return 'pooled', 'single' or 'none' (for the set's counts)."""
    spec = ctx.dictionary[outcome]
    unit, digits = display_unit(spec), unit_digits(spec)
    summary_path, key_path = ctx.files.summaries[(s, outcome)], ctx.files.key_visits[(s, outcome)]
    summary = read_csv(summary_path)
    visit = _key_visit(key_path)
    changes = figure_data.study_changes(ctx.table[ctx.table["outcome"] == outcome], ctx.sets.get(s, []), spec,
                                        ctx.labels, summary, arms=ctx.arms)
    raw_all = ctx.raw_rows_for(frame=likelihood_rows(ctx, s, outcome))
    files_model = [summary_path, key_path, ctx.files.analysis_table]

    def put(suffix, value, kind="data", files=files_model, raw_rows=raw_all, **kw):
        c.put([f"{p}.{outcome}.{suffix}" for p in prefixes], value, kind=kind, files=files, raw_rows=raw_rows, **kw)

    put("label", spec.label, kind="config", files=[ctx.files.dictionary], raw_rows=())
    put("unit", "% change of the mean" if unit == "%" else unit, kind="config", files=[ctx.files.dictionary],
        raw_rows=())
    put("studies_total", fmt_count(_studies_total(ctx, s, outcome)), files=[ctx.files.coverage])
    if summary is None:
        for suffix in _CONTINUOUS_KEYS:
            put(suffix, NOT_ANALYSED, kind="model", files=[summary_path, key_path], raw_rows=())
        return "none"

    row = figure_data.finding(summary, changes, spec, visit) if visit is not None else None
    here = figure_data.at_visit(changes, visit) if visit is not None else changes.iloc[0:0]
    k = int(row["n_studies"]) if row is not None else 0
    n_pat = row["n_patients"] if row is not None and finite(row["n_patients"]) else 0
    here_raw = ctx.raw_rows_for(here["analysis_ids"].tolist()) if k else ()
    if visit is None:
        put("visit", "not applicable (no data)", files=[key_path])
        put("visit_text", "no follow-up visit", files=[key_path])
    else:
        put("visit", visit_number(visit), files=[key_path])
        put("visit_text", visit_text(visit), files=[key_path])
    put("n_studies", fmt_count(k), raw_rows=here_raw)
    put("n_patients", fmt_count(int(round(float(n_pat)))), raw_rows=here_raw)

    evidence = str(row.get("evidence", "")) if row is not None else ""
    pooled = evidence == "pooled" and finite(row.get("estimate"))
    if pooled or (evidence in ("interpolated", "prior_dominated") and finite(row.get("estimate"))):
        result = "pooled" if pooled else "none"
        status, summary_text = _put_modelled(put, row, spec, unit, digits, k, visit)
    elif k == 1:
        result = "single"
        status, summary_text = _put_single(put, ctx, row, here.iloc[0], unit, digits, visit, n_pat, key_path)
    elif k >= 2:  # several studies near the visit, but the model has no pooled estimate there
        result = "none"
        status, summary_text = _put_not_pooled(put, k, visit)
    else:
        result, status, summary_text = "none", NO_DATA, NO_DATA
        put("change", NO_DATA)
        for suffix in ("prediction", "p_improvement", "tau", "tau_note"):
            put(suffix, NONE, kind="model")
    put("status", status)
    put("summary", summary_text, kind="model" if pooled else "data",
        raw_rows=raw_all if result != "single" else ctx.raw_rows_for(str(here.iloc[0]["analysis_ids"]).split(";")))
    return result


def _put_modelled(put, row, spec, unit: str, digits: int, k: int, visit: float) -> tuple[str, str]:
    """A model estimate at the key visit (pooled, or interpolated/prior-dominated): change, prediction
    interval, P(improvement), τ with a note on how many studies inform it. Returns (status, summary)."""
    change = fmt_change(row["estimate"], row["lower"], row["upper"], digits, unit)
    prediction = (fmt_range(row["pi_lower"], row["pi_upper"], digits, unit) if finite(row.get("pi_lower"))
                  else "not estimable")
    p = fmt_probability(row["p_improvement"]) if finite(row.get("p_improvement")) else "not estimable"
    tau_digits = sig_digits("log ratio") if spec.analysis_scale == "log" else digits
    if finite(row.get("tau")):
        tau = fmt_estimate(row["tau"], row["tau_lower"], row["tau_upper"], tau_digits, level=LEVEL)
        if spec.analysis_scale == "log":
            tau += " on the log scale"
        km = row.get("n_studies_model")
        km = int(km) if finite(km) else k
        tau_note = (f"{fmt_count(km)} studies in the model: the posterior of \u03c4 mostly reflects its prior"
                    if km < 5 else f"{fmt_count(km)} studies in the model")
    else:
        tau, tau_note = "not estimable", "no between-study SD in the model"
    label = str(row.get("label") or "")
    where = "" if "month" in label else f" at {visit_text(visit)}"
    summary_text = (f"{with_unit_head(change, unit)[:-1]}; {LEVEL}% prediction interval {prediction}; "
                    f"P(improvement) {p}){where}, {label}")
    put("change", change, kind="model")
    put("prediction", prediction, kind="model")
    put("p_improvement", p, kind="model")
    put("tau", tau, kind="model")
    put("tau_note", tau_note, kind="model")
    return label, summary_text


def _put_single(put, ctx: Context, row, study, unit: str, digits: int, visit: float, n_pat,
                key_path: Path) -> tuple[str, str]:
    """One study at the key visit: its own change with its CI, nothing pooled. Returns (status, summary)."""
    raw_here = ctx.raw_rows_for(str(study["analysis_ids"]).split(";"))
    if finite(row.get("estimate")):
        change = fmt_change(row["estimate"], row["lower"], row["upper"], digits, unit, interval="CI")
    else:
        change = "not reported with a usable estimate"
    status = f"{study['label']}'s own estimate, not pooled"
    summary_text = (f"{with_unit_head(change, unit)} at {visit_text(visit)}, {study['label']}'s own estimate "
                    f"({fmt_count(int(round(float(n_pat))))} patients)")
    put("change", change, files=[key_path, ctx.files.analysis_table], raw_rows=raw_here)
    for suffix in ("prediction", "p_improvement", "tau", "tau_note"):
        put(suffix, SINGLE, kind="model")
    return status, summary_text


def _put_not_pooled(put, k: int, visit: float) -> tuple[str, str]:
    status = f"{fmt_count(k)} studies at this visit, no pooled estimate"
    summary_text = (f"reported by {fmt_count(k)} studies at {visit_text(visit)}, but the model gives no pooled "
                    "estimate at this visit")
    for suffix in ("change", "prediction", "p_improvement", "tau", "tau_note"):
        put(suffix, "not estimable (no pooled estimate at this visit)", kind="model")
    return status, summary_text


# ---------------------------------------------------------------------------------------------- binary

def put_binary(c: Collector, ctx: Context, s: str, outcome: str, prefixes: list[str]) -> None:
    """Put one binary outcome's keys: every follow-up duration in `summary`, the one with most studies (ties:
    the later) as `visit`, `proportion`, `n_studies`."""
    spec = ctx.dictionary[outcome]
    summary_path = ctx.files.summaries[(s, outcome)]
    summary = read_csv(summary_path, dtype={"study_id": str})
    raw_all = ctx.raw_rows_for(frame=likelihood_rows(ctx, s, outcome))

    def put(suffix, value, kind="model", files=(summary_path, ctx.files.analysis_table), raw_rows=raw_all):
        c.put([f"{p}.{outcome}.{suffix}" for p in prefixes], value, kind=kind, files=files, raw_rows=raw_rows)

    put("label", spec.label, kind="config", files=[ctx.files.dictionary], raw_rows=())
    if summary is None:
        for suffix in _BINARY_KEYS:
            put(suffix, NOT_ANALYSED, raw_rows=())
        return
    prop = summary[(summary["quantity"] == "proportion")]
    if prop.empty:
        put("visit", "not applicable (no data)")
        put("visit_text", "no follow-up visit")
        put("n_studies", "0")
        put("n_patients", "0")
        for suffix in ("status", "proportion", "summary"):
            put(suffix, "no study in this set reports it")
        put("prediction", NONE)
        put("tau", NONE)
        return
    pct = sig_digits("%")
    parts, (k, t_best, text_best, r_best) = _binary_durations(ctx, summary, prop, pct)
    put("visit", visit_number(t_best) if t_best else "not reported")
    put("visit_text", visit_text(t_best) if t_best else "a follow-up duration not reported")
    put("n_studies", fmt_count(k), kind="data")
    n_pat = int(r_best["n_patients"]) if finite(r_best["n_patients"]) else 0
    put("n_patients", fmt_count(n_pat), kind="data")
    put("status", str(r_best["label"]) if k >= 2 else "each study's own estimate, per follow-up duration")
    put("proportion", text_best.split(" at ")[0] if " at " in text_best else text_best)
    pred = summary[summary["quantity"] == "prediction"]
    put("prediction", fmt_range(100 * pred.iloc[0]["lower"], 100 * pred.iloc[0]["upper"], pct, "%")
        if len(pred) else SINGLE)
    tau_row = summary[summary["quantity"] == "tau"]
    put("tau", fmt_estimate(tau_row.iloc[0]["median"], tau_row.iloc[0]["lower"], tau_row.iloc[0]["upper"],
                            sig_digits("log ratio"), level=LEVEL) + " on the logit scale"
        if len(tau_row) else SINGLE)
    put("summary", "; ".join(parts))


def _binary_durations(ctx: Context, summary: pd.DataFrame, prop: pd.DataFrame, pct: int):
    """One phrase per follow-up duration (pooled, or each study's own estimate), and the headline duration as
    (n_studies, months, phrase, summary row): most studies, ties the later."""
    events = {}
    for r in summary[summary["quantity"] == "study_observed"].itertuples():
        events[(str(r.study_id), float(r.visit_months) if finite(r.visit_months) else None)] = str(r.note or "")
    parts, best = [], None
    durations = sorted({float(v) for v in prop["visit_months"] if finite(v)})
    for t in durations + ([None] if prop["visit_months"].isna().any() else []):
        at = prop[prop["visit_months"].isna()] if t is None else prop[(prop["visit_months"] - t).abs() < 1e-6]
        when = "at a follow-up duration not reported" if t is None else f"at {visit_text(t)}"
        pooled_rows = at[at["study_id"].isna()]
        if len(pooled_rows):
            r = pooled_rows.iloc[0]
            pred = summary[(summary["quantity"] == "prediction") & ((summary["visit_months"] - t).abs() < 1e-6)]
            text = fmt_change(100 * r["median"], 100 * r["lower"], 100 * r["upper"], pct, "%")
            if len(pred):
                text = (f"{text[:-1]}; {LEVEL}% prediction interval "
                        f"{fmt_range(100 * pred.iloc[0]['lower'], 100 * pred.iloc[0]['upper'], pct, '%')})")
            label = str(r["label"])
            parts.append(f"{text}, {label}" if "month" in label else f"{text} {when}, {label}")
            cand = (int(r["n_studies"]), t or 0.0, text, r)
        else:
            for r in at.sort_values("n_patients", ascending=False).itertuples():
                label = ctx.labels.get(r.study_id, r.study_id)
                note = events.get((str(r.study_id), t), str(r.note or ""))
                count = note.split(";")[0] if "/" in note.split(";")[0] else ""
                text = fmt_change(100 * r.median, 100 * r.lower, 100 * r.upper, pct, "%", interval="CI")
                text = text.replace(f"({LEVEL}% CI", f"({count}; exact {LEVEL}% CI" if count else f"({LEVEL}% CI", 1)
                parts.append(f"{text} {when}, {label}'s own estimate")
            cand = (1, t or 0.0, parts[-1], at.iloc[0])
        if best is None or cand[:2] > best[:2]:
            best = cand
    return parts, best
