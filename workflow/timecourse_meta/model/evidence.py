"""What a reported number is: the ``evidence`` vocabulary of the model summary and the ``label`` wording of each
category, shared by summary.csv, tables, figures and text."""
from __future__ import annotations

import re

import numpy as np


class Evidence:
    """What a reported number is: one vocabulary for summary.csv, tables, figures and text (``evidence``
    column of the model summary; the ``label`` column is its human wording, see the ``label_*`` helpers)."""

    STUDY_ESTIMATE = "study_estimate"    # one study's own estimate: change with a t CI, or events/total exact CI
    POOLED = "pooled"                    # a model estimate at a visit/duration where >= 2 studies report
    INTERPOLATED = "interpolated"        # model time course at a visit with 0 or 1 study (model has >= 2)
    PRIOR_DOMINATED = "prior_dominated"  # CrI at least PRIOR_DOMINATED_RATIO as wide as the prior's
    MEDIAN_ONLY = "median_only"          # a reported median without spread: listed, never pooled
    BETWEEN_ARM = "between_arm"          # a controlled study's own intervention-minus-comparator difference
    SHRUNKEN_STUDY = "shrunken_study"    # a study's estimate shrunken towards the pooled time course
    NOT_ESTIMABLE = "not_estimable"      # nothing to estimate (no data, outcome not modelled)

    ALL = ("study_estimate", "pooled", "interpolated", "prior_dominated", "median_only", "between_arm",
           "shrunken_study", "not_estimable")

#: a model interval at least this fraction of the prior's interval width says the data added little
PRIOR_DOMINATED_RATIO = 0.9


def study_display(study_id: str) -> str:
    """'smith2017' -> 'Smith 2017' (author + year ids); other ids unchanged."""
    m = re.fullmatch(r"([a-z]+)(\d{4})([a-z]?)", str(study_id))
    return f"{m.group(1).capitalize()} {m.group(2)}{m.group(3)}" if m else str(study_id)


def months_text(t: float) -> str:
    if not np.isfinite(t):
        return "time not reported"
    return f"{t:.3g} month" + ("" if abs(t - 1) < 1e-9 else "s")


def label_study(study_id: str, n_patients, visit: float | None = None) -> str:
    """'study's own estimate (Smith 2017, 12 patients)' ('patients not reported' for an estimate with its SE only)."""
    extra = "; follow-up duration not reported" if visit is not None and not np.isfinite(visit) else ""
    count = f"{int(n_patients)} patients" if np.isfinite(float(n_patients)) else "patients not reported"
    return f"study's own estimate ({study_display(study_id)}, {count}{extra})"


def _fitted_to(n_studies_model: int, n_patients_model: int) -> str:
    return f"time course fitted to {n_studies_model} studies ({n_patients_model} patients)"


def label_pooled(visit: float, n_studies: int, n_patients: int, n_studies_model: int, n_patients_model: int,
                 time_course: bool = True) -> str:
    """'pooled at 6 months from 2 studies (32 patients); time course fitted to 4 studies (56 patients)'."""
    head = f"pooled at {months_text(visit)} from {n_studies} studies ({n_patients} patients)"
    return f"{head}; {_fitted_to(n_studies_model, n_patients_model)}" if time_course else head


def label_interpolated(visit: float, studies: list[str], n_patients: int, n_studies_model: int,
                       n_patients_model: int) -> str:
    """'model-based interpolation: no study at 9 months; time course fitted to 4 studies (56 patients)'."""
    if not studies:
        head = f"model-based interpolation: no study at {months_text(visit)}"
    else:
        head = (f"model-based interpolation: 1 study at {months_text(visit)} ({study_display(studies[0])}, "
                f"{n_patients} patients)")
    return f"{head}; {_fitted_to(n_studies_model, n_patients_model)}"


def label_prior_dominated(width_ratio: float, what: str, level: float = 0.95) -> str:
    """'prior-dominated: the 95% interval is 97% as wide as the prior's; <what>' (``level``: the coverage)."""
    return (f"prior-dominated: the {100 * level:g}% interval is {100 * width_ratio:.0f}% as wide as the prior's; "
            f"{what}")


def label_between_arm(study_id: str, intervention_n, comparator_n, estimand: str, primary: bool) -> str:
    """'between-arm difference (Smith 2017, 12 vs 10 patients; follow-up means, primary)'."""
    role = "primary" if primary else "secondary"
    counts = (f"{int(intervention_n)} vs {int(comparator_n)} patients"
              if np.isfinite(float(intervention_n)) and np.isfinite(float(comparator_n)) else "patients not reported")
    return (f"between-arm difference ({study_display(study_id)}, {counts}; "
            f"{estimand}, {role})")

LABEL_MEDIAN_ONLY = "median only: listed, not pooled"


def prior_dominated(lower: float, upper: float, prior_lower: float, prior_upper: float) -> tuple[bool, float]:
    """(whether the interval is at least ``PRIOR_DOMINATED_RATIO`` as wide as the prior's, width ratio)."""
    pw = prior_upper - prior_lower
    if not (np.isfinite(pw) and pw > 0 and np.isfinite(upper - lower)):
        return False, float("nan")
    ratio = float((upper - lower) / pw)
    return ratio >= PRIOR_DOMINATED_RATIO, ratio


def with_prior_check(evidence: str, label: str, lo, hi, plo, phi, level: float = 0.95) -> tuple[str, str]:
    """The evidence category and label, turned into prior_dominated when the interval is as wide as the prior's."""
    dominated, ratio = prior_dominated(lo, hi, plo, phi)
    if dominated:
        return Evidence.PRIOR_DOMINATED, label_prior_dominated(ratio, label, level)
    return evidence, label
