"""Adapters from model summaries and the analysis table to the plain frames the figures and tables draw.

The plotting and table functions know nothing of file formats; this module is the one place that reads the
model summary's long format (models.SUMMARY_COLUMNS) and puts study and pooled numbers on one display scale:
the outcome's unit for identity-scale outcomes, percent change of the mean for log-scale outcomes.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from timecourse_meta.core.review import Arms
from timecourse_meta.report import tables
from timecourse_meta.model.base import VISIT_TOLERANCE_MONTHS
from timecourse_meta.model.evidence import Evidence, label_study

VISIT_TOLERANCE = VISIT_TOLERANCE_MONTHS  # months: a study visit within this of a grid visit is shown at that visit


# the canonical units of the outcome dictionary as a reader expects them typeset
DISPLAY_UNITS = {"score": "points", "umol/L": "\u00b5mol/L", "mL/min/1.73 m2": "mL/min/1.73 m\u00b2",
                 "unit": "units"}


def display_unit(spec) -> str:
    """The unit figures, tables and text show: '%' (percent change of the mean) for log-scale outcomes, else
    the canonical unit typeset (umol/L as \u00b5mol/L, score as points)."""
    if spec.analysis_scale == "log":
        return "%"
    return DISPLAY_UNITS.get(spec.canonical_unit, spec.canonical_unit)


def _pct(x):
    return 100.0 * (np.exp(x) - 1.0)


def study_changes(table: pd.DataFrame, study_ids, spec, labels: dict, summary: pd.DataFrame | None = None, *,
                  arms: Arms) -> pd.DataFrame:
    """Each study's observed change (its intervention arm) on the display scale, with its 95% CI and n.

    For log-scale outcomes the change is a percent change of the mean. With the model `summary`, each study's
    own ratio of means from the model's ``study_observed`` rows is used (100 (exp(x) - 1) of the log ratio and
    its normal 95% CI, so an interval can never pass -100%). Without it, or for a visit the summary lacks, the
    change and its CI are divided by the same cohort's baseline mean (percent of baseline); where the baseline
    mean is not reported but the follow-up mean is, baseline = follow-up - change.
    """
    changes = tables.observed_changes(table, study_ids, arm=arms.intervention.id, labels=labels)
    changes = changes[changes["outcome"] == spec.name].copy()
    if spec.analysis_scale != "log" or changes.empty:
        return changes.reset_index(drop=True)
    own = pd.DataFrame()
    if summary is not None:
        own = summary[summary["quantity"] == "study_observed"]
    absolute = table[(table["outcome"] == spec.name) & (table["measure"] == "absolute") & table["poolable"]
                     & (table["arm"] == arms.intervention.id)]
    keep = []
    for i, row in changes.iterrows():
        hit = own[(own["study_id"] == row["study_id"])
                  & np.isclose(own["visit_months"].astype(float), float(row["time_months"]), atol=0.01)
                  ] if not own.empty else own
        if len(hit):
            r = hit.iloc[0]
            for column, value in (("estimate", r["median"]), ("lower", r["lower"]), ("upper", r["upper"])):
                changes.loc[i, column] = float(_pct(float(value)))
            changes.loc[i, "unit"] = "%"
            changes.loc[i, "basis"] = f"{row['basis']}; ratio of means on the log scale (model's study estimate)"
            keep.append(i)
            continue
        same = absolute[(absolute["study_id"] == row["study_id"]) & (absolute["cohort"] == row["cohort"])]
        base = same[same["time_months"] == 0]
        if not base.empty:
            m0 = float(base.iloc[0]["mean"])
        else:
            follow = same[np.isclose(same["time_months"].astype(float), row["time_months"])]
            if follow.empty:
                continue
            m0 = float(follow.iloc[0]["mean"]) - row["estimate"]
        if not m0 > 0:
            continue
        for column in ("estimate", "lower", "upper"):
            changes.loc[i, column] = 100.0 * row[column] / m0
        changes.loc[i, "unit"] = "%"
        keep.append(i)
    return changes.loc[keep].reset_index(drop=True)


def control_changes(summary: pd.DataFrame | None, spec, labels: dict) -> pd.DataFrame:
    """Each controlled study's control arm: its own change from baseline per visit (the summary's
    ``control_observed`` rows), on the display scale (percent change of the mean for log-scale outcomes), with
    ``control`` True, so that figures draw it beside its study's intervention arm and never pool it."""
    columns = ["study_id", "label", "time_months", "n", "estimate", "lower", "upper", "control"]
    if summary is None or summary.empty or "quantity" not in summary or spec.kind != "continuous":
        return pd.DataFrame(columns=columns)
    own = summary[summary["quantity"] == "control_observed"]
    rows = []
    for _, r in own.iterrows():
        values = [float(r[c]) for c in ("median", "lower", "upper")]
        if spec.analysis_scale == "log":
            values = [float(_pct(v)) for v in values]
        rows.append({"study_id": str(r["study_id"]), "label": labels.get(str(r["study_id"]), str(r["study_id"])),
                     "time_months": float(r["visit_months"]), "n": float(r["n_patients"]),
                     "estimate": values[0], "lower": values[1], "upper": values[2], "control": True})
    return pd.DataFrame(rows, columns=columns)


def with_control_rows(rows: pd.DataFrame, controls: pd.DataFrame, visit: float, *, arms: Arms) -> pd.DataFrame:
    """Forest rows at one visit: each study's intervention arm followed by its comparator arm (label '<study>,
    <comparator arm_name>', e.g. 'Beta 2015, control arm') when the comparator arm reports at that visit."""
    here = controls[(controls["time_months"] - visit).abs() <= VISIT_TOLERANCE] if len(controls) else controls
    if here.empty:
        return rows.assign(control=False) if len(rows) else rows
    out = []
    for _, r in rows.iterrows():
        out.append({**r.to_dict(), "control": False})
        for _, c in here[here["study_id"] == r["study_id"]].iterrows():
            out.append({**r.to_dict(), **c.to_dict(), "label": f"{c['label']}, {arms.comparator.arm_name}",
                        "control": True})
    return pd.DataFrame(out)


def _quantity(summary: pd.DataFrame, name: str) -> pd.DataFrame:
    return summary[(summary["quantity"] == name) & summary["visit_months"].notna()]


def pooled_curve(summary: pd.DataFrame, spec) -> pd.DataFrame:
    """Pooled change Δ(t) with its 95% CrI and 95% prediction interval, from month 0, on the display scale."""
    delta = _quantity(summary, "delta")
    if delta.empty or summary["status"].iloc[0] != "pooled":
        return pd.DataFrame(columns=["time_months", "estimate", "lower", "upper", "pi_lower", "pi_upper"])
    pred = _quantity(summary, "prediction").set_index("visit_months")
    rows = [{"time_months": 0.0, "estimate": 0.0, "lower": 0.0, "upper": 0.0, "pi_lower": 0.0, "pi_upper": 0.0}]
    for _, r in delta.iterrows():
        p = pred.loc[r["visit_months"]] if r["visit_months"] in pred.index else None
        rows.append({"time_months": r["visit_months"], "estimate": r["median"], "lower": r["lower"],
                     "upper": r["upper"], "pi_lower": p["lower"] if p is not None else math.nan,
                     "pi_upper": p["upper"] if p is not None else math.nan,
                     "n_studies": r["n_studies"], "n_patients": r["n_patients"], "p_improvement": r["p_improvement"],
                     "label": r["label"], "evidence": r.get("evidence", math.nan),
                     "n_studies_model": r.get("n_studies_model", math.nan),
                     "n_patients_model": r.get("n_patients_model", math.nan)})
    curve = pd.DataFrame(rows).sort_values("time_months").reset_index(drop=True)
    if spec.analysis_scale == "log":
        for column in ("estimate", "lower", "upper", "pi_lower", "pi_upper"):
            curve[column] = _pct(curve[column].astype(float))
    return curve


def key_visit(summary: pd.DataFrame, changes: pd.DataFrame, grid) -> float | None:
    """The visit a summary-of-findings row reports. Rule: among the model's visits (the summary's ``delta``
    rows), the one with the most studies reporting at it, if that is >= 2 (a ``pooled`` estimate), ties to the
    later visit; if no visit has >= 2 studies, the visit with the most patients reporting at it (ties to the
    later visit). Without ``delta`` rows the same rule runs on the observed study changes at the grid visits
    (within ``VISIT_TOLERANCE``) and at off-grid times. None without data."""
    counts: dict[float, tuple[int, float]] = {}
    if summary is not None and not summary.empty and "quantity" in summary:
        delta = _quantity(summary, "delta")
        for _, r in delta.iterrows():
            t = float(r["visit_months"])
            if t > 0 and int(r["n_studies"] if pd.notna(r["n_studies"]) else 0) > 0:
                counts[t] = (int(r["n_studies"]), float(r["n_patients"]) if pd.notna(r["n_patients"]) else 0.0)
    if not counts and changes is not None and not changes.empty:
        for visit in forest_visits(changes, grid):
            near = at_visit(changes, visit)
            if len(near):
                counts[float(visit)] = (near["study_id"].nunique(), float(near["n"].sum()))
    if not counts:
        return None
    if max(k for k, _ in counts.values()) >= 2:
        return float(max(counts, key=lambda t: (counts[t][0], t)))
    return float(max(counts, key=lambda t: (counts[t][1], t)))


def forest_visits(changes: pd.DataFrame, grid) -> list[float]:
    """The visits that get a forest plot: each grid visit with a study observed near it, plus each observed
    time near no grid visit (e.g. a 24-month follow-up), in time order."""
    if changes.empty:
        return []
    times = changes["time_months"].astype(float)
    grid = [float(v) for v in grid if v > 0]
    visits = [v for v in grid if ((times - v).abs() <= VISIT_TOLERANCE).any()]
    visits += sorted({round(t, 3) for t in times if t > 0 and all(abs(t - v) > VISIT_TOLERANCE for v in grid)})
    return sorted(visits)


def at_visit(changes: pd.DataFrame, visit: float) -> pd.DataFrame:
    """Per study, the observation nearest to the visit (within the tolerance)."""
    near = changes[(changes["time_months"] - visit).abs() <= VISIT_TOLERANCE].copy()
    near["distance"] = (near["time_months"] - visit).abs()
    near = near.sort_values(["label", "distance", "n"], ascending=[True, True, False])
    return near.drop_duplicates("study_id").drop(columns="distance").reset_index(drop=True)


def pooled_at(curve: pd.DataFrame, visit: float) -> dict | None:
    if curve.empty:
        return None
    hit = curve[np.isclose(curve["time_months"].astype(float), visit)]
    if hit.empty:
        return None
    r = hit.iloc[0]
    return {"estimate": r["estimate"], "lower": r["lower"], "upper": r["upper"], "pi_lower": r["pi_lower"],
            "pi_upper": r["pi_upper"], "evidence": r.get("evidence", math.nan), "label": r.get("label", math.nan),
            "n_studies_model": r.get("n_studies_model", math.nan),
            "n_patients_model": r.get("n_patients_model", math.nan)}


def tau_row(summary: pd.DataFrame) -> dict:
    tau = summary[summary["quantity"] == "tau"]
    if tau.empty:
        return {"tau": math.nan, "tau_lower": math.nan, "tau_upper": math.nan}
    r = tau.iloc[0]
    return {"tau": r["median"], "tau_lower": r["lower"], "tau_upper": r["upper"]}


def finding(summary: pd.DataFrame, changes: pd.DataFrame, spec, visit: float | None) -> dict | None:
    """One summary-of-findings row (the pooled change at the key visit, or the single study's own change),
    with its ``evidence`` category and ``label`` wording (the summary's, so figures, tables and text agree)."""
    if visit is None:
        return None
    curve = pooled_curve(summary, spec)
    here = at_visit(changes, visit)
    row = {"outcome": spec.name, "time_months": visit, "n_studies": here["study_id"].nunique(),
           "n_patients": float(here["n"].sum()) if not here.empty else math.nan, "unit": display_unit(spec),
           **tau_row(summary)}
    pooled = pooled_at(curve, visit)
    if pooled is not None and row["n_studies"] >= 2:
        delta = _quantity(summary, "delta")
        p = delta[np.isclose(delta["visit_months"].astype(float), visit)]["p_improvement"]
        row.update(pooled, p_improvement=float(p.iloc[0]) if not p.empty else math.nan)
    elif len(here) == 1:
        r = here.iloc[0]
        own = _quantity(summary, "study_observed") if {"quantity", "study_id"} <= set(summary) else None
        if own is not None:
            own = own[(own["study_id"] == r["study_id"])
                      & np.isclose(own["visit_months"].astype(float), float(r["time_months"]), atol=0.01)]
        label = own["label"].iloc[0] if own is not None and len(own) else label_study(r["study_id"], r["n"])
        row.update(estimate=r["estimate"], lower=r["lower"], upper=r["upper"], pi_lower=math.nan,
                   pi_upper=math.nan, p_improvement=math.nan, evidence=Evidence.STUDY_ESTIMATE, label=label,
                   n_studies_model=math.nan, n_patients_model=math.nan)
    else:
        row.update(estimate=math.nan, lower=math.nan, upper=math.nan, pi_lower=math.nan, pi_upper=math.nan,
                   p_improvement=math.nan, evidence=Evidence.NOT_ESTIMABLE,
                   label=f"not estimable at {visit:g} months", n_studies_model=math.nan, n_patients_model=math.nan)
    return row
