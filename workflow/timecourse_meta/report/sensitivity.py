"""The sensitivity report of one pooled outcome: each variant's estimate at the key visit, the verdict on the
main conclusion, and the per-set table of verdicts.

Inputs (written by the sensitivity fits): `variants.csv`, the rows of every variant's model summary
(`model.summary.SUMMARY_COLUMNS`) after the columns of `VARIANT_COLUMNS`; `power_scaling.csv`, the
power-scaling prior and likelihood sensitivity of each pooled parameter (`POWER_COLUMNS`).

The quantity is the one the summary-of-findings table shows: for a continuous outcome the pooled change Δ at its
key visit (the forest plot's, `results/tables/S/key_visits/O.csv`), as a percent change of the mean for
log-scale outcomes; for a binary outcome the pooled proportion at the duration with most studies (ties: the
later), as a percentage.

Verdict (config `sensitivity.verdict`): a continuous conclusion is `improvement` (P(improvement) >=
p_threshold), `worsening` (<= 1 - p_threshold) or `no clear change`; it is robust when every fitted variant
reaches the same conclusion, fragile otherwise, naming the variants that overturn it. A binary conclusion (the
pooled proportion) is robust when every fitted variant's median lies inside the main 95% CrI. Variants that
failed the convergence gate, or have no estimate at the key visit, are not assessable: named, never counted as
overturning.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from timecourse_meta.core.errors import EngineError
from timecourse_meta.core.values import to_float
from timecourse_meta.model.base import VISIT_TOLERANCE_MONTHS
from timecourse_meta.model.summary import SUMMARY_COLUMNS
from timecourse_meta.report.figure_data import display_unit
from timecourse_meta.report.tables import midsentence
from timecourse_meta.report.format import (DASH, fmt_count, fmt_estimate, fmt_interval, fmt_months, fmt_number,
                                           fmt_probability, outcome_digits, sig_digits)

VARIANT_COLUMNS = ["variant", "variant_group", "variant_label", "variant_status", "variant_note"]
GROUPS = {"main": "Main analysis", "prior": "Priors", "correlation": "Within-person correlation",
          "time_course": "Time course", "data": "Data"}
STATUSES = ("fitted", "failed_gate", "not_applicable", "same_as_main")
POWER_COLUMNS = ["parameter", "visit_months", "prior_sensitivity", "likelihood_sensitivity", "threshold",
                 "diagnosis"]
PARAMETER_NAMES = {"delta": "\u0394", "tau": "\u03c4", "rho_within": "\u03c1 within study",
                   "rho_between": "\u03c1 between studies", "mu": "\u03bc"}
IMPROVEMENT, WORSENING, NO_CLEAR = "improvement", "worsening", "no clear change"
ROBUST, FRAGILE, NOT_ASSESSABLE, NO_VERDICT = "robust", "fragile", "not assessable", "no verdict"
TABLE_COLUMNS = ["Variant", "Group", "Estimate (95% CrI)", "P(improvement)", "Studies (patients)", "Conclusion",
                 "Status"]
VERDICT_COLUMNS = ["Outcome", "Visit (months)", "Main estimate (95% CrI)", "P(improvement)", "Main conclusion",
                   "Verdict", "Variants fitted", "Not assessable", "Prior sensitivity"]


class SensitivityError(EngineError, ValueError):
    """A sensitivity results file does not have the expected columns or values."""


def settings(verdict: Mapping | None) -> dict:
    """The verdict rule's thresholds (config `sensitivity.verdict`, defaults in the schema)."""
    p = to_float((verdict or {}).get("p_threshold", 0.95))
    if not 0.5 < p < 1:
        raise SensitivityError(f"config key 'sensitivity.verdict.p_threshold' = {p!r}: expected a number "
                               "between 0.5 and 1 (exclusive)")
    return {"p_threshold": p}


# ---------------------------------------------------------------------------------------------- reading

def load_variants(path: str | Path) -> pd.DataFrame:
    """variants.csv, checked: the variant columns then SUMMARY_COLUMNS, known statuses, one group per variant."""
    frame = pd.read_csv(path, dtype={"study_id": str, "variant": str, "variant_note": str})
    expected = VARIANT_COLUMNS + SUMMARY_COLUMNS
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise SensitivityError(f"{path}: missing column(s) {', '.join(missing)}; expected the columns "
                               f"{', '.join(VARIANT_COLUMNS)} followed by the model summary's columns")
    for i, r in frame.iterrows():
        if r["variant_status"] not in STATUSES:
            raise SensitivityError(f"{path}, row {i + 2}, column 'variant_status': value {r['variant_status']!r}; "
                                   f"expected one of {', '.join(STATUSES)}")
        if r["variant_group"] not in GROUPS:
            raise SensitivityError(f"{path}, row {i + 2}, column 'variant_group': value {r['variant_group']!r}; "
                                   f"expected one of {', '.join(GROUPS)}")
    if not (frame["variant"] == "main").any():
        raise SensitivityError(f"{path}, column 'variant': no row of variant 'main' (the main analysis, which every "
                               "other variant is compared with)")
    for column in ("variant_note", "variant_label"):
        frame[column] = frame[column].fillna("").astype(str)
    return frame


def load_power_scaling(path: str | Path | None) -> pd.DataFrame | None:
    """power_scaling.csv, checked for its columns; None without a file."""
    if not path or not Path(path).is_file():
        return None
    frame = pd.read_csv(path, dtype={"parameter": str, "diagnosis": str})
    missing = [c for c in POWER_COLUMNS if c not in frame.columns]
    if missing:
        raise SensitivityError(f"{path}: missing column(s) {', '.join(missing)}; expected "
                               f"{', '.join(POWER_COLUMNS)}")
    frame["diagnosis"] = frame["diagnosis"].fillna("-").astype(str)
    return frame


def read_key_visit(path: str | Path | None) -> float | None:
    """The forest plot's key visit (results/tables/S/key_visits/O.csv), None without one."""
    if not path or not Path(path).is_file():
        return None
    frame = pd.read_csv(path)
    if frame.empty or "key_visit_months" not in frame:
        raise SensitivityError(f"{path}: expected a column 'key_visit_months' with one row")
    v = to_float(frame["key_visit_months"].iloc[0])
    return v if math.isfinite(v) else None


# --------------------------------------------------------------------------------------------- estimates

def _quantity(spec) -> str:
    return "proportion" if spec.kind == "binary" else "delta"


def binary_key_visit(rows: pd.DataFrame) -> float | None:
    """The duration with most studies among the pooled proportions (ties: the later), as the manuscript's
    binary headline; None without a pooled proportion."""
    pooled = rows[(rows["quantity"] == "proportion") & rows["study_id"].isna() & rows["visit_months"].notna()]
    if pooled.empty:
        return None
    best = max(pooled.itertuples(), key=lambda r: (to_float(r.n_studies), float(r.visit_months)))
    return float(best.visit_months)


def key_visit(main_rows: pd.DataFrame, spec, key_visit_months: float | None) -> float | None:
    """The visit of the report: the forest plot's key visit for a continuous outcome, the duration with most
    studies for a binary one."""
    return binary_key_visit(main_rows) if spec.kind == "binary" else key_visit_months


def _estimate_at(rows: pd.DataFrame, spec, visit: float) -> dict | None:
    """One variant's quantity at the visit on the display scale (the pooled row, else a single study's own
    row within the visit tolerance, nearest first); None when it has none."""
    q = rows[(rows["quantity"] == _quantity(spec)) & rows["visit_months"].notna()].copy()
    if q.empty:
        return None
    q["distance"] = (q["visit_months"].astype(float) - visit).abs()
    q = q[q["distance"] <= VISIT_TOLERANCE_MONTHS]
    if q.empty:
        return None
    q["single"] = q["study_id"].notna()
    r = q.sort_values(["single", "distance"]).iloc[0]
    values = [to_float(r[c]) for c in ("median", "lower", "upper")]
    if spec.kind == "binary":
        values = [100.0 * v for v in values]
    elif spec.analysis_scale == "log":
        values = [100.0 * math.expm1(v) for v in values]
    return {"estimate": values[0], "lower": values[1], "upper": values[2],
            "p_improvement": to_float(r["p_improvement"]), "n_studies": to_float(r["n_studies"]),
            "n_patients": to_float(r["n_patients"]), "evidence": str(r["evidence"]),
            "visit_months": float(r["visit_months"])}


def conclusion(p_improvement: float, p_threshold: float) -> str:
    """improvement / worsening / no clear change from P(improvement)."""
    if not math.isfinite(p_improvement):
        return DASH
    if p_improvement >= p_threshold:
        return IMPROVEMENT
    if p_improvement <= 1 - p_threshold:
        return WORSENING
    return NO_CLEAR


def variant_results(variants: pd.DataFrame, spec, visit: float | None, p_threshold: float) -> pd.DataFrame:
    """One row per variant (in file order, main first): its group, label, status and note, and its estimate at
    the visit (NaN where none) with its conclusion; `assessable` says whether it takes part in the verdict."""
    out = []
    order = ["main"] + [v for v in dict.fromkeys(variants["variant"]) if v != "main"]
    for name in order:
        rows = variants[variants["variant"] == name]
        if rows.empty:
            continue
        first = rows.iloc[0]
        rec = {"variant": name, "group": first["variant_group"], "label": first["variant_label"] or name,
               "status": first["variant_status"], "note": first["variant_note"], "estimate": math.nan,
               "lower": math.nan, "upper": math.nan, "p_improvement": math.nan, "n_studies": math.nan,
               "n_patients": math.nan, "evidence": "", "conclusion": DASH, "assessable": False}
        if rec["status"] == "fitted" and visit is not None:
            found = _estimate_at(rows, spec, visit)
            if found is not None:
                rec.update(found, conclusion=conclusion(found["p_improvement"], p_threshold)
                           if spec.kind != "binary" else DASH)
                rec["assessable"] = True
            elif not rec["note"]:
                rec["note"] = f"no estimate at {fmt_months(visit)} months"
        out.append(rec)
    frame = pd.DataFrame(out)
    rank = {g: i for i, g in enumerate(GROUPS)}
    return frame.sort_values("group", key=lambda g: g.map(rank).fillna(len(rank)), kind="stable").reset_index(
        drop=True)


# ----------------------------------------------------------------------------------------------- verdict

@dataclass
class Verdict:
    """The verdict on one outcome's pooled conclusion at its key visit."""

    outcome: str
    label: str
    kind: str
    visit: float | None
    verdict: str                                  # robust, fragile, not assessable, no verdict
    text: str                                     # one reader's line
    conclusion: str = DASH                        # the main analysis's conclusion
    main: dict = field(default_factory=dict)      # the main estimate (display scale)
    overturning: list = field(default_factory=list)      # (label, what it shows)
    overturning_variants: list = field(default_factory=list)  # their variant ids
    not_assessable: list = field(default_factory=list)   # (label, why)
    n_fitted: int = 0
    prior_sensitivity: str = "not assessed"


def _p_text(p: float) -> str:
    return f"P(improvement) {fmt_probability(p)}" if math.isfinite(p) else "no P(improvement)"


def _reason(r: Mapping) -> str:
    if r["status"] == "failed_gate":
        return "failed the convergence gate" + (f": {r['note']}" if r["note"] else "")
    return r["note"] or r["status"].replace("_", " ")


def judge(results: pd.DataFrame, spec, visit: float | None, p_threshold: float, digits: int) -> Verdict:
    """The verdict from `variant_results` (module docstring)."""
    base = dict(outcome=spec.name, label=spec.label, kind=spec.kind, visit=visit)
    main = results[results["variant"] == "main"]
    if main.empty:
        raise SensitivityError(f"outcome '{spec.name}': no variant 'main' in the sensitivity results")
    m = main.iloc[0]
    if m["status"] != "fitted" or not math.isfinite(to_float(m["estimate"])):
        at = f"at {fmt_months(visit)} months" if visit is not None else "at a key visit"
        why = _reason(m) if m["status"] != "fitted" else f"no pooled estimate {at}"
        return Verdict(verdict=NO_VERDICT, text=f"no verdict: {why}", **base)
    if str(m.get("evidence")) == "study_estimate":  # one study's own numbers: no pooled conclusion to test
        return Verdict(verdict=NO_VERDICT, text="no verdict: a single study's own estimate, nothing pooled",
                       main=m.to_dict(), conclusion=m["conclusion"], **base)
    others = results[results["variant"] != "main"]
    fitted = others[others["assessable"]]
    lost = others[(~others["assessable"]) & others["status"].isin(["fitted", "failed_gate"])]
    unassessed = [(midsentence(r["label"]), _reason(r)) for _, r in lost.iterrows()]
    if spec.kind == "binary":
        lo, hi = float(m["lower"]), float(m["upper"])
        held = "its median inside the main 95% CrI"
        moved = fitted[~fitted["estimate"].between(lo, hi)]
        overturn = [(midsentence(r["label"]),
                     f"{fmt_number(r['estimate'], digits)}% (outside {fmt_interval(lo, hi, digits, True)})")
                    for _, r in moved.iterrows()]
        main_conclusion = DASH
    else:
        main_conclusion = m["conclusion"]
        held = {IMPROVEMENT: f"improvement (P(improvement) \u2265 {fmt_number(p_threshold, 2)})",
                WORSENING: f"worsening (P(improvement) \u2264 {fmt_number(1 - p_threshold, 2)})"}.get(
            main_conclusion, main_conclusion)
        moved = fitted[fitted["conclusion"] != main_conclusion]
        overturn = [(midsentence(r["label"]), _p_text(r["p_improvement"])) for _, r in moved.iterrows()]
    common = dict(conclusion=main_conclusion, main=m.to_dict(), not_assessable=unassessed,
                  n_fitted=len(fitted), **base)
    tail = f"; not assessable: {', '.join(lab for lab, _ in unassessed)}" if unassessed else ""
    if overturn:
        named = "; ".join(f"{lab}, {what}" for lab, what in overturn)
        return Verdict(verdict=FRAGILE, text=f"fragile: {named}{tail}", overturning=overturn,
                       overturning_variants=list(moved["variant"]), **common)
    if fitted.empty:
        return Verdict(verdict=NOT_ASSESSABLE, text=f"not assessable: no variant could be compared{tail}",
                       **common)
    where = "the one fitted variant" if len(fitted) == 1 else f"all {fmt_count(len(fitted))} fitted variants"
    return Verdict(verdict=ROBUST, text=f"robust: {held} in {where}{tail}", **common)


def prior_flags(power: pd.DataFrame | None, visit: float | None) -> str:
    """The power-scaling diagnosis of the key visit's pooled parameters and of the hyperparameters, in words
    ("none flagged" when every diagnosis is '-')."""
    if power is None:
        return "not assessed"
    if power.empty:
        return "none flagged"
    t = pd.to_numeric(power["visit_months"], errors="coerce")
    here = power[t.isna() | ((t - (visit if visit is not None else np.inf)).abs() <= VISIT_TOLERANCE_MONTHS)]
    flags = []
    for _, r in here.iterrows():
        if r["diagnosis"].strip() in ("-", "", DASH):
            continue
        name = PARAMETER_NAMES.get(r["parameter"], r["parameter"])
        if pd.notna(to_float(r["visit_months"])) and math.isfinite(to_float(r["visit_months"])):
            name += f" at {fmt_months(r['visit_months'])} months"
        flags.append(f"{r['diagnosis']} ({name})")
    return "; ".join(flags) if flags else "none flagged"


def digits_of(spec) -> int:
    """Decimals of the displayed quantity: percent for log-scale and binary outcomes, else the outcome's."""
    return sig_digits("%") if spec.kind == "binary" or spec.analysis_scale == "log" else outcome_digits(spec)


def unit_of(spec) -> str:
    """'%' for binary (a proportion as a percentage) and log-scale outcomes, else the display unit."""
    return "%" if spec.kind == "binary" else display_unit(spec)


def assess(variants: pd.DataFrame, power: pd.DataFrame | None, spec, key_visit_months: float | None,
           verdict_settings: Mapping) -> tuple[pd.DataFrame, Verdict]:
    """One outcome: the variants' results at the key visit and the verdict (with its prior-sensitivity flags)."""
    p_threshold = settings(verdict_settings)["p_threshold"]
    visit = key_visit(variants[variants["variant"] == "main"], spec, key_visit_months)
    results = variant_results(variants, spec, visit, p_threshold)
    verdict = judge(results, spec, visit, p_threshold, digits_of(spec))
    if verdict.verdict != NO_VERDICT:
        verdict.prior_sensitivity = prior_flags(power, visit)
    return results, verdict


# ---------------------------------------------------------------------------------------------- tables

def _estimate_cell(r: Mapping, digits: int, percent: bool) -> str:
    est, lo, hi = (to_float(r[c]) for c in ("estimate", "lower", "upper"))
    if not math.isfinite(est):
        return DASH
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return fmt_number(est, digits) + ("%" if percent else "") + " (no interval)"
    interval = "CI" if r.get("evidence") == "study_estimate" else "CrI"
    return fmt_estimate(est, lo, hi, digits, interval=interval, percent=percent)


def _studies_cell(r: Mapping) -> str:
    k, n = to_float(r["n_studies"]), to_float(r["n_patients"])
    if not math.isfinite(k):
        return DASH
    return f"{fmt_count(int(k))} ({fmt_count(int(n))})" if math.isfinite(n) else fmt_count(int(k))


def _status_cell(r: Mapping) -> str:
    words = {"fitted": "fitted", "failed_gate": "not assessable: failed the convergence gate",
             "not_applicable": "not applicable", "same_as_main": "same as the main analysis"}[r["status"]]
    if r["status"] == "fitted" and not r["assessable"] and r["variant"] != "main":
        words = "not assessable"
    if r["status"] == "fitted" and r.get("evidence") not in ("", "pooled"):
        words += f" ({str(r['evidence']).replace('_', ' ')})"
    return f"{words}: {r['note']}" if r["note"] else words


def variant_table(results: pd.DataFrame, spec) -> pd.DataFrame:
    """The table a reader sees: one row per variant, numbers through the formatter."""
    digits, percent = digits_of(spec), unit_of(spec) == "%"
    rows = []
    for _, r in results.iterrows():
        p = to_float(r["p_improvement"])
        rows.append({"Variant": r["label"], "Group": GROUPS.get(r["group"], r["group"]),
                     "Estimate (95% CrI)": _estimate_cell(r, digits, percent),
                     "P(improvement)": fmt_probability(p) if math.isfinite(p) else DASH,
                     "Studies (patients)": _studies_cell(r), "Conclusion": r["conclusion"],
                     "Status": _status_cell(r)})
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def verdict_row(v: Verdict, spec) -> dict:
    """One outcome of the per-set verdict table."""
    unit = unit_of(spec)
    head = f"{spec.label} ({'% change' if unit == '%' and spec.kind != 'binary' else unit})"
    m = v.main
    has = bool(m) and math.isfinite(to_float(m.get("estimate")))
    p = to_float(m.get("p_improvement")) if has else math.nan
    return {"Outcome": head, "Visit (months)": fmt_months(v.visit) if v.visit is not None else DASH,
            "Main estimate (95% CrI)": _estimate_cell(m, digits_of(spec), unit == "%") if has else DASH,
            "P(improvement)": fmt_probability(p) if math.isfinite(p) else DASH,
            "Main conclusion": (v.conclusion if spec.kind != "binary" else ("pooled proportion" if has else DASH))
            + (f" ({evidence_words(m)})" if has and evidence_words(m) else ""),
            "Verdict": v.text, "Variants fitted": fmt_count(v.n_fitted),
            "Not assessable": "; ".join(f"{lab} ({why})" for lab, why in v.not_assessable) or DASH,
            "Prior sensitivity": v.prior_sensitivity}


def evidence_words(main: Mapping) -> str:
    """What the main estimate at the key visit is when it is not pooled from two or more studies there (e.g.
    'model-based interpolation': the time course fitted to several studies, one or none at this visit), so that
    a verdict is never read as one on a pooled estimate; '' for a pooled estimate."""
    ev = str((main or {}).get("evidence") or "")
    return "" if ev in ("", "pooled", "nan") else ev.replace("_", " ").replace("interpolated", "model-based interpolation")


def verdict_records(verdicts: Sequence[Verdict]) -> pd.DataFrame:
    """The verdicts in machine form (the manuscript variables read them): one row per outcome."""
    return pd.DataFrame([{"outcome": v.outcome, "label": v.label, "kind": v.kind, "visit_months": v.visit,
                          "verdict": v.verdict, "text": v.text, "conclusion": v.conclusion,
                          "n_fitted": v.n_fitted, "n_not_assessable": len(v.not_assessable),
                          "overturning": "; ".join(lab for lab, _ in v.overturning),
                          "prior_sensitivity": v.prior_sensitivity,
                          "evidence": str((v.main or {}).get("evidence") or "")} for v in verdicts],
                        columns=["outcome", "label", "kind", "visit_months", "verdict", "text", "conclusion",
                                 "n_fitted", "n_not_assessable", "overturning", "prior_sensitivity", "evidence"])


def variant_records(results: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Every outcome's variants in machine form (outcome -> `variant_results`): what was run, per outcome."""
    frames = [r.assign(outcome=o)[["outcome", "variant", "group", "label", "status", "assessable", "conclusion"]]
              for o, r in results.items() if len(r)]
    columns = ["outcome", "variant", "group", "label", "status", "assessable", "conclusion"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
