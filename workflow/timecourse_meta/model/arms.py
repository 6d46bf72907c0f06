"""Closed-form between-arm differences (intervention minus comparator) of controlled studies, and the comparator
arm's own change or proportion: the studies' own estimates, never in the time-course likelihood.

Column names: ``intervention_n``/``comparator_n`` (patients of each arm) and ``intervention_analysis_ids``/
``comparator_analysis_ids`` (the analysis-table rows each difference is computed from).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from timecourse_meta.model.base import as_text
from timecourse_meta.model.intervals import clopper_pearson, newcombe_interval, t_interval


#: between-arm estimands (config key ``model.between_arm_estimand``) and their wording in the summary
ESTIMANDS = {"follow_up_means": "follow-up means", "change_scores": "change scores"}

ESTIMAND_BASELINE = "baseline means"
ESTIMAND_RISK_DIFFERENCE = "risk difference"

BETWEEN_ARM_COLUMNS = [
    "study_id", "visit_months", "estimate", "se", "lower", "upper", "intervention_n", "comparator_n", "method",
    "intervention_analysis_ids", "comparator_analysis_ids", "estimand", "df", "primary"]
COMPARATOR_COLUMNS = ["study_id", "visit_months", "estimate", "se", "lower", "upper", "n", "df", "method",
                      "analysis_id"]


def empty_between_arm() -> pd.DataFrame:
    return pd.DataFrame(columns=BETWEEN_ARM_COLUMNS)


def mean_variance(r) -> float:
    """Variance of an arm mean: s^2 / n, or s^2 when ``s`` is the SE of the mean itself (n not reported)."""
    return r["s"] ** 2 / r["n"] if np.isfinite(r["n"]) else r["s"] ** 2


def t_df(*ns: float) -> float:
    """Degrees of freedom sum(n) - k of a t interval; infinite (a normal interval) when an n is not reported."""
    return float(sum(ns) - len(ns)) if all(np.isfinite(n) for n in ns) else float("inf")


def _arm_pairs(m: pd.DataFrame, c: pd.DataFrame, t: float, measure: str) -> list[tuple]:
    """(intervention row, comparator row) pairs of one study, visit and measure: per cohort both arms report,
    else the largest group of each arm."""
    mm = m[(m["time_months"] == t) & (m["measure"] == measure)]
    cc = c[(c["time_months"] == t) & (c["measure"] == measure)]
    pairs = []
    for co in sorted(set(mm["cohort"]) | set(cc["cohort"])):
        a, b = mm[mm["cohort"] == co], cc[cc["cohort"] == co]
        if len(a) and len(b):
            pairs.append((a.iloc[0], b.iloc[0]))
    if not pairs and len(mm) and len(cc):
        pairs.append((mm.sort_values("n", na_position="first").iloc[-1],
                      cc.sort_values("n", na_position="first").iloc[-1]))
    return pairs


def _difference(st, t, estimand, method, pairs, scale, level, why_primary: str = "") -> dict:
    """One inverse-variance difference over the cohort pairs, with its t interval (n1 + n2 - 2 df)."""
    d = np.array([a["y"] - b["y"] for a, b in pairs])
    v = np.array([mean_variance(a) + mean_variance(b) for a, b in pairs])
    w = 1.0 / v
    est = float(np.sum(w * d) / np.sum(w))
    se = float(math.sqrt(1.0 / np.sum(w)))
    n1 = float(np.max([a["n"] for a, _ in pairs]))
    n2 = float(np.max([b["n"] for _, b in pairs]))
    df = t_df(n1, n2)
    lo, hi = t_interval(est, se, df, level)
    origins = {str(a.get("origin", "reported")) for a, _ in pairs} | \
        {str(b.get("origin", "reported")) for _, b in pairs}
    how = method + (" (derived with the configured within-person r)" if "derived" in origins else "") + why_primary
    return {
        "study_id": st, "visit_months": float(t), "estimate": est, "se": se, "lower": lo, "upper": hi,
        "intervention_n": n1, "comparator_n": n2,
        "method": how + ("" if scale == "identity" else f" ({scale} scale)"),
        "intervention_analysis_ids": ";".join(str(a["analysis_id"]) for a, _ in pairs),
        "comparator_analysis_ids": ";".join(str(b["analysis_id"]) for _, b in pairs),
        "estimand": estimand, "df": df,
    }


def between_arm_differences(intervention: pd.DataFrame, comparator: pd.DataFrame, scale: str,
                            primary: str = "follow_up_means", level: float = 0.95) -> pd.DataFrame:
    """Closed-form between-arm differences (intervention minus comparator) per controlled study and visit, on
    the analysis scale, for BOTH estimands where the data allow: ``follow-up means`` (difference of the
    follow-up means; Cochrane Handbook 10.5.2: valid in a randomised trial) and ``change scores`` (difference
    of the change from baseline: reported, or derived by harmonisation from baseline and follow-up with the
    configured within-person r, ``origin == "derived"``). ``primary`` is the configured estimand where it is
    available at that study and visit, else the other one. At visit 0 the baseline difference is reported
    (never primary). Var = se1^2 + se2^2; interval t-based with n1 + n2 - 2 df (normal where an arm reports
    only an estimate with its SE). When one study reports a visit in several cohorts, the inverse-variance
    estimate of the per-cohort differences is used."""
    out = empty_between_arm()
    if intervention is None or comparator is None or intervention.empty or comparator.empty:
        return out
    if primary not in ESTIMANDS:
        raise ValueError(f"model.between_arm_estimand must be one of {sorted(ESTIMANDS)}, got {primary!r}")
    res = []
    for st in sorted(set(comparator["study_id"]) & set(intervention["study_id"])):
        m, c = intervention[intervention["study_id"] == st], comparator[comparator["study_id"] == st]
        for t in sorted(set(m["time_months"]) & set(c["time_months"])):
            options = ((("absolute", ESTIMAND_BASELINE, "baseline difference"),) if t <= 0 else
                       (("absolute", ESTIMANDS["follow_up_means"], "difference in follow-up means"),
                        ("change", ESTIMANDS["change_scores"], "difference in change scores")))
            found = [(estimand, method, pairs) for measure, estimand, method in options
                     if (pairs := _arm_pairs(m, c, t, measure))]
            names = [f[0] for f in found]
            chosen = ESTIMANDS[primary] if ESTIMANDS[primary] in names else (names[0] if t > 0 and names else None)
            for estimand, method, pairs in found:
                why = (f"; primary because {ESTIMANDS[primary]} are not reported"
                       if chosen is not None and estimand == chosen and chosen != ESTIMANDS[primary] else "")
                rec = _difference(st, t, estimand, method, pairs, scale, level, why)
                rec["primary"] = bool(estimand == chosen)
                res.append(rec)
    return pd.DataFrame(res, columns=out.columns) if res else out


def comparator_changes(comparator: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Each controlled study's comparator-arm change from baseline per visit (analysis scale): the reported
    change score, else the change harmonisation derived from baseline and follow-up with the configured
    within-person r; se = s / sqrt(n), t interval with n - 1 df. The comparator arm is not in the time-course
    model; this is the study's own estimate, shown beside the intervention arm."""
    if comparator is None or comparator.empty:
        return pd.DataFrame(columns=COMPARATOR_COLUMNS)
    chg = comparator[(comparator["measure"] == "change") & (comparator["time_months"] > 0)]
    res = []
    for (st, t), grp in chg.groupby(["study_id", "time_months"]):
        grp = grp.assign(_d=grp["origin"] == "derived", _all=grp["cohort"] != "all")
        r = grp.sort_values(["_d", "_all", "n"], ascending=[True, True, False]).iloc[0]
        se = float(r["s"] / math.sqrt(r["n"])) if np.isfinite(r["n"]) else float(r["s"])
        df = t_df(float(r["n"]))
        lo, hi = t_interval(float(r["y"]), se, df, level)
        res.append({"study_id": st, "visit_months": float(t), "estimate": float(r["y"]), "se": se, "lower": lo,
                    "upper": hi, "n": float(r["n"]), "df": df,
                    "method": ("change derived from baseline and follow-up (configured within-person r)"
                               if r["origin"] == "derived" else "reported change score")
                    + (f"; {r['conversion']}" if as_text(r.get("conversion")) else ""),
                    "analysis_id": str(r["analysis_id"])})
    return pd.DataFrame(res, columns=COMPARATOR_COLUMNS)


def binary_between_arm(intervention: pd.DataFrame, comparator: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Risk difference (intervention minus comparator) per controlled study and follow-up duration, closed form,
    with Newcombe's hybrid score interval (method 10; Wald is poor for 1 event in 12). ``se`` is the Wald SE,
    kept for reference only."""
    out = empty_between_arm()
    if intervention.empty or comparator.empty:
        return out
    res = []
    for st in sorted(set(intervention["study_id"]) & set(comparator["study_id"])):
        m, c = intervention[intervention["study_id"] == st], comparator[comparator["study_id"] == st]
        for t in sorted(set(m["bin_months"].dropna()) & set(c["bin_months"].dropna())):
            a = m[m["bin_months"] == t].iloc[0]
            b = c[c["bin_months"] == t].iloc[0]
            p1, p2 = a["events"] / a["total"], b["events"] / b["total"]
            se = math.sqrt(p1 * (1 - p1) / a["total"] + p2 * (1 - p2) / b["total"])
            lo, hi = newcombe_interval(a["events"], a["total"], b["events"], b["total"], level)
            res.append({"study_id": st, "visit_months": float(t), "estimate": p1 - p2, "se": se,
                        "lower": lo, "upper": hi, "intervention_n": a["total"], "comparator_n": b["total"],
                        "method": (f"risk difference {int(a['events'])}/{int(a['total'])} vs "
                                   f"{int(b['events'])}/{int(b['total'])} (Newcombe hybrid score interval)"),
                        "intervention_analysis_ids": str(a["analysis_id"]),
                        "comparator_analysis_ids": str(b["analysis_id"]),
                        "estimand": ESTIMAND_RISK_DIFFERENCE, "df": float("nan"), "primary": True})
    return pd.DataFrame(res, columns=out.columns) if res else out


def binary_comparator(comparator: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """The comparator arm's own proportion per study and duration with its exact (Clopper-Pearson) interval."""
    if comparator is None or comparator.empty:
        return pd.DataFrame(columns=COMPARATOR_COLUMNS)
    res = []
    for _, r in comparator.iterrows():
        lo, hi = clopper_pearson(r["events"], r["total"], level)
        res.append({"study_id": r["study_id"], "visit_months": float(r["bin_months"]),
                    "estimate": r["events"] / r["total"], "se": float("nan"), "lower": lo, "upper": hi,
                    "n": float(r["total"]), "df": float("nan"),
                    "method": f"{int(r['events'])}/{int(r['total'])} (Clopper-Pearson exact interval)",
                    "analysis_id": str(r["analysis_id"])})
    return pd.DataFrame(res, columns=COMPARATOR_COLUMNS)
