"""Turn validated outcome rows into one tidy analysis table in canonical units, as means and SDs.

Each harmonised row keeps the raw row id(s) it came from, the method and every assumption, so that any pooled
number can be traced back to a table or page of a paper (docs/analysis_table.md describes the columns). A row
reported only as an estimate with its standard error or variance keeps the estimate as its mean and its SE in
`se`, with sd and n empty: it can be weighted, but there is no patient-level spread to invent.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from timecourse_meta.core.review import Arms
from timecourse_meta.data import conversions
from timecourse_meta.data.dictionary import UNIT_NOT_REPORTED, Outcome
from timecourse_meta.data.columns import TIME_UNITS

MEAN_STATISTICS = {"mean_sd", "mean_se", "mean_ci", "median_iqr", "median_range", "median_iqr_range"}
ESTIMATE_STATISTICS = {"estimate_se", "estimate_variance"}  # an estimate with its SE or variance, no n or SD
COLUMNS = [
    "analysis_id", "study_id", "arm", "arm_label", "outcome", "kind", "measure", "origin", "cohort", "time_months",
    "n", "mean", "sd", "se", "median", "events", "total", "unit", "analysis_scale", "direction_of_benefit", "method",
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


def _arm_size(studies: pd.DataFrame, study_id: str, arm: str, arms: Arms) -> float | None:
    """The arm's enrolled patients from the studies sheet (its column is named in config review.arms)."""
    row = studies.loc[studies["study_id"] == study_id]
    if row.empty:
        return None
    column = arms.intervention.n_column if arms.is_intervention(arm) else arms.comparator.n_column
    return _num(row.iloc[0][column])


def _missing_n(row: pd.Series, outcomes: pd.DataFrame, studies: pd.DataFrame,
               arms: Arms) -> tuple[float | None, str]:
    """n for a row that does not report it: the same cohort's baseline n, else the arm's enrolled n."""
    same = outcomes[
        (outcomes["study_id"] == row["study_id"]) & (outcomes["arm"] == row["arm"])
        & (outcomes["outcome"] == row["outcome"]) & (outcomes["cohort"] == row["cohort"])
        & (outcomes["time_value"] == 0) & outcomes["n"].notna()
    ]
    if not same.empty:
        n = float(same.iloc[0]["n"])
        return n, f"n not reported at this visit; n = {n:g} from the same cohort's baseline (row {same.iloc[0]['row_id']})"
    n = _arm_size(studies, row["study_id"], row["arm"], arms)
    if n is None:
        return None, ""
    return n, f"n not reported; n = {n:g} enrolled in the arm (studies sheet), an upper bound if patients dropped out"


def _source(rows) -> str:
    return ";".join(f"{r['source_url']}#{r['locator']}" for r in rows)


def harmonise_row(row: pd.Series, spec: Outcome | None, outcomes: pd.DataFrame, studies: pd.DataFrame, *,
                  arms: Arms) -> dict:
    """One raw row -> one harmonised row (values in the canonical unit, or the reason it cannot be pooled)."""
    out = {
        "study_id": row["study_id"], "arm": row["arm"], "arm_label": row.get("arm_label"),
        "outcome": row["outcome"], "kind": spec.kind if spec else None, "measure": row["measure"],
        "origin": "reported", "cohort": row["cohort"],
        "time_months": time_in_months(row.get("time_value"), row.get("time_unit")),
        "n": _num(row.get("n")), "mean": None, "sd": None, "se": None, "median": None, "events": None, "total": None,
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
    continuous = spec is not None and spec.kind == "continuous"
    if continuous and statistic in ESTIMATE_STATISTICS:
        _estimate(row, spec, out, reasons)
    elif continuous and statistic in MEAN_STATISTICS | {"median_only", "mean_only"}:
        factor = spec.factor(row["unit"]) if row["unit"] != UNIT_NOT_REPORTED else None
        if factor is None:
            out["unit"] = row["unit"]  # the value stays in the unit (not) reported
            reasons.append("unit not reported, so it cannot be put on the canonical scale")
        n = out["n"]
        if n is None and statistic in MEAN_STATISTICS:
            n, note = _missing_n(row, outcomes, studies, arms)
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


def _estimate(row: pd.Series, spec: Outcome, out: dict, reasons: list[str]) -> None:
    """An estimate with only its SE (or variance): mean = the estimate and se, both in the canonical unit; sd and
    n stay empty (they are not reported and are not back-calculated)."""
    factor = spec.factor(row["unit"]) if row["unit"] != UNIT_NOT_REPORTED else None
    if factor is None:
        out["unit"] = row["unit"]
        reasons.append("unit not reported, so it cannot be put on the canonical scale")
    scale = factor or 1.0
    se = conversions.standard_error(se=_num(row.get("se")), variance=_num(row.get("variance")))
    out["mean"], out["se"] = _num(row["mean"]) * scale, se * scale
    out["n"] = None
    method = "estimate_se" if row["statistic"] == "estimate_se" else "estimate_variance; se = sqrt(variance)"
    out["method"] = method + ("" if scale == 1.0 else f"; unit {row['unit']} x {scale:g}")


def _change_se(b: pd.Series, follow: pd.Series, correlation: float) -> float:
    """SE of a change from two SE-only means (or one SE-only and one with SD and n): the change-score formula
    applied to the standard errors, Var(m1 - m0) = se0^2 + se1^2 - 2 r se0 se1, which holds when the same patients
    are seen at both visits."""
    ses = [x["se"] if _num(x["se"]) is not None else conversions.standard_error(sd=_num(x["sd"]), n=_num(x["n"]))
           for x in (b, follow)]
    return conversions.change_sd(ses[0], ses[1], correlation)


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
        with_sd = all(_num(x["sd"]) is not None and _num(x["n"]) is not None for x in (b, follow))
        same = "" if with_sd else "the same patients at both visits (SE-only means)"
        rows.append({
            **follow.to_dict(),
            "measure": "change_from_baseline", "origin": "derived",
            "n": min(b["n"], follow["n"]) if with_sd else None,
            "mean": follow["mean"] - b["mean"],
            "sd": conversions.change_sd(b["sd"], follow["sd"], correlation) if with_sd else None,
            "se": None if with_sd else _change_se(b, follow, correlation),
            "method": "change_sd_from_r" if with_sd else "change_se_from_r",
            "assumption": "; ".join(
                x for x in (f"within-person correlation r = {correlation:g} (assumed)", same, b["assumption"],
                            follow["assumption"]) if x),
            "skewness_flag": bool(b["skewness_flag"] or follow["skewness_flag"]),
            "raw_row_ids": f"{b['raw_row_ids']};{follow['raw_row_ids']}",
            "source": f"{b['source']};{follow['source']}",
        })
    return pd.DataFrame(rows, columns=table.columns)


def harmonise(outcomes: pd.DataFrame, studies: pd.DataFrame, dictionary: dict[str, Outcome],
              correlation: float, *, arms: Arms) -> pd.DataFrame:
    """The analysis table: every raw outcome row harmonised, plus derived change scores; `se` is the standard
    error of the arm's mean at the visit (sd / sqrt(n), or the reported SE or sqrt(variance))."""
    rows = [harmonise_row(r, dictionary.get(r["outcome"]), outcomes, studies, arms=arms)
            for _, r in outcomes.iterrows()]
    table = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "analysis_id"])
    changes = derive_changes(table, correlation)
    table = pd.concat([table, changes], ignore_index=True) if not changes.empty else table
    table = table.sort_values(["outcome", "study_id", "arm", "cohort", "measure", "origin", "time_months"],
                              kind="stable", na_position="last").reset_index(drop=True)
    table.insert(0, "analysis_id", [f"h{i + 1:04d}" for i in range(len(table))])
    for column in ("n", "events", "total"):
        table[column] = table[column].astype("Float64").round(0).astype("Int64")
    sd, n = pd.to_numeric(table["sd"], errors="coerce"), table["n"].astype("Float64").astype(float)
    table["se"] = pd.to_numeric(table["se"], errors="coerce").fillna(sd / np.sqrt(n))
    return table


def excluded(row) -> bool:
    """True when a studies-sheet row has an `exclusion_reason`: listed in its sets' records, never analysed."""
    reason = row.get("exclusion_reason")
    return isinstance(reason, str) and reason.strip() not in ("", "nan")


def study_sets(studies: pd.DataFrame, *, analysed_only: bool = True) -> dict[str, list[str]]:
    """Study set name -> study ids, from the studies sheet's `study_sets` column: the studies each analysis
    uses (those without an `exclusion_reason`), or with `analysed_only=False` every record of the set (as the
    PRISMA flow counts them)."""
    sets: dict[str, list[str]] = {}
    for _, r in studies.iterrows():
        if analysed_only and excluded(r):
            continue
        for name in str(r["study_sets"]).split(";"):
            sets.setdefault(name, []).append(r["study_id"])
    return sets


def coverage(table: pd.DataFrame, sets: dict[str, list[str]], wanted: list[str], *, arms: Arms) -> pd.DataFrame:
    """Per outcome and study set: poolable studies, visits and patients of the intervention arm (what the
    models can use)."""
    rows = []
    pool = table[table["poolable"] & (table["arm"] == arms.intervention.id) & (table["origin"] == "reported")]
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
