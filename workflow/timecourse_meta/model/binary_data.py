"""Binary outcomes' model data: events/total of the intervention arm, one follow-up duration at a time (see
``model_data``'s docstring); only a duration that >= 2 studies report enters the likelihood."""
from __future__ import annotations

import numpy as np
import pandas as pd

from timecourse_meta.model.arms import binary_between_arm, binary_comparator
from timecourse_meta.model.base import (
    TIME_DECIMALS, ModelData, arm_settings, as_number, as_text, is_intervention, round_time,
)
from timecourse_meta.model.evidence import months_text


def binary_duration(t: float, grid, tolerance: float) -> float:
    """The follow-up duration a binary row is summarised at: the nearest grid visit if within ``tolerance``
    months, else its own (rounded) time; NaN when the time is not reported. Rows are pooled only within one
    duration, so 48-month events never join a 12-month bin."""
    if not np.isfinite(t):
        return float("nan")
    grid = np.asarray(sorted({float(g) for g in grid}), dtype=float)
    if grid.size:
        i = int(np.argmin(np.abs(grid - t)))
        if abs(grid[i] - t) <= float(tolerance) + 10 ** (-TIME_DECIMALS):
            return float(grid[i])
    return round_time(float(t))


def build_binary(df, outcome, study_set, spec, settings, exclude, listed, kind, label, unit, scale,
                 direction) -> ModelData:
    """The binary ModelData: intervention-arm rows of a duration >= 2 studies share are ``obs``; comparator rows
    give the between-arm risk differences and the comparator's own proportions (arms from ``settings["arms"]``)."""
    arms = arm_settings(settings)
    level = float(settings["interval_level"])
    grid = settings["visit_grid_months"]
    tol = float(settings.get("binary_time_tolerance_months", 0.5))
    rows = []
    control_rows = []
    for _, row in df.iterrows():
        e, n = as_number(row.get("events")), as_number(row.get("total"))
        if not (np.isfinite(e) and np.isfinite(n) and n >= 1 and 0 <= e <= n):
            exclude(row, "events/total missing or inconsistent")
            continue
        t = row["time_months"]
        rec = {"analysis_id": row.get("analysis_id"), "study_id": str(row["study_id"]), "cohort": row["cohort"],
               "measure": "events", "time_months": t, "bin_months": binary_duration(t, grid, tol), "events": e,
               "total": n, "raw_row_ids": as_text(row.get("raw_row_ids")), "_row": row}
        (rows if is_intervention(row["arm"], arms) else control_rows).append(rec)
    rows = _one_per_duration(pd.DataFrame(rows), exclude)
    control_rows = _one_per_duration(pd.DataFrame(control_rows), exclude)
    between = binary_between_arm(rows, control_rows, level)
    control_changes = binary_comparator(control_rows, level)
    for _, r in control_rows.iterrows() if len(control_rows) else []:
        exclude(r["_row"], f"{arms['comparator_short']} arm: not in the proportion model; used for the between-arm "
                           "difference")
    if rows.empty:
        return ModelData(outcome, study_set, kind, label, unit, "logit", direction, "no_data",
                         f"no poolable {arms['intervention_short']}-arm events/total rows", np.zeros(0), [],
                         pd.DataFrame(columns=["study_id"]), pd.DataFrame(), listed, between,
                         control_changes=control_changes)
    finite = rows[rows["bin_months"].notna()]
    counts = finite.groupby("bin_months")["study_id"].nunique()
    pooled_bins = sorted(float(b) for b, k in counts.items() if k >= 2)
    rows["pooled"] = rows["bin_months"].isin(pooled_bins)
    study_rows = rows.drop(columns=["_dist", "_notall"]).reset_index(drop=True)
    studies = sorted(rows["study_id"].unique())
    obs = rows[rows["pooled"]].reset_index(drop=True)
    visits = np.array(pooled_bins, dtype=float)
    obs["visit_idx"] = [pooled_bins.index(float(b)) for b in obs["bin_months"]]
    obs["study_idx"] = [studies.index(s) for s in obs["study_id"]]
    obs = obs.drop(columns=["_row", "_dist", "_notall"])
    if pooled_bins:
        status = "pooled"
        reason = (f"{obs['study_id'].nunique()} studies pooled within "
                  f"{', '.join(months_text(b) for b in pooled_bins)}; other durations: the study's own estimate")
    else:
        status = "single_study"
        reason = "no follow-up duration with >= 2 studies: each study's own events/total (exact interval)"
    return ModelData(outcome, study_set, kind, label, unit, "logit", direction, status, reason, visits, studies,
                     obs, pd.DataFrame(), listed, between, control_changes=control_changes,
                     study_rows=study_rows)


def _one_per_duration(rows: pd.DataFrame, exclude) -> pd.DataFrame:
    """One row per study and duration: cohort 'all' first, then the time closest to the duration."""
    if rows.empty:
        return rows
    rows = rows.copy()
    rows["_dist"] = np.abs(rows["time_months"].fillna(-1) - rows["bin_months"].fillna(-1))
    rows["_notall"] = rows["cohort"] != "all"
    rows = rows.sort_values(["study_id", "bin_months", "_notall", "_dist", "time_months"]).reset_index(drop=True)
    key = list(zip(rows["study_id"], rows["bin_months"].fillna(-999.0)))
    dup = pd.Series(key).duplicated().to_numpy()
    for _, r in rows[dup].iterrows():
        exclude(r["_row"], "another row of the same study falls in the same follow-up duration (closest kept)")
    return rows[~dup].reset_index(drop=True)
