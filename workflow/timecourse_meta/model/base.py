"""Shared definitions of the model stage: the settings' defaults, the ``ModelData`` container one outcome's model
is built from, and small value helpers.

``settings`` is the model settings dict of one outcome (``model.settings.model_settings``: the config's ``model``
section plus ``sampling``, ``diagnostics``, ``arms``, ...); ``resolved_settings`` fills what it leaves out.
``settings["arms"]`` names the review's arms: ``intervention`` and ``comparator`` are the arm ids of the analysis
table's ``arm`` column, ``intervention_short`` and ``comparator_short`` their short names in notes (defaulting to
the ids). The engine has no default arm: a table with rows but settings without ``arms.intervention`` is an error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from timecourse_meta.core.errors import EngineError

TIME_DECIMALS = 3


class ModelSettingsError(EngineError, ValueError):
    """The model settings lack something the model needs (e.g. the review's arms)."""


# months: a study's visit within this of another visit counts as "at" that visit in the labels (24 weeks at
# 6 months); the same tolerance as the forest plots' (figure_data.VISIT_TOLERANCE)
VISIT_TOLERANCE_MONTHS = 0.5

DEFAULT_SETTINGS: dict[str, Any] = {
    "visit_grid_months": [0, 1, 3, 6, 9, 12],
    "time_course": "random_walk",
    "compare_time_courses": True,
    # ``fixed``: a number in (0, 1) used instead of the Beta prior (rho_within is then not sampled)
    "within_study_correlation": {"structure": "cs", "prior": {"alpha": 2.0, "beta": 2.0}, "lag_months": 3.0,
                                 "fixed": None},
    "between_visit_correlation": {"structure": "ar1", "prior": {"alpha": 2.0, "beta": 2.0}, "lag_months": 3.0},
    "heterogeneity_prior": {"family": "half_normal"},
    "sampling": {"backend": "jax", "chains": 4, "draws": 1000, "tune": 1000, "target_accept": 0.9, "progress_bar": True},
    "diagnostics": {"max_rhat": 1.01, "min_ess_bulk": 400, "min_ess_tail": 400, "max_divergences": 0,
                    "min_bfmi": 0.3},
    "priors": {"default": {"delta_sd": None, "tau_scale": None, "step_sd": None, "baseline_sd": None}},
    "between_arm_estimand": "follow_up_means",
    "binary_time_tolerance_months": 0.5,
    "time_course_rule": "loo",
    # coverage of every credible, prediction and closed-form interval of the summary
    "interval_level": 0.95,
}

OBS_COLUMNS = [
    "analysis_id", "study_id", "study_idx", "cohort", "measure", "time_months", "visit_idx", "n", "y", "s",
    "se", "block", "level_idx", "mean_natural", "sd_natural", "conversion", "raw_row_ids",
]

EXCLUDED_COLUMNS = ["analysis_id", "study_id", "arm", "cohort", "measure", "origin", "time_months", "reason"]


def arm_settings(settings: dict) -> dict[str, str]:
    """The review's arms from the model settings: ``intervention`` and ``comparator`` (arm ids of the analysis
    table) and their short names for notes (``intervention_short``/``comparator_short``, default the ids)."""
    arms = (settings or {}).get("arms") or {}
    if not arms.get("intervention"):
        raise ModelSettingsError(
            "model settings: key 'arms.intervention' is missing; expected the intervention arm's id of the analysis "
            "table's arm column, e.g. {arms: {intervention: <id>, comparator: <id>}} (model.settings.model_settings "
            "takes them from the config's review.arms)")
    out = {"intervention": str(arms["intervention"]), "comparator": str(arms.get("comparator") or "comparator")}
    out["intervention_short"] = str(arms.get("intervention_short") or out["intervention"])
    out["comparator_short"] = str(arms.get("comparator_short") or out["comparator"])
    return out


def is_intervention(arm, arms: dict) -> bool:
    """Whether an ``arm`` value of the analysis table is the intervention arm (case-insensitive)."""
    return str(arm).strip().lower() == arms["intervention"].strip().lower()


def resolved_settings(settings: dict | None) -> dict:
    """Settings with the defaults above filled in (one level of nested dicts merged)."""
    out: dict[str, Any] = {}
    settings = settings or {}
    for key, default in DEFAULT_SETTINGS.items():
        value = settings.get(key, None)
        if isinstance(default, dict):
            merged = dict(default)
            if isinstance(value, dict):
                for k, v in value.items():
                    if isinstance(merged.get(k), dict) and isinstance(v, dict):
                        merged[k] = {**merged[k], **v}
                    else:
                        merged[k] = v
            out[key] = merged
        else:
            out[key] = default if value is None else value
    for key, value in settings.items():
        if key not in out:
            out[key] = value
    return out


@dataclass
class ModelData:
    """Everything one outcome x study-set model needs (arrays on the analysis scale) plus the bookkeeping."""

    outcome: str
    study_set: str
    kind: str                      # continuous | binary | count | characteristic
    label: str
    unit: str
    analysis_scale: str            # identity | log | logit
    direction: str                 # increase | decrease | none
    status: str                    # pooled | single_study | no_data | not_modelled
    status_reason: str
    visits: np.ndarray             # continuous: grid incl. 0 (months); binary: bin times (NaN = not reported)
    studies: list[str]
    obs: pd.DataFrame              # likelihood rows (OBS_COLUMNS; binary: events/total instead of y/s)
    excluded: pd.DataFrame
    listed: pd.DataFrame           # median-only rows (listed, never pooled)
    between_arm: pd.DataFrame      # closed-form between-arm differences of controlled studies
    A: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    lag_within: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    levels: list[tuple[str, str]] = field(default_factory=list)   # (study, cohort) baseline levels
    level_centre: np.ndarray = field(default_factory=lambda: np.zeros(0))
    level_se: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reference_sd: float = float("nan")   # typical per-patient SD on the analysis scale (data-derived priors)
    notes: list[str] = field(default_factory=list)
    # controlled studies' control-arm change from baseline per visit (continuous) or events/total (binary)
    control_changes: pd.DataFrame = field(default_factory=pd.DataFrame)
    # binary: one row per study and follow-up duration, ``pooled`` True where >= 2 studies share the duration
    # (those rows are ``obs``, the model's likelihood); the others are reported as the study's own estimate
    study_rows: pd.DataFrame = field(default_factory=pd.DataFrame)
    # the outcome dictionary's prior scales of this outcome, per analysis scale (``priors`` reads them)
    priors: dict = field(default_factory=dict)
    # within_study_correlation.fixed: the correlation folded into A (rho_within is then not sampled)
    rho_within_fixed: float | None = None

    # convenience -----------------------------------------------------------------------------------------
    @property
    def post_visits(self) -> np.ndarray:
        """Continuous: the grid without the baseline (the model's ``visit`` dimension)."""
        return self.visits[1:] if self.kind == "continuous" else self.visits

    @property
    def n_obs(self) -> int:
        return len(self.obs)

    @property
    def needs_rho_within(self) -> bool:
        if self.kind != "continuous" or self.n_obs == 0 or self.rho_within_fixed is not None:
            return False
        return bool(self.obs.groupby("block").size().max() >= 2)

    def _rows_near(self) -> dict[int, pd.DataFrame]:
        """Visit index -> likelihood rows at that visit. Continuous: rows at any post-baseline visit within
        VISIT_TOLERANCE_MONTHS of it (a study's 24-week visit counts at 6 months, as in the forest plots), so
        that "pooled at this visit from k studies" counts the studies a reader sees at that visit."""
        if self.n_obs == 0:
            return {}
        if self.kind != "continuous":
            return {int(v): grp for v, grp in self.obs.groupby("visit_idx")}
        rows = self.obs[self.obs["visit_idx"] > 0]
        times = np.asarray(self.visits, dtype=float)
        row_t = times[rows["visit_idx"].to_numpy(dtype=int)]
        out = {}
        for v in sorted(set(rows["visit_idx"].astype(int)) | set(range(1, len(times)))):
            near = rows[np.abs(row_t - times[v]) <= VISIT_TOLERANCE_MONTHS + 1e-9]
            if len(near):
                out[v] = near
        return out

    def studies_at_visit(self) -> dict[int, list[str]]:
        """Visit index -> studies with a likelihood row at (continuous: near) that visit."""
        return {v: sorted(grp["study_id"].unique()) for v, grp in self._rows_near().items()}

    def patients_at_visit(self) -> dict[int, int]:
        """Visit index -> patients behind the estimate (per study, the largest n at that visit; summed; a row
        reported with its SE only has no n and adds none)."""
        ncol = "total" if self.kind == "binary" else "n"
        return {v: int(grp.groupby("study_id")[ncol].max().sum()) for v, grp in self._rows_near().items()}

    def total_patients(self) -> int:
        if self.n_obs == 0:
            return 0
        ncol = "total" if self.kind == "binary" else "n"
        return int(self.obs.groupby("study_id")[ncol].max().sum())

    def to_json_tables(self) -> dict[str, str]:
        """The bookkeeping tables as JSON strings (stored in the idata so that files are self-describing)."""
        return {
            "obs_json": self.obs.to_json(orient="records"),
            "excluded_json": self.excluded.to_json(orient="records"),
            "listed_json": self.listed.to_json(orient="records"),
            "between_arm_json": self.between_arm.to_json(orient="records"),
            "control_changes_json": self.control_changes.to_json(orient="records"),
            "study_rows_json": self.study_rows.drop(columns=["_row"], errors="ignore").to_json(orient="records"),
        }


def is_true(x) -> bool:
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return False
    return str(x).strip().lower() in {"true", "1", "yes", "y", "t"}


def as_number(x) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return float("nan")
    return v


def as_text(x, default: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return default
    s = str(x).strip()
    return s if s and s.lower() not in {"nan", "none", "<na>"} else default


def round_time(t: float) -> float:
    return float(round(t, TIME_DECIMALS)) if np.isfinite(t) else float("nan")
