"""From the harmonised analysis table to the arrays one outcome's model needs.

`build_model_data(table, outcome, study_ids, outcome_spec, settings)` is the only entry point the workflow
needs. It selects the poolable rows of one outcome and one study set, puts them on the analysis scale, maps
visit times to a visit grid, builds the constant parts of the sampling covariance, records every excluded row
with its reason, lists ``median_only`` rows (never pooled) and computes the closed-form between-arm
differences of controlled studies. It does no sampling.

Conventions (documented here once, used by ``models.py``):

* **Rows that enter the likelihood** (MSCT arm only): ``poolable`` rows with ``origin == "reported"`` of
  measure ``absolute`` or ``change_from_baseline``. Rows with ``origin == "derived"`` (a change score computed
  by harmonisation from a baseline and a follow-up row) are excluded: their source absolute rows are in the
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
  arm's own change (``control_changes``) is the study's own estimate, never in the likelihood.
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
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

TIME_DECIMALS = 3
Z95 = 1.959963984540054


class Evidence:
    """What a reported number is: one vocabulary for summary.csv, tables, figures and text (``evidence``
    column of the model summary; the ``label`` column is its human wording, see the ``label_*`` helpers)."""

    STUDY_ESTIMATE = "study_estimate"    # one study's own estimate: change with a t CI, or events/total exact CI
    POOLED = "pooled"                    # a model estimate at a visit/duration where >= 2 studies report
    INTERPOLATED = "interpolated"        # model time course at a visit with 0 or 1 study (model has >= 2)
    PRIOR_DOMINATED = "prior_dominated"  # 95% CrI at least PRIOR_DOMINATED_RATIO as wide as the prior's
    MEDIAN_ONLY = "median_only"          # a reported median without spread: listed, never pooled
    BETWEEN_ARM = "between_arm"          # a controlled study's own MSCT-minus-control difference
    SHRUNKEN_STUDY = "shrunken_study"    # a study's estimate shrunken towards the pooled time course
    NOT_ESTIMABLE = "not_estimable"      # nothing to estimate (no data, outcome not modelled)

    ALL = ("study_estimate", "pooled", "interpolated", "prior_dominated", "median_only", "between_arm",
           "shrunken_study", "not_estimable")


#: a model interval at least this fraction of the prior's interval width says the data added little
PRIOR_DOMINATED_RATIO = 0.9

#: between-arm estimands (config key ``model.between_arm_estimand``) and their wording in the summary
ESTIMANDS = {"follow_up_means": "follow-up means", "change_scores": "change scores"}
ESTIMAND_BASELINE = "baseline means"
ESTIMAND_RISK_DIFFERENCE = "risk difference"


def study_display(study_id: str) -> str:
    """'deng2017' -> 'Deng 2017' (author + year ids); other ids unchanged."""
    import re
    m = re.fullmatch(r"([a-z]+)(\d{4})([a-z]?)", str(study_id))
    return f"{m.group(1).capitalize()} {m.group(2)}{m.group(3)}" if m else str(study_id)


def _months(t: float) -> str:
    if not np.isfinite(t):
        return "time not reported"
    return f"{t:.3g} month" + ("" if abs(t - 1) < 1e-9 else "s")


def label_study(study_id: str, n_patients, visit: float | None = None) -> str:
    """'study's own estimate (Deng 2017, 12 patients)'."""
    extra = "; follow-up duration not reported" if visit is not None and not np.isfinite(visit) else ""
    return f"study's own estimate ({study_display(study_id)}, {int(n_patients)} patients{extra})"


def _fitted_to(n_studies_model: int, n_patients_model: int) -> str:
    return f"time course fitted to {n_studies_model} studies ({n_patients_model} patients)"


def label_pooled(visit: float, n_studies: int, n_patients: int, n_studies_model: int, n_patients_model: int,
                 time_course: bool = True) -> str:
    """'pooled at 6 months from 2 studies (32 patients); time course fitted to 4 studies (56 patients)'."""
    head = f"pooled at {_months(visit)} from {n_studies} studies ({n_patients} patients)"
    return f"{head}; {_fitted_to(n_studies_model, n_patients_model)}" if time_course else head


def label_interpolated(visit: float, studies: list[str], n_patients: int, n_studies_model: int,
                       n_patients_model: int) -> str:
    """'model-based interpolation: no study at 9 months; time course fitted to 4 studies (56 patients)'."""
    if not studies:
        head = f"model-based interpolation: no study at {_months(visit)}"
    else:
        head = (f"model-based interpolation: 1 study at {_months(visit)} ({study_display(studies[0])}, "
                f"{n_patients} patients)")
    return f"{head}; {_fitted_to(n_studies_model, n_patients_model)}"


def label_prior_dominated(width_ratio: float, what: str) -> str:
    return (f"prior-dominated: the 95% interval is {100 * width_ratio:.0f}% as wide as the prior's; {what}")


def label_between_arm(study_id: str, msct_n, control_n, estimand: str, primary: bool) -> str:
    role = "primary" if primary else "secondary"
    return (f"between-arm difference ({study_display(study_id)}, {int(msct_n)} vs {int(control_n)} patients; "
            f"{estimand}, {role})")


LABEL_MEDIAN_ONLY = "median only: listed, not pooled"

DEFAULT_SETTINGS: dict[str, Any] = {
    "visit_grid_months": [0, 1, 3, 6, 9, 12],
    "time_course": "random_walk",
    "compare_time_courses": True,
    "within_study_correlation": {"structure": "cs", "prior": {"alpha": 2.0, "beta": 2.0}, "lag_months": 3.0},
    "between_visit_correlation": {"structure": "ar1", "prior": {"alpha": 2.0, "beta": 2.0}, "lag_months": 3.0},
    "heterogeneity_prior": {"family": "half_normal"},
    "sampling": {"chains": 4, "draws": 1000, "tune": 1000, "target_accept": 0.9, "progress_bar": True},
    "diagnostics": {"max_rhat": 1.01, "min_ess_bulk": 400, "min_ess_tail": 400, "max_divergences": 0,
                    "min_bfmi": 0.3},
    "priors": {"default": {"delta_sd": None, "tau_scale": None, "step_sd": None, "baseline_sd": None}},
    "between_arm_estimand": "follow_up_means",
    "binary_time_tolerance_months": 0.5,
    "time_course_rule": "loo",
}

OBS_COLUMNS = [
    "analysis_id", "study_id", "study_idx", "cohort", "measure", "time_months", "visit_idx", "n", "y", "s",
    "se", "block", "level_idx", "mean_natural", "sd_natural", "conversion", "raw_row_ids",
]
EXCLUDED_COLUMNS = ["analysis_id", "study_id", "arm", "cohort", "measure", "origin", "time_months", "reason"]


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


# months: a study's visit within this of another visit counts as "at" that visit in the labels (24 weeks at
# 6 months); the same tolerance as the forest plots' (figure_data.VISIT_TOLERANCE)
VISIT_TOLERANCE_MONTHS = 0.5


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
        if self.kind != "continuous" or self.n_obs == 0:
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
        """Visit index -> patients behind the estimate (per study, the largest n at that visit; summed)."""
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


# ---------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------
def _truthy(x) -> bool:
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return False
    return str(x).strip().lower() in {"true", "1", "yes", "y", "t"}


def _num(x) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return float("nan")
    return v


def _text(x, default: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return default
    s = str(x).strip()
    return s if s and s.lower() not in {"nan", "none", "<na>"} else default


def _round_time(t: float) -> float:
    return float(round(t, TIME_DECIMALS)) if np.isfinite(t) else float("nan")


def _is_median_only(row: pd.Series) -> bool:
    text = " ".join(_text(row.get(c)).lower() for c in ("method", "not_poolable_reason", "statistic"))
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


# ---------------------------------------------------------------------------------------------------------
# main entry point
# ---------------------------------------------------------------------------------------------------------
def build_model_data(table: pd.DataFrame, outcome: str, study_ids: list[str], outcome_spec: dict,
                     settings: dict, study_set: str = "all") -> ModelData:
    """Select, convert and index the rows of one outcome and study set; see the module docstring."""
    settings = resolved_settings(settings)
    spec = dict(outcome_spec or {})
    kind = _text(spec.get("kind"), "continuous")
    scale = _text(spec.get("analysis_scale"), "identity")
    direction = _text(spec.get("direction_of_benefit"), "none")
    unit = _text(spec.get("canonical_unit"), "")
    label = _text(spec.get("label"), outcome)

    df = table.copy()
    df = df[df["outcome"].astype(str) == outcome]
    df = df[df["study_id"].astype(str).isin([str(s) for s in study_ids])]
    df = df.reset_index(drop=True)
    if "cohort" not in df:
        df["cohort"] = "all"
    df["cohort"] = [_text(c, "all") for c in df["cohort"]]
    df["origin"] = [_text(c, "reported") for c in (df["origin"] if "origin" in df else ["reported"] * len(df))]
    df["arm"] = [_text(a, "MSCT") for a in df["arm"]]
    df["time_months"] = [_round_time(_num(t)) for t in df["time_months"]]
    df["poolable_bool"] = [_truthy(p) for p in (df["poolable"] if "poolable" in df else [True] * len(df))]
    if not unit and "unit" in df and len(df):
        unit = _text(df["unit"].iloc[0])

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
            reason = _text(row.get("not_poolable_reason"), "marked not poolable")
            if _is_median_only(row):
                listed_rows.append({
                    "analysis_id": row.get("analysis_id"), "study_id": row.get("study_id"), "arm": row.get("arm"),
                    "cohort": row.get("cohort"), "measure": row.get("measure"),
                    "time_months": row.get("time_months"), "n": _num(row.get("n")),
                    "value": _num(row.get("mean")), "unit": _text(row.get("unit"), unit), "reason": reason,
                    "source": _text(row.get("source")),
                })
            exclude(row, f"not poolable: {reason}")
            continue
        keep_idx.append(i)
    df = df.loc[keep_idx].reset_index(drop=True)

    listed = pd.DataFrame(listed_rows, columns=["analysis_id", "study_id", "arm", "cohort", "measure",
                                                "time_months", "n", "value", "unit", "reason", "source"])

    if kind == "binary":
        md = _build_binary(df, outcome, study_set, spec, settings, exclude, listed, kind, label, unit, scale,
                           direction)
    elif kind == "continuous":
        md = _build_continuous(df, outcome, study_set, spec, settings, exclude, listed, kind, label, unit,
                               scale, direction)
    else:
        for _, row in df.iterrows():
            exclude(row, f"outcome kind {kind!r} is not modelled")
        md = ModelData(outcome, study_set, kind, label, unit, scale, direction, "not_modelled",
                       f"outcome kind {kind!r} is described, not modelled", np.zeros(0), [],
                       pd.DataFrame(columns=OBS_COLUMNS), pd.DataFrame(), listed, _empty_between_arm())
    md.excluded = pd.DataFrame(excluded, columns=EXCLUDED_COLUMNS)
    return md


def _empty_between_arm() -> pd.DataFrame:
    return pd.DataFrame(columns=[
        "study_id", "visit_months", "estimate", "se", "lower", "upper", "msct_n", "control_n", "method",
        "msct_analysis_ids", "control_analysis_ids", "estimand", "df", "primary"])


# ---------------------------------------------------------------------------------------------------------
# continuous outcomes
# ---------------------------------------------------------------------------------------------------------
def _prepare_arm_rows(df: pd.DataFrame, scale: str, unit: str, exclude, supersede: bool = True,
                      keep_derived: bool = False) -> pd.DataFrame:
    """Rows of one arm on the analysis scale, invalid rows (and, unless ``keep_derived``, derived change rows)
    removed. Returns a frame with columns study_id, cohort, measure, origin, time_months, n, y, s,
    mean_natural, sd_natural, conversion, ... With ``keep_derived`` a reported change score is preferred to a
    derived one of the same cohort and visit (used for the closed-form between-arm and control-arm
    changes, which are not in the likelihood and so cannot double count)."""
    rows = []
    for _, row in df.iterrows():
        measure = _text(row.get("measure"), "absolute")
        if measure not in {"absolute", "change_from_baseline"}:
            exclude(row, f"unknown measure {measure!r}")
            continue
        if row["origin"] == "derived" and not keep_derived:
            exclude(row, "derived change score: the absolute rows it was computed from are used instead "
                         "(no double counting)")
            continue
        t = row["time_months"]
        if not np.isfinite(t):
            exclude(row, "visit time not reported")
            continue
        if measure == "change_from_baseline" and t <= 0:
            exclude(row, "change score at baseline")
            continue
        n, mean, sd = _num(row.get("n")), _num(row.get("mean")), _num(row.get("sd"))
        if not (np.isfinite(n) and n >= 1):
            exclude(row, "n missing")
            continue
        if not np.isfinite(mean):
            exclude(row, "mean missing")
            continue
        if not (np.isfinite(sd) and sd > 0):
            exclude(row, "SD missing or not positive")
            continue
        rows.append({
            "analysis_id": row.get("analysis_id"), "study_id": str(row["study_id"]), "cohort": row["cohort"],
            "measure": "change" if measure == "change_from_baseline" else "absolute", "time_months": t,
            "origin": row["origin"], "n": n, "mean_natural": mean, "sd_natural": sd, "raw_row_ids": _text(row.get("raw_row_ids")),
            "_row": row,
        })
    out = pd.DataFrame(rows)
    if out.empty:
        return out

    # duplicates (same study, cohort, measure, time): keep the first (a reported row before a derived one)
    out = out.assign(_derived=out["origin"] == "derived").sort_values("_derived", kind="stable")
    out = out.drop(columns="_derived").reset_index(drop=True)
    dup = out.duplicated(["study_id", "cohort", "measure", "time_months"], keep="first")
    for _, r in out[dup].iterrows():
        exclude(r["_row"], "duplicate of another row for the same study, cohort, measure and visit")
    out = out[~dup].reset_index(drop=True)

    # change score and absolute follow-up for the same cohort and visit: keep the change score
    chg_keys = {(r.study_id, r.cohort, r.time_months) for r in out.itertuples() if r.measure == "change"}
    drop = []
    for i, r in out.iterrows():
        if supersede and r["measure"] == "absolute" and r["time_months"] > 0 and \
                (r["study_id"], r["cohort"], r["time_months"]) in chg_keys:
            drop.append(i)
    anchors = out.copy()  # absolute means remain available for anchoring log-scale change scores
    for i in drop:
        exclude(out.loc[i, "_row"], "absolute follow-up superseded by the reported change score of the same "
                                    "cohort and visit (same patients; no double counting)")
    out = out.drop(index=drop).reset_index(drop=True)

    # to the analysis scale
    ys, ss, conv, keep = [], [], [], []
    for i, r in out.iterrows():
        if r["measure"] == "absolute":
            y, s, why = _to_scale(r["mean_natural"], r["sd_natural"], scale, unit)
            c = "" if scale == "identity" else f"{scale} mean (delta method)"
        else:
            if scale == "identity":
                y, s, why, c = r["mean_natural"], r["sd_natural"], "", ""
            else:
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


def _build_continuous(df, outcome, study_set, spec, settings, exclude, listed, kind, label, unit, scale,
                      direction) -> ModelData:
    notes: list[str] = []
    msct = df[df["arm"].astype(str).str.upper() == "MSCT"]
    control = df[df["arm"].astype(str).str.upper() != "MSCT"]
    rows = _prepare_arm_rows(msct, scale, unit, exclude)
    control_rows = _prepare_arm_rows(control, scale, unit, lambda row, reason: exclude(
        row, f"control arm (between-arm difference only): {reason}"), supersede=False, keep_derived=True)
    # between-arm differences use every usable MSCT row, derived change scores included (a superseded
    # follow-up mean pairs with the control arm's follow-up mean; neither is in the likelihood twice)
    between = _between_arm_differences(_prepare_arm_rows(msct, scale, unit, lambda row, reason: None,
                                                         supersede=False, keep_derived=True), control_rows,
                                       scale, settings.get("between_arm_estimand", "follow_up_means"))
    control_changes = _control_changes(control_rows)
    # control rows that were usable are not in the time-course likelihood: record that too
    for _, r in control_rows.iterrows() if len(control_rows) else []:
        exclude(r["_row"], "control arm: not in the time-course model; used for the between-arm difference")

    # absolute rows need their cohort's baseline and at least one follow-up of that cohort
    if len(rows):
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
        rows = rows.loc[sorted(keep)].reset_index(drop=True)

    empty = ModelData(outcome, study_set, kind, label, unit, scale, direction, "no_data",
                      "no poolable MSCT-arm rows with a follow-up visit", np.array([0.0]), [],
                      pd.DataFrame(columns=OBS_COLUMNS), pd.DataFrame(), listed, between, notes=notes,
                      control_changes=control_changes)
    if rows.empty:
        return empty

    studies = sorted(rows["study_id"].unique())
    status = "pooled" if len(studies) >= 2 else "single_study"
    status_reason = (f"{len(studies)} studies" if status == "pooled" else
                     "one study: its own estimate is reported, no pooled claim")

    # visit grid
    observed = sorted(set(rows["time_months"].tolist()))
    t_max = max(observed)
    if status == "pooled":
        grid = [_round_time(float(t)) for t in settings["visit_grid_months"] if float(t) <= t_max + 1e-9]
        visits = np.array(sorted(set(grid) | set(observed) | {0.0}), dtype=float)
    else:
        visits = np.array(sorted(set(observed) | {0.0}), dtype=float)
    vindex = {float(t): i for i, t in enumerate(visits)}
    rows["visit_idx"] = [vindex[float(t)] for t in rows["time_months"]]
    rows["study_idx"] = [studies.index(s) for s in rows["study_id"]]
    rows["se"] = rows["s"] / np.sqrt(rows["n"])

    # blocks: (study, measure); baseline levels: (study, cohort) of absolute rows
    rows = rows.sort_values(["study_idx", "measure", "cohort", "time_months"]).reset_index(drop=True)
    block_keys = list(dict.fromkeys(zip(rows["study_id"], rows["measure"])))
    rows["block"] = [block_keys.index(k) for k in zip(rows["study_id"], rows["measure"])]
    levels = list(dict.fromkeys((r.study_id, r.cohort) for r in rows.itertuples() if r.measure == "absolute"))
    rows["level_idx"] = [levels.index((r.study_id, r.cohort)) if r.measure == "absolute" else -1
                         for r in rows.itertuples()]

    wcfg = settings["within_study_correlation"]
    lag = _lag_matrix(rows["time_months"].to_numpy(float), wcfg.get("structure", "cs"),
                      float(wcfg.get("lag_months", 3.0)))
    A = _cov_scale(rows)
    # positive definiteness of every block for any rho (checked at extreme values); split cohorts if needed
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
    level_centre = np.zeros(len(levels))
    level_se = np.ones(len(levels))
    for k, (st, co) in enumerate(levels):
        base = rows[(rows["study_id"] == st) & (rows["cohort"] == co) & (rows["visit_idx"] == 0)]
        level_centre[k] = float(base["y"].iloc[0])
        level_se[k] = float(base["se"].iloc[0])

    ref = rows.loc[rows["measure"] == "absolute", "s"]
    if ref.empty:
        ref = rows["s"]
    reference_sd = float(np.median(ref))

    obs = rows.drop(columns=["_row"])[OBS_COLUMNS].copy()
    obs["n"] = obs["n"].astype(float)
    return ModelData(outcome, study_set, kind, label, unit, scale, direction, status, status_reason, visits,
                     studies, obs, pd.DataFrame(), listed, between, A=A, lag_within=lag, levels=levels,
                     level_centre=level_centre, level_se=level_se, reference_sd=reference_sd, notes=notes,
                     control_changes=control_changes)


def _cov_scale(rows: pd.DataFrame) -> np.ndarray:
    s = rows["s"].to_numpy(float)
    n = rows["n"].to_numpy(float)
    same = rows["block"].to_numpy()[:, None] == rows["block"].to_numpy()[None, :]
    return np.where(same, np.outer(s, s) * np.minimum.outer(n, n) / np.outer(n, n), 0.0)


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


def t_quantile(level: float, df: float) -> float:
    """Two-sided t critical value (the methods use t-based intervals for small samples)."""
    from scipy import stats
    return float(stats.t.ppf(1 - (1 - level) / 2, df))


def t_interval(est: float, se: float, df: float, level: float = 0.95) -> tuple[float, float]:
    q = t_quantile(level, df)
    return est - q * se, est + q * se


def wilson_interval(events: float, total: float, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (Newcombe 1998, method 3)."""
    from scipy import stats
    z = float(stats.norm.ppf(1 - (1 - level) / 2))
    p = events / total
    centre = p + z * z / (2 * total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    den = 1 + z * z / total
    return (centre - half) / den, (centre + half) / den


def newcombe_interval(e1: float, n1: float, e2: float, n2: float, level: float = 0.95) -> tuple[float, float]:
    """Hybrid score interval of p1 - p2 (Newcombe 1998, Stat Med 17:873, method 10): Wilson limits of each
    proportion combined as D - sqrt((p1-l1)^2 + (u2-p2)^2), D + sqrt((u1-p1)^2 + (p2-l2)^2). Unlike Wald it
    stays inside [-1, 1] and keeps its coverage for 0 or 1 events in 6-12 patients."""
    p1, p2 = e1 / n1, e2 / n2
    l1, u1 = wilson_interval(e1, n1, level)
    l2, u2 = wilson_interval(e2, n2, level)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def clopper_pearson(events: float, total: float, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a proportion, closed form through beta quantiles."""
    from scipy import stats
    a = (1 - level) / 2
    lo = 0.0 if events <= 0 else float(stats.beta.ppf(a, events, total - events + 1))
    hi = 1.0 if events >= total else float(stats.beta.ppf(1 - a, events + 1, total - events))
    return lo, hi


def _between_arm_differences(msct: pd.DataFrame, control: pd.DataFrame, scale: str,
                             primary: str = "follow_up_means") -> pd.DataFrame:
    """Closed-form between-arm differences (MSCT minus control) per controlled study and visit, on the
    analysis scale, for BOTH estimands where the data allow: ``follow-up means`` (difference of the
    follow-up means; Cochrane Handbook 10.5.2: valid in a randomised trial) and ``change scores`` (difference
    of the change from baseline: reported, or derived by harmonisation from baseline and follow-up with the
    configured within-person r, ``origin == "derived"``). ``primary`` is the configured estimand where it is
    available at that study and visit, else the other one. At visit 0 the baseline difference is reported
    (never primary). Var = se1^2 + se2^2; interval t-based with n1 + n2 - 2 df. When one study reports a
    visit in several cohorts, the inverse-variance estimate of the per-cohort differences is used."""
    out = _empty_between_arm()
    if msct is None or control is None or msct.empty or control.empty:
        return out
    if primary not in ESTIMANDS:
        raise ValueError(f"model.between_arm_estimand must be one of {sorted(ESTIMANDS)}, got {primary!r}")
    res = []
    for st in sorted(set(control["study_id"]) & set(msct["study_id"])):
        m, c = msct[msct["study_id"] == st], control[control["study_id"] == st]
        for t in sorted(set(m["time_months"]) & set(c["time_months"])):
            found = []
            options = ((("absolute", ESTIMAND_BASELINE, "baseline difference"),) if t <= 0 else
                       (("absolute", ESTIMANDS["follow_up_means"], "difference in follow-up means"),
                        ("change", ESTIMANDS["change_scores"], "difference in change scores")))
            for measure, estimand, method in options:
                mm = m[(m["time_months"] == t) & (m["measure"] == measure)]
                cc = c[(c["time_months"] == t) & (c["measure"] == measure)]
                pairs = []
                for co in sorted(set(mm["cohort"]) | set(cc["cohort"])):
                    a, b = mm[mm["cohort"] == co], cc[cc["cohort"] == co]
                    if len(a) and len(b):
                        pairs.append((a.iloc[0], b.iloc[0]))
                if not pairs and len(mm) and len(cc):
                    pairs.append((mm.sort_values("n").iloc[-1], cc.sort_values("n").iloc[-1]))
                if pairs:
                    found.append((estimand, method, pairs))
            names = [f[0] for f in found]
            chosen = ESTIMANDS[primary] if ESTIMANDS[primary] in names else (names[0] if t > 0 and names else None)
            for estimand, method, pairs in found:
                d = np.array([a["y"] - b["y"] for a, b in pairs])
                v = np.array([a["s"] ** 2 / a["n"] + b["s"] ** 2 / b["n"] for a, b in pairs])
                w = 1.0 / v
                est = float(np.sum(w * d) / np.sum(w))
                se = float(math.sqrt(1.0 / np.sum(w)))
                n1 = float(max(a["n"] for a, _ in pairs))
                n2 = float(max(b["n"] for _, b in pairs))
                df = n1 + n2 - 2
                lo, hi = t_interval(est, se, df)
                origins = {str(a.get("origin", "reported")) for a, _ in pairs} | \
                    {str(b.get("origin", "reported")) for _, b in pairs}
                how = method + (" (derived with the configured within-person r)" if "derived" in origins else "")
                if chosen is not None and estimand == chosen and chosen != ESTIMANDS[primary]:
                    how += f"; primary because {ESTIMANDS[primary]} are not reported"
                res.append({
                    "study_id": st, "visit_months": float(t), "estimate": est, "se": se, "lower": lo, "upper": hi,
                    "msct_n": n1, "control_n": n2,
                    "method": how + ("" if scale == "identity" else f" ({scale} scale)"),
                    "msct_analysis_ids": ";".join(str(a["analysis_id"]) for a, _ in pairs),
                    "control_analysis_ids": ";".join(str(b["analysis_id"]) for _, b in pairs),
                    "estimand": estimand, "df": df, "primary": bool(estimand == chosen),
                })
    return pd.DataFrame(res, columns=out.columns) if res else out


def _control_changes(control: pd.DataFrame) -> pd.DataFrame:
    """Each controlled study's control-arm change from baseline per visit (analysis scale): the reported
    change score, else the change harmonisation derived from baseline and follow-up with the configured
    within-person r; se = s / sqrt(n), t interval with n - 1 df. The control arm is not in the time-course
    model; this is the study's own estimate, shown beside the MSCT arm."""
    cols = ["study_id", "visit_months", "estimate", "se", "lower", "upper", "n", "df", "method", "analysis_id"]
    if control is None or control.empty:
        return pd.DataFrame(columns=cols)
    chg = control[(control["measure"] == "change") & (control["time_months"] > 0)]
    res = []
    for (st, t), grp in chg.groupby(["study_id", "time_months"]):
        grp = grp.assign(_d=grp["origin"] == "derived", _all=grp["cohort"] != "all")
        r = grp.sort_values(["_d", "_all", "n"], ascending=[True, True, False]).iloc[0]
        se = float(r["s"] / math.sqrt(r["n"]))
        lo, hi = t_interval(float(r["y"]), se, float(r["n"]) - 1)
        res.append({"study_id": st, "visit_months": float(t), "estimate": float(r["y"]), "se": se, "lower": lo,
                    "upper": hi, "n": float(r["n"]), "df": float(r["n"]) - 1,
                    "method": ("change derived from baseline and follow-up (configured within-person r)"
                               if r["origin"] == "derived" else "reported change score")
                    + (f"; {r['conversion']}" if _text(r.get("conversion")) else ""),
                    "analysis_id": str(r["analysis_id"])})
    return pd.DataFrame(res, columns=cols)


# ---------------------------------------------------------------------------------------------------------
# binary outcomes
# ---------------------------------------------------------------------------------------------------------
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
    return _round_time(float(t))


def _build_binary(df, outcome, study_set, spec, settings, exclude, listed, kind, label, unit, scale,
                  direction) -> ModelData:
    grid = settings["visit_grid_months"]
    tol = float(settings.get("binary_time_tolerance_months", 0.5))
    rows = []
    control_rows = []
    for _, row in df.iterrows():
        e, n = _num(row.get("events")), _num(row.get("total"))
        if not (np.isfinite(e) and np.isfinite(n) and n >= 1 and 0 <= e <= n):
            exclude(row, "events/total missing or inconsistent")
            continue
        t = row["time_months"]
        rec = {"analysis_id": row.get("analysis_id"), "study_id": str(row["study_id"]), "cohort": row["cohort"],
               "measure": "events", "time_months": t, "bin_months": binary_duration(t, grid, tol), "events": e,
               "total": n, "raw_row_ids": _text(row.get("raw_row_ids")), "_row": row}
        (rows if str(row["arm"]).upper() == "MSCT" else control_rows).append(rec)
    rows = _one_per_duration(pd.DataFrame(rows), exclude)
    control_rows = _one_per_duration(pd.DataFrame(control_rows), exclude)
    between = _binary_between_arm(rows, control_rows)
    control_changes = _binary_control(control_rows)
    for _, r in control_rows.iterrows() if len(control_rows) else []:
        exclude(r["_row"], "control arm: not in the proportion model; used for the between-arm difference")
    if rows.empty:
        return ModelData(outcome, study_set, kind, label, unit, "logit", direction, "no_data",
                         "no poolable MSCT-arm events/total rows", np.zeros(0), [],
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
                  f"{', '.join(_months(b) for b in pooled_bins)}; other durations: the study's own estimate")
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


def _binary_between_arm(msct: pd.DataFrame, control: pd.DataFrame) -> pd.DataFrame:
    """Risk difference (MSCT minus control) per controlled study and follow-up duration, closed form, with
    Newcombe's hybrid score interval (method 10; Wald is poor for 1 event in 12). ``se`` is the Wald SE,
    kept for reference only."""
    out = _empty_between_arm()
    if msct.empty or control.empty:
        return out
    res = []
    for st in sorted(set(msct["study_id"]) & set(control["study_id"])):
        m, c = msct[msct["study_id"] == st], control[control["study_id"] == st]
        for t in sorted(set(m["bin_months"].dropna()) & set(c["bin_months"].dropna())):
            a = m[m["bin_months"] == t].iloc[0]
            b = c[c["bin_months"] == t].iloc[0]
            p1, p2 = a["events"] / a["total"], b["events"] / b["total"]
            se = math.sqrt(p1 * (1 - p1) / a["total"] + p2 * (1 - p2) / b["total"])
            lo, hi = newcombe_interval(a["events"], a["total"], b["events"], b["total"])
            res.append({"study_id": st, "visit_months": float(t), "estimate": p1 - p2, "se": se,
                        "lower": lo, "upper": hi, "msct_n": a["total"], "control_n": b["total"],
                        "method": (f"risk difference {int(a['events'])}/{int(a['total'])} vs "
                                   f"{int(b['events'])}/{int(b['total'])} (Newcombe hybrid score interval)"),
                        "msct_analysis_ids": str(a["analysis_id"]), "control_analysis_ids": str(b["analysis_id"]),
                        "estimand": ESTIMAND_RISK_DIFFERENCE, "df": float("nan"), "primary": True})
    return pd.DataFrame(res, columns=out.columns) if res else out


def _binary_control(control: pd.DataFrame) -> pd.DataFrame:
    """The control arm's own proportion per study and duration with its exact (Clopper-Pearson) interval."""
    cols = ["study_id", "visit_months", "estimate", "se", "lower", "upper", "n", "df", "method", "analysis_id"]
    if control is None or control.empty:
        return pd.DataFrame(columns=cols)
    res = []
    for _, r in control.iterrows():
        lo, hi = clopper_pearson(r["events"], r["total"])
        res.append({"study_id": r["study_id"], "visit_months": float(r["bin_months"]),
                    "estimate": r["events"] / r["total"], "se": float("nan"), "lower": lo, "upper": hi,
                    "n": float(r["total"]), "df": float("nan"),
                    "method": f"{int(r['events'])}/{int(r['total'])} (Clopper-Pearson exact interval)",
                    "analysis_id": str(r["analysis_id"])})
    return pd.DataFrame(res, columns=cols)
