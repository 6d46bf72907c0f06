"""One arm's rows of an outcome on the analysis scale: validity checks, duplicates, superseded follow-up means,
and the delta-method conversions of ``model_data``'s docstring.

A row gives the arm's mean at a visit with its per-patient SD and n. A row reported as an estimate with its
standard error (analysis-table column ``se``: the SE of the arm mean at that visit) is used when n or the SD is
missing: with n, its per-patient SD is se x sqrt(n) and it is an ordinary row; without n, ``n`` is NaN and the
spread carried (``sd_natural``, and ``s`` on the analysis scale) is the SE of the mean itself. The delta-method
conversions apply to an SE as to an SD.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from timecourse_meta.model.base import as_number, as_text


def is_median_only(row: pd.Series) -> bool:
    text = " ".join(as_text(row.get(c)).lower() for c in ("method", "not_poolable_reason", "statistic"))
    return "median_only" in text or "median only" in text or "median without spread" in text


def _percent_unit(unit: str) -> bool:
    u = unit.lower()
    return "%" in u or "percent" in u


def _to_scale(mean: float, sd: float, scale: str, unit: str) -> tuple[float, float, str]:
    """(mean, per-patient SD) on the analysis scale; NaN with a reason when impossible."""
    if scale == "identity":
        return mean, sd, ""
    if scale == "log":
        if not mean > 0:
            return float("nan"), float("nan"), "log scale needs a positive mean"
        return math.log(mean), sd / mean, ""
    if scale == "logit":
        m, s = (mean / 100.0, sd / 100.0) if _percent_unit(unit) else (mean, sd)
        if not 0 < m < 1:
            return float("nan"), float("nan"), "logit scale needs a mean strictly between 0 and 1"
        return math.log(m / (1 - m)), s / (m * (1 - m)), ""
    raise ValueError(f"unknown analysis_scale {scale!r}")


def _change_to_scale(d: float, sd_d: float, m_f: float, m_b: float, scale: str, unit: str
                     ) -> tuple[float, float, str]:
    """A change score on the natural scale -> (change, per-patient SD) on the analysis scale."""
    if scale == "identity":
        return d, sd_d, ""
    if not (np.isfinite(m_f) and np.isfinite(m_b)):
        return float("nan"), float("nan"), "no anchoring mean"
    if scale == "log":
        if not (m_f > 0 and m_b > 0):
            return float("nan"), float("nan"), "implied baseline or follow-up mean not positive"
        return math.log(m_f / m_b), sd_d / math.sqrt(m_f * m_b), ""
    if scale == "logit":
        f, b, s = (m_f / 100, m_b / 100, sd_d / 100) if _percent_unit(unit) else (m_f, m_b, sd_d)
        if not (0 < f < 1 and 0 < b < 1):
            return float("nan"), float("nan"), "implied means outside (0, 1)"
        lf, lb = math.log(f / (1 - f)), math.log(b / (1 - b))
        deriv = 1.0 / math.sqrt(f * (1 - f) * b * (1 - b))
        return lf - lb, s * deriv, ""
    raise ValueError(f"unknown analysis_scale {scale!r}")


def prepare_arm_rows(df: pd.DataFrame, scale: str, unit: str, exclude, supersede: bool = True,
                     keep_derived: bool = False) -> pd.DataFrame:
    """Rows of one arm on the analysis scale, invalid rows (and, unless ``keep_derived``, derived change rows)
    removed. Returns a frame with columns study_id, cohort, measure, origin, time_months, n, y, s,
    mean_natural, sd_natural, conversion, ... (``n`` NaN and ``s`` the SE of the mean for a row reported as an
    estimate with its SE only). With ``keep_derived`` a reported change score is preferred to a derived one of
    the same cohort and visit (used for the closed-form between-arm and comparator-arm changes, which are not
    in the likelihood and so cannot double count)."""
    rows = [r for r in (_usable_row(row, exclude, keep_derived) for _, row in df.iterrows()) if r is not None]
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out, anchors = _one_row_per_visit(out, exclude, supersede)
    return _on_analysis_scale(out, anchors, scale, unit, exclude)


def _usable_row(row: pd.Series, exclude, keep_derived: bool) -> dict | None:
    """The row's fields if it can enter an estimate, else None (``exclude`` records why). Spread: the per-patient
    SD with n; without SD, n x the SE (``se``); without n, the SE of the mean itself (``n`` NaN)."""
    measure = as_text(row.get("measure"), "absolute")
    if measure not in {"absolute", "change_from_baseline"}:
        exclude(row, f"unknown measure {measure!r}")
        return None
    if row["origin"] == "derived" and not keep_derived:
        exclude(row, "derived change score: the absolute rows it was computed from are used instead "
                     "(no double counting)")
        return None
    t = row["time_months"]
    if not np.isfinite(t):
        exclude(row, "visit time not reported")
        return None
    if measure == "change_from_baseline" and t <= 0:
        exclude(row, "change score at baseline")
        return None
    n, mean, sd = as_number(row.get("n")), as_number(row.get("mean")), as_number(row.get("sd"))
    se = as_number(row.get("se"))
    has_n, has_sd, has_se = np.isfinite(n) and n >= 1, np.isfinite(sd) and sd > 0, np.isfinite(se) and se > 0
    if not (has_n and has_sd) and has_se:
        n, sd = (n, se * math.sqrt(n)) if has_n else (float("nan"), se)
    elif not has_n:
        exclude(row, "n missing")
        return None
    if not np.isfinite(mean):
        exclude(row, "mean missing")
        return None
    if not (has_sd or has_se):
        exclude(row, "SD missing or not positive")
        return None
    return {
        "analysis_id": row.get("analysis_id"), "study_id": str(row["study_id"]), "cohort": row["cohort"],
        "measure": "change" if measure == "change_from_baseline" else "absolute", "time_months": t,
        "origin": row["origin"], "n": n, "mean_natural": mean, "sd_natural": sd,
        "raw_row_ids": as_text(row.get("raw_row_ids")), "_row": row,
    }


def _one_row_per_visit(out: pd.DataFrame, exclude, supersede: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Duplicates (same study, cohort, measure, time) dropped, a reported row kept before a derived one; with
    ``supersede`` an absolute follow-up mean gives way to the change score of the same cohort and visit.
    Returns the rows and the absolute means that remain available to anchor log-scale change scores."""
    out = out.assign(_derived=out["origin"] == "derived").sort_values("_derived", kind="stable")
    out = out.drop(columns="_derived").reset_index(drop=True)
    dup = out.duplicated(["study_id", "cohort", "measure", "time_months"], keep="first")
    for _, r in out[dup].iterrows():
        exclude(r["_row"], "duplicate of another row for the same study, cohort, measure and visit")
    out = out[~dup].reset_index(drop=True)

    chg_keys = {(r.study_id, r.cohort, r.time_months) for r in out.itertuples() if r.measure == "change"}
    drop = []
    for i, r in out.iterrows():
        if supersede and r["measure"] == "absolute" and r["time_months"] > 0 and \
                (r["study_id"], r["cohort"], r["time_months"]) in chg_keys:
            drop.append(i)
    anchors = out.copy()
    for i in drop:
        exclude(out.loc[i, "_row"], "absolute follow-up superseded by the reported change score of the same "
                                    "cohort and visit (same patients; no double counting)")
    return out.drop(index=drop).reset_index(drop=True), anchors


def _on_analysis_scale(out: pd.DataFrame, anchors: pd.DataFrame, scale: str, unit: str, exclude) -> pd.DataFrame:
    """Columns y, s and conversion on the analysis scale; rows that cannot be converted are excluded."""
    ys, ss, conv, keep = [], [], [], []
    for i, r in out.iterrows():
        if r["measure"] == "absolute":
            y, s, why = _to_scale(r["mean_natural"], r["sd_natural"], scale, unit)
            c = "" if scale == "identity" else f"{scale} mean (delta method)"
        elif scale == "identity":
            y, s, why, c = r["mean_natural"], r["sd_natural"], "", ""
        else:
            y, s, why, c = _change_on_scale(r, anchors, scale, unit)
        if why:
            exclude(r["_row"], why)
            continue
        ys.append(y)
        ss.append(s)
        conv.append(c)
        keep.append(i)
    out = out.loc[keep].reset_index(drop=True)
    out["y"] = ys
    out["s"] = ss
    out["conversion"] = conv
    return out


def _change_on_scale(r: pd.Series, anchors: pd.DataFrame, scale: str, unit: str) -> tuple[float, float, str, str]:
    """A log- or logit-scale change score anchored by the same cohort's follow-up (preferred) or baseline mean."""
    same = anchors[(anchors["study_id"] == r["study_id"]) & (anchors["cohort"] == r["cohort"])
                   & (anchors["measure"] == "absolute")]
    fu = same[np.isclose(same["time_months"], r["time_months"])]
    bl = same[same["time_months"] == 0]
    if len(fu):
        m_f = float(fu["mean_natural"].iloc[0])
        m_b = m_f - r["mean_natural"]
        c = "implied baseline = follow-up mean - change"
    elif len(bl):
        m_b = float(bl["mean_natural"].iloc[0])
        m_f = m_b + r["mean_natural"]
        c = "implied follow-up = baseline mean + change"
    else:
        m_f = m_b = float("nan")
        c = ""
    y, s, why = _change_to_scale(r["mean_natural"], r["sd_natural"], m_f, m_b, scale, unit)
    if why == "no anchoring mean":
        why = (f"change score of a {scale}-scale outcome without an absolute mean of the same study "
               "and cohort (at that visit or at baseline) to anchor it")
    return y, s, why, c
