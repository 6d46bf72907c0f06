"""Turn validated outcome rows into one tidy analysis table in canonical units, as means and SDs.

Each harmonised row keeps the raw row id(s) it came from, the method and every assumption, so that any pooled
number can be traced back to a table or page of a paper (docs/analysis_table.md describes the columns).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from timecourse_meta.data import conversions
from timecourse_meta.data.dictionary import UNIT_NOT_REPORTED, Outcome
from timecourse_meta.data.validation import TIME_UNITS

MEAN_STATISTICS = {"mean_sd", "mean_se", "mean_ci", "median_iqr", "median_range", "median_iqr_range"}
COLUMNS = [
    "analysis_id", "study_id", "arm", "arm_label", "outcome", "kind", "measure", "origin", "cohort", "time_months",
    "n", "mean", "sd", "median", "events", "total", "unit", "analysis_scale", "direction_of_benefit", "method",
    "assumption", "skewness_flag", "poolable", "not_poolable_reason", "raw_row_ids", "source",
]


def _num(value) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def time_in_months(value, unit) -> float | None:
    """Visit time in months; weeks x 12/52 and days x 12/365.25, as the sources convert."""
    value = _num(value)
    if value is None or unit is None:
        return None
    return round(value * TIME_UNITS[unit], 6)


def _arm_size(studies: pd.DataFrame, study_id: str, arm: str) -> float | None:
    row = studies.loc[studies["study_id"] == study_id]
    if row.empty:
        return None
    return _num(row.iloc[0]["n_msct" if arm == "MSCT" else "n_control"])


def _missing_n(row: pd.Series, outcomes: pd.DataFrame, studies: pd.DataFrame) -> tuple[float | None, str]:
    """n for a row that does not report it: the same cohort's baseline n, else the arm's enrolled n."""
    same = outcomes[
        (outcomes["study_id"] == row["study_id"]) & (outcomes["arm"] == row["arm"])
        & (outcomes["outcome"] == row["outcome"]) & (outcomes["cohort"] == row["cohort"])
        & (outcomes["time_value"] == 0) & outcomes["n"].notna()
    ]
    if not same.empty:
        n = float(same.iloc[0]["n"])
        return n, f"n not reported at this visit; n = {n:g} from the same cohort's baseline (row {same.iloc[0]['row_id']})"
    n = _arm_size(studies, row["study_id"], row["arm"])
    if n is None:
        return None, ""
    return n, f"n not reported; n = {n:g} enrolled in the arm (studies sheet), an upper bound if patients dropped out"


def _source(rows) -> str:
    return ";".join(f"{r['source_url']}#{r['locator']}" for r in rows)


def harmonise_row(row: pd.Series, spec: Outcome | None, outcomes: pd.DataFrame, studies: pd.DataFrame) -> dict:
    """One raw row -> one harmonised row (values in the canonical unit, or the reason it cannot be pooled)."""
    out = {
        "study_id": row["study_id"], "arm": row["arm"], "arm_label": row.get("arm_label"),
        "outcome": row["outcome"], "kind": spec.kind if spec else None, "measure": row["measure"],
        "origin": "reported", "cohort": row["cohort"],
        "time_months": time_in_months(row.get("time_value"), row.get("time_unit")),
        "n": _num(row.get("n")), "mean": None, "sd": None, "median": None, "events": None, "total": None,
        "unit": spec.canonical_unit if spec else row["unit"],
        "analysis_scale": spec.analysis_scale if spec else None,
        "direction_of_benefit": spec.direction_of_benefit if spec else None,
        "method": "", "assumption": _text(row.get("assumption")), "skewness_flag": False,
        "poolable": False, "not_poolable_reason": "", "raw_row_ids": row["row_id"], "source": _source([row]),
    }
    notes = [out["assumption"]] if out["assumption"] else []
    reasons = []
    if row["usable"] != "yes":
        reasons.append(f"raw row marked not usable: {row['not_usable_reason']}")
    statistic = row["statistic"]
    if spec is not None and spec.kind == "continuous" and statistic in MEAN_STATISTICS | {"median_only", "mean_only"}:
        factor = spec.factor(row["unit"]) if row["unit"] != UNIT_NOT_REPORTED else None
        if factor is None:
            out["unit"] = row["unit"]  # the value stays in the unit (not) reported
            reasons.append("unit not reported, so it cannot be put on the canonical scale")
        n = out["n"]
        if n is None and statistic in MEAN_STATISTICS:
            n, note = _missing_n(row, outcomes, studies)
            out["n"] = n
            if note:
                notes.append(note)
        if statistic == "median_only":
            out["median"] = _num(row["median"]) * (factor or 1.0)
            out["method"] = "median_only"
            reasons.append("median reported without any spread: listed, not pooled")
        elif statistic == "mean_only":
            out["mean"] = _num(row["mean"]) * (factor or 1.0)
            out["method"] = "mean_only"
            reasons.append("mean reported without any spread: listed, not pooled")
        elif n is None:
            reasons.append("n not reported and no enrolled arm size to fall back on")
        else:
            result = conversions.to_mean_sd(
                statistic, n=n, mean=_num(row.get("mean")), sd=_num(row.get("sd")), se=_num(row.get("se")),
                ci_lower=_num(row.get("ci_lower")), ci_upper=_num(row.get("ci_upper")),
                ci_level=_num(row.get("ci_level")) or 0.95, median=_num(row.get("median")),
                q1=_num(row.get("q1")), q3=_num(row.get("q3")), minimum=_num(row.get("min")),
                maximum=_num(row.get("max")),
            )
            scale = factor or 1.0
            out["mean"], out["sd"] = result.mean * scale, result.sd * scale
            out["method"] = result.method + ("" if scale == 1.0 else f"; unit {row['unit']} x {scale:g}")
            out["skewness_flag"] = bool(result.skewed)
            if result.skewed:
                notes.append("skewness check rejects symmetry: the median-based mean/SD may be biased")
    elif spec is not None and spec.kind == "binary":
        out["events"], out["total"] = _num(row.get("events")), _num(row.get("total"))
        out["method"] = statistic
        if statistic != "events_total":
            reasons.append("no events/total counts (percentage only): listed, not pooled")
    else:
        out["method"] = statistic
        kind = spec.kind if spec else "unknown"
        reasons.append(f"{kind} information: described, not pooled")
    if out["time_months"] is None and not reasons:
        reasons.append("visit time not reported")
    out["assumption"] = "; ".join(notes)
    out["poolable"] = not reasons
    out["not_poolable_reason"] = "; ".join(reasons)
    return out


def derive_changes(table: pd.DataFrame, correlation: float) -> pd.DataFrame:
    """Change from baseline for every poolable follow-up mean whose cohort has a poolable baseline mean.

    SD of the change from the two SDs and the assumed within-person correlation r (Cochrane Handbook 6.5.2.8);
    n is the smaller of the two n (the patients seen at both visits at most).
    """
    cont = table[(table["kind"] == "continuous") & table["poolable"] & (table["measure"] == "absolute")]
    keys = ["study_id", "arm", "outcome", "cohort"]
    base = cont[cont["time_months"] == 0].drop_duplicates(keys).set_index(keys)
    rows = []
    for _, follow in cont[cont["time_months"] > 0].iterrows():
        key = tuple(follow[k] for k in keys)
        if key not in base.index:
            continue
        b = base.loc[key]
        rows.append({
            **follow.to_dict(),
            "measure": "change_from_baseline", "origin": "derived",
            "n": min(b["n"], follow["n"]),
            "mean": follow["mean"] - b["mean"],
            "sd": conversions.change_sd(b["sd"], follow["sd"], correlation),
            "method": "change_sd_from_r",
            "assumption": "; ".join(
                x for x in (f"within-person correlation r = {correlation:g} (assumed)", b["assumption"],
                            follow["assumption"]) if x),
            "skewness_flag": bool(b["skewness_flag"] or follow["skewness_flag"]),
            "raw_row_ids": f"{b['raw_row_ids']};{follow['raw_row_ids']}",
            "source": f"{b['source']};{follow['source']}",
        })
    return pd.DataFrame(rows, columns=table.columns)


def harmonise(outcomes: pd.DataFrame, studies: pd.DataFrame, dictionary: dict[str, Outcome],
              correlation: float) -> pd.DataFrame:
    """The analysis table: every raw outcome row harmonised, plus derived change scores."""
    rows = [harmonise_row(r, dictionary.get(r["outcome"]), outcomes, studies) for _, r in outcomes.iterrows()]
    table = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "analysis_id"])
    changes = derive_changes(table, correlation)
    table = pd.concat([table, changes], ignore_index=True) if not changes.empty else table
    table = table.sort_values(["outcome", "study_id", "arm", "cohort", "measure", "origin", "time_months"],
                              kind="stable", na_position="last").reset_index(drop=True)
    table.insert(0, "analysis_id", [f"h{i + 1:04d}" for i in range(len(table))])
    for column in ("n", "events", "total"):
        table[column] = table[column].astype("Float64").round(0).astype("Int64")
    return table


def study_sets(studies: pd.DataFrame) -> dict[str, list[str]]:
    """Study set name -> study ids, from the studies sheet's `study_sets` column."""
    sets: dict[str, list[str]] = {}
    for _, r in studies.iterrows():
        for name in str(r["study_sets"]).split(";"):
            sets.setdefault(name, []).append(r["study_id"])
    return sets


def coverage(table: pd.DataFrame, sets: dict[str, list[str]], wanted: list[str]) -> pd.DataFrame:
    """Per outcome and study set: poolable studies, visits and patients (what the models can use)."""
    rows = []
    pool = table[table["poolable"] & (table["arm"] == "MSCT") & (table["origin"] == "reported")]
    for name in wanted:
        ids = sets.get(name, [])
        part = pool[pool["study_id"].isin(ids)]
        for outcome, group in part.groupby("outcome"):
            visits = sorted(group.loc[group["time_months"] > 0, "time_months"].dropna().unique())
            rows.append({
                "study_set": name, "outcome": outcome, "kind": group["kind"].iloc[0],
                "studies": group["study_id"].nunique(),
                "study_ids": ";".join(sorted(group["study_id"].unique())),
                "follow_up_visits": len(visits),
                "visit_months": ";".join(f"{v:g}" for v in visits),
                "rows": len(group),
            })
    return pd.DataFrame(rows, columns=["study_set", "outcome", "kind", "studies", "study_ids", "follow_up_visits",
                                       "visit_months", "rows"])
