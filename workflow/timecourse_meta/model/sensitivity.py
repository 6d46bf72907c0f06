"""Sensitivity variants as data: each variant changes one assumption of an outcome's main analysis, and
``apply_variant`` turns it into the inputs of one refit (analysis rows, model settings, study ids, time course)
or says why there is nothing to refit (``same_as_main``, ``not_applicable``).

A variant is a mapping from the config's ``sensitivity.variants`` (schema: workflow/schemas/config.schema.yaml)
with a ``kind`` and its parameters; ``expand_variants`` fills ids and labels and generates the per-study
(leave-one-study-out) and per-correlation variants. Kinds and their group:

  heterogeneity_prior       prior        family (half_normal, half_cauchy, ...) and scale_multiplier of tau's prior
  delta_prior_scale         prior        multiplier of the scales of the prior on Delta(t) (delta_sd and step_sd)
  within_correlation_prior  correlation  Beta(alpha, beta) prior of rho_within, or a fixed value
  change_score_correlation  correlation  the within-person r of derived change scores (r; none: one variant per
                                         value of harmonisation.correlation_sensitivity)
  time_course               time_course  another time course than the main analysis reports
  leave_one_study_out       data         one variant per study of the main model
  without_secondary_sources data         rows whose source matches a pattern dropped
  without_assumed_rows      data         rows that needed an assumption dropped (``assumption`` text, or a
                                         median-based or r-based conversion in ``method``)
  report_rule               data         the other rule that picks one report per patient group
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from timecourse_meta.model.evidence import study_display

from timecourse_meta.core.errors import EngineError
from timecourse_meta.data import harmonise as harmonise_mod
from timecourse_meta.data import linkage
from timecourse_meta.model.base import ModelData, resolved_settings
from timecourse_meta.model.build import TIME_COURSES
from timecourse_meta.model.priors import resolve_priors

GROUPS = ("main", "prior", "correlation", "time_course", "data")
STATUSES = ("fitted", "failed_gate", "not_applicable", "same_as_main")
KIND_GROUP = {
    "heterogeneity_prior": "prior", "delta_prior_scale": "prior", "within_correlation_prior": "correlation",
    "change_score_correlation": "correlation", "time_course": "time_course", "leave_one_study_out": "data",
    "without_secondary_sources": "data", "without_assumed_rows": "data", "report_rule": "data",
}
FAMILY_WORDS = {"half_normal": "half-normal", "half_cauchy": "half-Cauchy", "half_student_t": "half-Student-t",
                "exponential": "exponential"}
TIME_COURSE_WORDS = {"random_walk": "random walk", "piecewise_linear": "piecewise linear", "emax": "Emax"}
RULE_WORDS = {"most_complete_per_visit": "the most complete report per visit",
              "one_report_per_group": "one report per patient group"}
#: ``method`` values (before any ";") of rows whose mean or SD needed an assumption
ASSUMED_METHOD = re.compile(r"median|_from_r", re.IGNORECASE)


class SensitivityConfigError(EngineError, ValueError):
    """A sensitivity variant in the config cannot be used (names the variant and the key)."""


@dataclass(frozen=True)
class Variant:
    """One named change to one assumption (``change``: the config entry, with ``kind``)."""

    id: str
    group: str
    label: str
    change: dict = field(default_factory=dict)


@dataclass
class VariantInput:
    """What one refit needs, or (``status`` set) why there is none."""

    rows: pd.DataFrame | None = None
    settings: dict | None = None
    study_ids: list[str] | None = None
    time_course: str | None = None
    status: str = ""
    note: str = ""


@dataclass
class MainAnalysis:
    """The main analysis a variant changes: its rows (before report selection), settings, studies, model data."""

    rows: pd.DataFrame
    settings: dict
    study_ids: list[str]
    study_sheet: pd.DataFrame
    model_data: ModelData
    time_course: str
    spec: dict = field(default_factory=dict)        # the outcome dictionary's entry (model_data.build_model_data)
    correlations: list[float] = field(default_factory=list)
    secondary_source_pattern: str | None = None


def _multiplier_words(m: float) -> str:
    return {0.5: "half the default scale", 2.0: "twice the default scale", 1.0: "the default scale"}.get(
        float(m), f"{float(m):g} x the default scale")


def _default_id(change: dict) -> str:
    kind = change["kind"]
    if kind == "heterogeneity_prior":
        return f"tau_{change.get('family', 'half_normal')}_x{float(change.get('scale_multiplier', 1.0)):g}"
    if kind == "delta_prior_scale":
        return f"delta_scale_x{float(change['multiplier']):g}"
    if kind == "within_correlation_prior":
        if change.get("fixed") is not None:
            return f"rho_within_fixed_{float(change['fixed']):g}"
        return f"rho_within_beta_{float(change['alpha']):g}_{float(change['beta']):g}"
    if kind == "change_score_correlation":
        return f"change_r_{float(change['r']):g}"
    if kind == "time_course":
        return f"time_course_{change['time_course']}"
    if kind == "report_rule":
        return f"reports_{change['rule']}"
    return kind


def _default_label(change: dict) -> str:
    kind = change["kind"]
    if kind == "heterogeneity_prior":
        fam = FAMILY_WORDS.get(change.get("family", "half_normal"), change.get("family"))
        return f"Heterogeneity prior: {fam}, {_multiplier_words(change.get('scale_multiplier', 1.0))}"
    if kind == "delta_prior_scale":
        return f"Prior on the change over time: {_multiplier_words(change['multiplier'])}"
    if kind == "within_correlation_prior":
        if change.get("fixed") is not None:
            return f"Within-study correlation fixed at {float(change['fixed']):g}"
        a, b = float(change["alpha"]), float(change["beta"])
        return f"Within-study correlation prior: Beta({a:g}, {b:g}), prior mean {a / (a + b):.2g}"
    if kind == "change_score_correlation":
        return f"Change-score SDs with within-person correlation r = {float(change['r']):g}"
    if kind == "time_course":
        return f"Time course: {TIME_COURSE_WORDS.get(change['time_course'], change['time_course'])}"
    if kind == "without_secondary_sources":
        return "Only rows the study itself reported (no secondary sources)"
    if kind == "without_assumed_rows":
        return "Without rows that needed an assumption (converted medians, imputed n or SD)"
    if kind == "report_rule":
        return f"Report selection: {RULE_WORDS.get(change['rule'], change['rule'])}"
    return kind


def study_label(study_sheet: pd.DataFrame, study_id: str) -> str:
    """'Gu 2014' from the studies sheet's first_author and year (the id if they are missing)."""
    row = study_sheet.loc[study_sheet["study_id"].astype(str) == str(study_id)]
    if row.empty or "first_author" not in row or not str(row.iloc[0]["first_author"]).strip():
        return str(study_id)
    author = str(row.iloc[0]["first_author"]).split(",")[0].split()[0]
    if not author[:1].isalpha():  # an institution in brackets, not an author: the study's display id
        return study_display(study_id)
    year = str(row.iloc[0].get("year", "")).strip()
    year = year[:-2] if re.fullmatch(r"\d{4}\.0", year) else year  # a year read back as a float
    return f"{author} {year}".strip()


def expand_variants(entries: list[dict], main: MainAnalysis) -> list[Variant]:
    """The config's variant entries as ``Variant``s: ids and labels filled, leave-one-study-out expanded to one
    variant per study of the main model, change_score_correlation without ``r`` to one per configured value.
    Duplicated ids are an error (they would mix two variants' rows)."""
    out: list[Variant] = []
    for i, entry in enumerate(entries or []):
        change = dict(entry)
        kind = change.get("kind")
        if kind not in KIND_GROUP:
            raise SensitivityConfigError(f"config key 'sensitivity.variants[{i}].kind' = {kind!r}: expected one "
                                         f"of {', '.join(KIND_GROUP)}")
        if kind == "leave_one_study_out":
            for sid in main.model_data.studies:
                out.append(Variant(f"loo_{sid}", "data", f"Without study {study_label(main.study_sheet, sid)}",
                                   {"kind": kind, "study_id": sid}))
            continue
        if kind == "change_score_correlation" and change.get("r") is None:
            for r in main.correlations:
                c = {**change, "r": float(r)}
                out.append(Variant(_default_id(c), "correlation", _default_label(c), c))
            continue
        out.append(Variant(str(change.pop("id", None) or _default_id(change)), KIND_GROUP[kind],
                           str(change.pop("label", None) or _default_label(change)), change))
    ids = [v.id for v in out]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise SensitivityConfigError(f"config key 'sensitivity.variants': ids {', '.join(dup)} occur more than "
                                     "once; give each variant its own id")
    return out


def _outcome_priors(settings: dict, outcome: str) -> dict:
    """The settings' ``priors.<outcome>`` mapping (created empty if missing), to write a variant's scales into."""
    priors = settings.get("priors") or {}
    settings["priors"] = priors
    if not isinstance(priors.get(outcome), dict):
        priors[outcome] = {}
    return priors[outcome]


def _prior_settings(change: dict, main: MainAnalysis) -> VariantInput:
    """A prior variant: the main settings with the outcome's resolved scale(s) multiplied (config priors of the
    outcome take precedence over every other source, see model.priors)."""
    md, settings = main.model_data, copy.deepcopy(main.settings)
    resolved = resolve_priors(md, settings)
    priors = _outcome_priors(settings, md.outcome)
    if change["kind"] == "heterogeneity_prior":
        if main.time_course == "independent":
            return VariantInput(status="same_as_main", note="the model has no between-study heterogeneity")
        settings["heterogeneity_prior"] = {**(settings.get("heterogeneity_prior") or {}),
                                           "family": change.get("family", "half_normal")}
        priors["tau_scale"] = float(resolved["tau_scale"]) * float(change.get("scale_multiplier", 1.0))
    else:
        if md.kind == "binary":
            return VariantInput(status="not_applicable", note="a binary outcome has no time course Delta(t)")
        for key in ("delta_sd", "step_sd"):
            priors[key] = float(resolved[key]) * float(change["multiplier"])
    return VariantInput(rows=main.rows, settings=settings, study_ids=main.study_ids, time_course=main.time_course)


def _within_settings(change: dict, main: MainAnalysis) -> VariantInput:
    md = main.model_data
    if md.kind != "continuous":
        return VariantInput(status="not_applicable", note="a binary outcome has no within-study correlation")
    if not (md.needs_rho_within or md.rho_within_fixed is not None):
        return VariantInput(status="same_as_main", note="no study reports the same patients at more than one "
                                                       "visit: the within-study correlation does not enter")
    settings = copy.deepcopy(main.settings)
    wcfg = dict(settings.get("within_study_correlation") or {})
    if change.get("fixed") is not None:
        wcfg["fixed"] = float(change["fixed"])
    else:
        wcfg["fixed"] = None
        wcfg["prior"] = {"alpha": float(change["alpha"]), "beta": float(change["beta"])}
    settings["within_study_correlation"] = wcfg
    return VariantInput(rows=main.rows, settings=settings, study_ids=main.study_ids, time_course=main.time_course)


def rederive_change_scores(rows: pd.DataFrame, r: float) -> pd.DataFrame:
    """The rows with every derived change score computed again from its baseline and follow-up rows with
    within-person correlation ``r`` (``data.harmonise.derive_changes``, as harmonisation does); each replaces the
    derived row of the same raw rows and arm and keeps its analysis id. Only the derived rows already in the table
    are replaced (a derived row whose source rows are not there stays as it was)."""
    derived = rows["origin"].astype(str) == "derived"
    reported = rows.loc[~derived].copy()
    reported["poolable"] = reported["poolable"].map(lambda v: str(v).strip().lower() in ("true", "1", "yes"))
    for column in ("assumption", "raw_row_ids", "source"):  # empty cells read back from the CSV as NaN
        if column in reported:
            reported[column] = reported[column].fillna("").astype(str)
    new = harmonise_mod.derive_changes(reported, r)
    key = lambda df: list(zip(df["raw_row_ids"].astype(str), df["arm"].astype(str)))  # noqa: E731
    old = rows.loc[derived]
    old_ids = dict(zip(key(old), old["analysis_id"]))
    new = new[[k in old_ids for k in key(new)]].copy() if not new.empty else new
    if "se" in new and not new.empty:  # the analysis table's SE of a mean: sd / sqrt(n) where the change has an SD
        sd, n = pd.to_numeric(new["sd"], errors="coerce"), pd.to_numeric(new["n"], errors="coerce")
        new["se"] = pd.to_numeric(new["se"], errors="coerce").fillna(sd / np.sqrt(n))
    new["analysis_id"] = [old_ids[k] for k in key(new)]
    kept_old = old[[k not in set(key(new)) for k in key(old)]]
    return pd.concat([reported, new, kept_old], ignore_index=True)


def _correlation_rows(change: dict, main: MainAnalysis) -> VariantInput:
    derived = main.rows["origin"].astype(str) == "derived"
    if not derived.any():
        return VariantInput(status="same_as_main", note="no change score of this outcome is derived from baseline "
                                                       "and follow-up, so r enters nowhere")
    settings = copy.deepcopy(main.settings)
    settings["within_person_correlation"] = float(change["r"])
    return VariantInput(rows=rederive_change_scores(main.rows, float(change["r"])), settings=settings,
                        study_ids=main.study_ids, time_course=main.time_course)


def _time_course(change: dict, main: MainAnalysis) -> VariantInput:
    tc = change["time_course"]
    if tc not in TIME_COURSES:
        raise SensitivityConfigError(f"config key 'sensitivity.variants' (time_course) = {tc!r}: expected one of "
                                     f"{', '.join(TIME_COURSES)}")
    if main.model_data.kind != "continuous":
        return VariantInput(status="not_applicable", note="a binary outcome has no time-course model")
    if tc == main.time_course:
        return VariantInput(status="same_as_main", note=f"the main analysis reports the {TIME_COURSE_WORDS[tc]} "
                                                       "time course")
    settings = {**copy.deepcopy(main.settings), "compare_time_courses": False}
    return VariantInput(rows=main.rows, settings=settings, study_ids=main.study_ids, time_course=tc)


def assumed_rows(rows: pd.DataFrame) -> pd.Series:
    """Rows whose numbers needed an assumption: any ``assumption`` text, or a median-based or r-based method."""
    text = rows["assumption"].fillna("").astype(str).str.strip() != "" if "assumption" in rows else False
    method = rows["method"].fillna("").astype(str).str.split(";").str[0].str.contains(ASSUMED_METHOD)
    return text | method


def _data_rows(change: dict, main: MainAnalysis) -> VariantInput:
    kind, rows, ids = change["kind"], main.rows, list(main.study_ids)
    settings = main.settings
    if kind == "leave_one_study_out":
        ids = [s for s in ids if s != change["study_id"]]
    elif kind == "without_secondary_sources":
        pattern = change.get("pattern") or main.secondary_source_pattern
        if not pattern:
            return VariantInput(status="not_applicable", note="no secondary_source_pattern configured")
        rows = rows[~rows["source"].fillna("").astype(str).str.contains(pattern, case=False, regex=True)]
    elif kind == "without_assumed_rows":
        rows = rows[~assumed_rows(rows)]
    elif kind == "report_rule":
        if change["rule"] not in linkage.RULES:
            raise SensitivityConfigError(f"config key 'sensitivity.variants' (report_rule) = {change['rule']!r}: "
                                         f"expected one of {', '.join(linkage.RULES)}")
        if change["rule"] == (settings.get("reports") or {}).get("rule", linkage.DEFAULT_RULE):
            return VariantInput(status="same_as_main", note="the main analysis uses this rule")
        settings = copy.deepcopy(settings)
        settings["reports"] = {**(settings.get("reports") or {}), "rule": change["rule"]}
    return VariantInput(rows=rows.reset_index(drop=True), settings=settings, study_ids=ids,
                        time_course=main.time_course)


def apply_variant(variant: Variant, main: MainAnalysis) -> VariantInput:
    """The inputs of the variant's refit, or its status and reason when there is nothing to refit."""
    kind = variant.change["kind"]
    if kind in ("heterogeneity_prior", "delta_prior_scale"):
        return _prior_settings(variant.change, main)
    if kind == "within_correlation_prior":
        return _within_settings(variant.change, main)
    if kind == "change_score_correlation":
        return _correlation_rows(variant.change, main)
    if kind == "time_course":
        return _time_course(variant.change, main)
    return _data_rows(variant.change, main)


def select_rows(rows: pd.DataFrame, main: MainAnalysis, settings: dict, study_ids: list[str]
                ) -> pd.DataFrame:
    """One report per patient group (``linkage.select_reports`` with the settings' rule), as the main fit does."""
    resolved = resolved_settings(settings)
    rule = (settings.get("reports") or {}).get("rule", linkage.DEFAULT_RULE)
    grid = resolved["visit_grid_months"] if (main.spec or {}).get("kind") == "binary" else None
    kept, _ = linkage.select_reports(rows, main.study_sheet, study_ids, rule=rule, visit_grid=grid,
                                     tolerance=resolved["binary_time_tolerance_months"])
    return kept


def job_settings(cfg: dict) -> dict:
    """What one outcome's sensitivity job depends on besides its files (the resolved config's ``sensitivity``
    section; the change-score correlations of ``harmonisation.correlation_sensitivity``; the secondary-source
    pattern, falling back to ``certainty.indirectness.secondary_source_pattern``), so only a change to these
    reruns it."""
    sens = cfg.get("sensitivity") or {}
    pattern = sens.get("secondary_source_pattern")
    if pattern is None:
        pattern = ((cfg.get("certainty") or {}).get("indirectness") or {}).get("secondary_source_pattern")
    return {"enabled": bool(sens.get("enabled", True)), "variants": list(sens.get("variants") or []),
            "power_scaling_threshold": float(sens.get("power_scaling_threshold", 0.05)),
            "correlation_sensitivity": [float(r) for r in (cfg.get("harmonisation") or {}).get(
                "correlation_sensitivity", [])],
            "secondary_source_pattern": pattern}
