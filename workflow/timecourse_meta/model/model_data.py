"""From the harmonised analysis table to the arrays one outcome's model needs.

`build_model_data(table, outcome, study_ids, outcome_spec, settings)` is the only entry point the workflow
needs. It selects the poolable rows of one outcome and one study set, puts them on the analysis scale, maps
visit times to a visit grid, builds the constant parts of the sampling covariance, records every excluded row
with its reason, lists ``median_only`` rows (never pooled) and computes the closed-form between-arm
differences of controlled studies. It does no sampling.

Conventions (documented here once, used by the model stage's modules):

* **Rows that enter the likelihood** (intervention arm only, ``settings["arms"]["intervention"]``):
  ``poolable`` rows with ``origin == "reported"`` of measure ``absolute`` or ``change_from_baseline``. Rows
  with ``origin == "derived"`` (a change score computed by harmonisation from a baseline and a follow-up row)
  are excluded: their source absolute rows are in the
  likelihood already, and using both would count the same patients twice. When a study reports both an
  absolute follow-up mean and a change score for the same cohort and visit, the change score is kept (its SD
  carries the within-patient correlation) and the absolute follow-up row is excluded for the same reason.
* **Visits**: times are rounded to ``TIME_DECIMALS`` months. The continuous model's grid is the union of the
  config grid (``visit_grid_months``) and the observed times, cut at the last observed follow-up; 0 is the
  baseline. A single study's grid is its own visit times only. Binary outcomes use follow-up durations: a time
  joins the nearest grid visit only within ``binary_time_tolerance_months`` (default 0.5), else it is its
  own duration (48, 60 months); rows without a time are "time not reported". Only a duration that >= 2
  studies report is pooled (those rows are ``obs``); any other is the study's own events/total with an exact
  interval. Durations are never pooled together.
* **Between-arm differences** (controlled studies): both estimands, follow-up means and change scores, with
  t intervals (n1 + n2 - 2 df); binary: risk difference with Newcombe's hybrid score interval. The control
  arm's own change (``control_changes``, the comparator arm) is the study's own estimate, never in the likelihood.
* **Analysis scale** (``outcome_spec["analysis_scale"]``): ``identity``; ``log`` (ratio of means: an absolute
  mean m with SD s enters as log m with per-patient SD s/m, the delta method); ``logit`` (m in (0, 1), or
  percent when the unit says so, enters as logit m with per-patient SD s/(m(1-m))).
  A reported change score d (SD s_d) of a log-scale outcome needs a mean to anchor it: the same study's,
  arm's and cohort's absolute follow-up mean m_f at that visit gives the implied baseline m_b = m_f - d
  (preferred, as the issue asks); else the cohort's baseline mean m_b gives m_f = m_b + d; else the row is
  excluded with a reason. It then enters as log(m_f/m_b) with per-patient SD s_d / sqrt(m_f m_b) (first-order
  delta method, the geometric mean of the two means as the linearisation point).
* **Sampling covariance** of the means of one study (all its absolute rows, all cohorts, form one block; its
  change rows another block; blocks are independent):
  Cov(j, k) = corr(t_j, t_k) * s_j * s_k * min(n_j, n_k) / (n_j * n_k) -- the "nested subsets" rule: the
  patients behind the smaller n are among those behind the larger one. corr(t, t) = 1 (the same visit in two
  cohorts is the same measurement on the overlapping patients). ``A`` holds s_j s_k min(n)/(n n) within a
  block and 0 elsewhere; ``lag_within`` holds the exponent of rho: CS -> 0 at the same time, 1 otherwise;
  AR(1) -> |t_j - t_k| / lag_months (``within_study_correlation.lag_months``, default 3: rho is the
  correlation of two visits three months apart). If a study's cohorts are not nested and the block is not
  positive definite, that study's cohorts become separate blocks (recorded in ``notes``).
* **Estimate with its standard error only** (column ``se`` filled, n or SD missing): the SE of the arm mean
  enters as it is (``arm_rows``); such a row has no patient count for the nested-subset rule, so it shares no
  covariance with the study's other rows (a block of its own) and counts no patients in the labels.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from timecourse_meta.model.arm_rows import is_median_only, prepare_arm_rows
from timecourse_meta.model.arms import between_arm_differences, comparator_changes, empty_between_arm
from timecourse_meta.model.base import (
    EXCLUDED_COLUMNS, OBS_COLUMNS, TIME_DECIMALS, ModelData, arm_settings, as_number, as_text, is_intervention, is_true,
    resolved_settings, round_time,
)
from timecourse_meta.model.binary_data import build_binary


def build_model_data(table: pd.DataFrame, outcome: str, study_ids: list[str], outcome_spec: dict,
                     settings: dict, study_set: str = "all") -> ModelData:
    """Select, convert and index the rows of one outcome and study set; see the module docstring."""
    settings = resolved_settings(settings)
    spec = dict(outcome_spec or {})
    kind = as_text(spec.get("kind"), "continuous")
    scale = as_text(spec.get("analysis_scale"), "identity")
    direction = as_text(spec.get("direction_of_benefit"), "none")
    unit = as_text(spec.get("canonical_unit"), "")
    label = as_text(spec.get("label"), outcome)

    df = table.copy()
    df = df[df["outcome"].astype(str) == outcome]
    df = df[df["study_id"].astype(str).isin([str(s) for s in study_ids])]
    df = df.reset_index(drop=True)
    if "cohort" not in df:
        df["cohort"] = "all"
    df["cohort"] = [as_text(c, "all") for c in df["cohort"]]
    df["origin"] = [as_text(c, "reported") for c in (df["origin"] if "origin" in df else ["reported"] * len(df))]
    arms = arm_settings(settings)
    df["arm"] = [as_text(a, arms["intervention"]) for a in df["arm"]]
    df["time_months"] = [round_time(as_number(t)) for t in df["time_months"]]
    df["poolable_bool"] = [is_true(p) for p in (df["poolable"] if "poolable" in df else [True] * len(df))]
    if not unit and "unit" in df and len(df):
        unit = as_text(df["unit"].iloc[0])

    excluded: list[dict] = []
    listed_rows: list[dict] = []

    def exclude(row, reason):
        excluded.append({
            "analysis_id": row.get("analysis_id"), "study_id": row.get("study_id"), "arm": row.get("arm"),
            "cohort": row.get("cohort"), "measure": row.get("measure"), "origin": row.get("origin"),
            "time_months": row.get("time_months"), "reason": reason,
        })

    # median-only and other non-poolable rows ---------------------------------------------------------------
    keep_idx = []
    for i, row in df.iterrows():
        if not row["poolable_bool"]:
            reason = as_text(row.get("not_poolable_reason"), "marked not poolable")
            if is_median_only(row):
                listed_rows.append({
                    "analysis_id": row.get("analysis_id"), "study_id": row.get("study_id"), "arm": row.get("arm"),
                    "cohort": row.get("cohort"), "measure": row.get("measure"),
                    "time_months": row.get("time_months"), "n": as_number(row.get("n")),
                    "value": as_number(row.get("mean")), "unit": as_text(row.get("unit"), unit), "reason": reason,
                    "source": as_text(row.get("source")),
                })
            exclude(row, f"not poolable: {reason}")
            continue
        keep_idx.append(i)
    df = df.loc[keep_idx].reset_index(drop=True)

    listed = pd.DataFrame(listed_rows, columns=["analysis_id", "study_id", "arm", "cohort", "measure",
                                                "time_months", "n", "value", "unit", "reason", "source"])

    if kind == "binary":
        md = build_binary(df, outcome, study_set, spec, settings, exclude, listed, kind, label, unit, scale,
                           direction)
    elif kind == "continuous":
        md = _build_continuous(df, outcome, study_set, spec, settings, exclude, listed, kind, label, unit,
                               scale, direction)
    else:
        for _, row in df.iterrows():
            exclude(row, f"outcome kind {kind!r} is not modelled")
        md = ModelData(outcome, study_set, kind, label, unit, scale, direction, "not_modelled",
                       f"outcome kind {kind!r} is described, not modelled", np.zeros(0), [],
                       pd.DataFrame(columns=OBS_COLUMNS), pd.DataFrame(), listed, empty_between_arm())
    md.excluded = pd.DataFrame(excluded, columns=EXCLUDED_COLUMNS)
    md.priors = dict(spec.get("priors") or {})
    return md


def _build_continuous(df, outcome, study_set, spec, settings, exclude, listed, kind, label, unit, scale,
                      direction) -> ModelData:
    """The continuous ModelData: intervention-arm rows indexed on the visit grid with the constant parts of
    their sampling covariance; comparator rows give the closed-form between-arm and comparator estimates."""
    notes: list[str] = []
    arms = arm_settings(settings)
    rows, between, control_changes = _arm_estimates(df, settings, scale, unit, exclude, arms)
    rows = _cohorts_with_change(rows, exclude)
    if rows.empty:
        return ModelData(outcome, study_set, kind, label, unit, scale, direction, "no_data",
                         f"no poolable {arms['intervention_short']}-arm rows with a follow-up visit", np.array([0.0]),
                         [], pd.DataFrame(columns=OBS_COLUMNS), pd.DataFrame(), listed, between, notes=notes,
                         control_changes=control_changes)

    studies = sorted(rows["study_id"].unique())
    status = "pooled" if len(studies) >= 2 else "single_study"
    status_reason = (f"{len(studies)} studies" if status == "pooled" else
                     "one study: its own estimate is reported, no pooled claim")
    rows, visits, levels = _index_rows(rows, studies, settings, status)
    A, lag, fixed = _within_covariance(rows, settings, notes)
    level_centre = np.zeros(len(levels))
    level_se = np.ones(len(levels))
    for k, (st, co) in enumerate(levels):
        base = rows[(rows["study_id"] == st) & (rows["cohort"] == co) & (rows["visit_idx"] == 0)]
        level_centre[k] = float(base["y"].iloc[0])
        level_se[k] = float(base["se"].iloc[0])

    # typical per-patient SD (data-derived priors); rows reported with an SE only carry no per-patient SD
    with_n = rows[np.isfinite(rows["n"].to_numpy(float))]
    ref = with_n.loc[with_n["measure"] == "absolute", "s"]
    if ref.empty:
        ref = with_n["s"]
    reference_sd = float(np.median(ref)) if len(ref) else float("nan")

    obs = rows.drop(columns=["_row"])[OBS_COLUMNS].copy()
    obs["n"] = obs["n"].astype(float)
    return ModelData(outcome, study_set, kind, label, unit, scale, direction, status, status_reason, visits,
                     studies, obs, pd.DataFrame(), listed, between, A=A, lag_within=lag, levels=levels,
                     level_centre=level_centre, level_se=level_se, reference_sd=reference_sd, notes=notes,
                     control_changes=control_changes, rho_within_fixed=fixed)


def _arm_estimates(df, settings, scale, unit, exclude, arms) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(intervention rows for the likelihood, between-arm differences, comparator-arm changes)."""
    level = float(settings["interval_level"])
    is_int = np.array([is_intervention(a, arms) for a in df["arm"]], dtype=bool)
    intervention, comparator = df[is_int], df[~is_int]
    rows = prepare_arm_rows(intervention, scale, unit, exclude)
    comparator_short = arms["comparator_short"]
    control_rows = prepare_arm_rows(comparator, scale, unit, lambda row, reason: exclude(
        row, f"{comparator_short} arm (between-arm difference only): {reason}"), supersede=False, keep_derived=True)
    # between-arm differences use every usable intervention row, derived change scores included (a superseded
    # follow-up mean pairs with the comparator arm's follow-up mean; neither is in the likelihood twice)
    between = between_arm_differences(prepare_arm_rows(intervention, scale, unit, lambda row, reason: None,
                                                       supersede=False, keep_derived=True), control_rows,
                                      scale, settings.get("between_arm_estimand", "follow_up_means"), level)
    control_changes = comparator_changes(control_rows, level)
    # comparator rows that were usable are not in the time-course likelihood: record that too
    for _, r in control_rows.iterrows() if len(control_rows) else []:
        exclude(r["_row"], f"{comparator_short} arm: not in the time-course model; used for the between-arm "
                           "difference")
    return rows, between, control_changes


def _cohorts_with_change(rows: pd.DataFrame, exclude) -> pd.DataFrame:
    """Absolute rows need their cohort's baseline and at least one follow-up of that cohort."""
    if not len(rows):
        return rows
    keep = []
    for (st, co), grp in rows[rows["measure"] == "absolute"].groupby(["study_id", "cohort"]):
        has_base = bool((grp["time_months"] == 0).any())
        has_fu = bool((grp["time_months"] > 0).any())
        if has_base and has_fu:
            keep.extend(grp.index)
        else:
            why = ("no baseline row for this cohort: its follow-up carries no change information"
                   if not has_base else "baseline only: no follow-up of this cohort in the likelihood")
            for _, r in grp.iterrows():
                exclude(r["_row"], why)
    keep.extend(rows.index[rows["measure"] == "change"])
    return rows.loc[sorted(keep)].reset_index(drop=True)


def _index_rows(rows: pd.DataFrame, studies: list[str], settings: dict, status: str):
    """The visit grid, and each row's visit, study, block (study x measure) and baseline level (study x cohort
    of absolute rows); ``se`` is s / sqrt(n), or s itself for a row reported with its SE only."""
    observed = sorted(set(rows["time_months"].tolist()))
    t_max = max(observed)
    if status == "pooled":
        grid = [round_time(float(t)) for t in settings["visit_grid_months"] if float(t) <= t_max + 1e-9]
        visits = np.array(sorted(set(grid) | set(observed) | {0.0}), dtype=float)
    else:
        visits = np.array(sorted(set(observed) | {0.0}), dtype=float)
    vindex = {float(t): i for i, t in enumerate(visits)}
    rows["visit_idx"] = [vindex[float(t)] for t in rows["time_months"]]
    rows["study_idx"] = [studies.index(s) for s in rows["study_id"]]
    n = rows["n"].astype(float)
    rows["se"] = np.where(np.isfinite(n), rows["s"] / np.sqrt(n), rows["s"])

    rows = rows.sort_values(["study_idx", "measure", "cohort", "time_months"]).reset_index(drop=True)
    block_keys = list(dict.fromkeys(zip(rows["study_id"], rows["measure"])))
    rows["block"] = [block_keys.index(k) for k in zip(rows["study_id"], rows["measure"])]
    levels = list(dict.fromkeys((r.study_id, r.cohort) for r in rows.itertuples() if r.measure == "absolute"))
    rows["level_idx"] = [levels.index((r.study_id, r.cohort)) if r.measure == "absolute" else -1
                         for r in rows.itertuples()]
    return rows, visits, levels


def _within_covariance(rows: pd.DataFrame, settings: dict, notes: list[str]):
    """(A, lag_within, fixed rho or None): the nested-subset scale matrix, positive definite for any rho
    (checked at extreme values; a study whose cohorts are not nested becomes independent cohort blocks), and
    the exponents of rho_within. With ``within_study_correlation.fixed`` the correlation is folded into A and
    the exponents are 0, so the model samples no rho_within."""
    wcfg = settings["within_study_correlation"]
    t = rows["time_months"].to_numpy(float)
    lag = np.zeros((len(rows), len(rows)))
    for idx in _groups_of(rows["study_idx"].to_numpy()):     # within a study only: memory linear in its rows
        lag[np.ix_(idx, idx)] = _lag_matrix(t[idx], wcfg.get("structure", "cs"), float(wcfg.get("lag_months", 3.0)))
    A = np.zeros((len(rows), len(rows)))
    for idx in _groups_of(rows["block"].to_numpy()):
        A[np.ix_(idx, idx)] = _cov_scale(rows.iloc[idx])
    for b in sorted(rows["block"].unique()):
        idx = np.flatnonzero(rows["block"].to_numpy() == b)
        if len(idx) < 2:
            continue
        if not _block_ok(A[np.ix_(idx, idx)], lag[np.ix_(idx, idx)]):
            sub = rows.iloc[idx]
            for co in sub["cohort"].unique():
                others = idx[sub["cohort"].to_numpy() != co]
                mine = idx[sub["cohort"].to_numpy() == co]
                A[np.ix_(mine, others)] = 0.0
                A[np.ix_(others, mine)] = 0.0
            notes.append(f"study {rows['study_id'].iloc[idx[0]]}: cohorts are not nested; treated as "
                         "independent blocks")
    fixed = wcfg.get("fixed")
    if fixed is None:
        return A, lag, None
    return A * correlation_from_lag(float(fixed), lag), np.zeros_like(lag), float(fixed)


def _groups_of(keys: np.ndarray) -> list[np.ndarray]:
    """Row indices of each distinct key."""
    order = np.argsort(keys, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(keys[order])) + 1)


def _cov_scale(rows: pd.DataFrame) -> np.ndarray:
    """s_j s_k min(n_j, n_k) / (n_j n_k) within a block, 0 elsewhere. A row reported with its SE only (n NaN,
    s = SE) is taken to describe the same patients as the block's other rows: se_j se_k."""
    s = rows["s"].to_numpy(float)
    n = rows["n"].to_numpy(float)
    same = rows["block"].to_numpy()[:, None] == rows["block"].to_numpy()[None, :]
    A = np.where(same, np.outer(s, s) * np.minimum.outer(n, n) / np.outer(n, n), 0.0)
    unknown = ~np.isfinite(n)
    if unknown.any():
        se = rows["se"].to_numpy(float)
        pair = unknown[:, None] | unknown[None, :]
        A = np.where(same & pair, np.outer(se, se), A)
    return A


def _block_ok(A: np.ndarray, lag: np.ndarray) -> bool:
    for rho in (0.001, 0.5, 0.999):
        S = A * correlation_from_lag(rho, lag)
        if np.linalg.eigvalsh(S).min() <= 1e-12 * np.abs(np.diag(S)).max():
            return False
    return True


def covariance(md: ModelData, rho_within: float) -> np.ndarray:
    """The sampling covariance of the observed means at a given within-study correlation (numpy)."""
    if md.n_obs == 0:
        return np.zeros((0, 0))
    return md.A * correlation_from_lag(rho_within, md.lag_within)


def _lag_matrix(t: np.ndarray, structure: str, lag_months: float) -> np.ndarray:
    dt = np.abs(t[:, None] - t[None, :])
    if structure == "cs":
        return (dt > 10 ** (-TIME_DECIMALS)).astype(float)
    if structure == "ar1":
        return dt / float(lag_months)
    raise ValueError(f"correlation structure must be 'cs' or 'ar1', got {structure!r}")


def correlation_from_lag(rho, lag):
    """rho ** lag with rho ** 0 == 1 (numpy)."""
    return np.where(lag == 0, 1.0, np.power(rho, lag))
