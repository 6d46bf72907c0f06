"""The prior scales one outcome's model uses, each with its source.

Per-outcome scales live in the review's outcome dictionary (``priors:`` of each outcome, one entry per analysis
scale, each with a one-line ``rationale``; schema workflow/schemas/outcomes.schema.yaml); the engine keeps only
generic rules. Order, per key: ``settings["priors"][outcome]`` (config ``model.priors.<outcome>``, non-null keys)
> the dictionary's ``priors.<analysis_scale>`` of the outcome > ``settings["priors"]["default"]`` (continuous
outcomes) > the generic rule: continuous identity scale ``DATA_DERIVED_MULTIPLIERS`` x the typical per-patient
SD of the data; log or logit scale ``RATIO_SCALE_DEFAULTS`` (unit-free); binary ``DEFAULT_BINARY_PRIOR``. An
outcome without dictionary priors therefore still gets a prior, and its source says which rule gave it (the
manuscript's prior table prints the sources).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from timecourse_meta.model.base import ModelData, resolved_settings


HETEROGENEITY_FAMILIES = ("half_normal", "half_cauchy", "half_student_t", "exponential")

#: Binary outcomes without priors in the dictionary or config (any name): logit of the proportion.
DEFAULT_BINARY_PRIOR = {"mu_sd": 2.0, "tau_scale": 0.5,
                        "rationale": "rare events: N(0, 2^2) on the logit of the typical proportion puts 7% of "
                                     "its mass below 5% and 7% above 95% (95% between 2% and 98%), so 1 event in "
                                     "12 is not pulled towards 50%; half-normal(0.5) on the logit-scale tau "
                                     "(95% below 1: study odds within x/÷ 7 of the typical) keeps 2-3 studies "
                                     "from implying implausible spread"}

#: Continuous identity-scale outcomes without priors in the dictionary or config: multiples of the typical
#: per-patient SD on the analysis scale (s_ref, the median SD of the baseline/absolute rows): a change of 1 s_ref
#: is large and 2 s_ref is extreme.
DATA_DERIVED_MULTIPLIERS = {"delta_sd": 1.0, "tau_scale": 0.5, "step_sd": 0.5, "baseline_sd": 3.0}

#: Continuous log- or logit-scale outcomes without priors in the dictionary or config: unit-free defaults.
RATIO_SCALE_DEFAULTS = {"delta_sd": 1.0, "tau_scale": 0.5, "step_sd": 0.5, "baseline_sd": 3.0}

CONTINUOUS_KEYS = ("delta_sd", "tau_scale", "step_sd", "baseline_sd")
BINARY_KEYS = ("mu_sd", "tau_scale")


def dictionary_priors(md: ModelData) -> tuple[dict, str]:
    """The outcome dictionary's prior scales of this outcome at its analysis scale, and their source text."""
    entry = (md.priors or {}).get(md.analysis_scale) or {}
    return entry, f"outcome dictionary ({md.outcome}.priors.{md.analysis_scale})"


def resolve_priors(md: ModelData, settings: dict) -> dict[str, Any]:
    """The numbers the model uses, each with its source (``sources``), in the order of the module docstring.
    ``md`` needs outcome, kind, analysis_scale, reference_sd and ``priors`` (the dictionary's entry)."""
    settings = resolved_settings(settings)
    cfg_all = settings.get("priors") or {}
    cfg = {k: v for k, v in (cfg_all.get(md.outcome) or {}).items() if v is not None}
    cfg_default = {k: v for k, v in (cfg_all.get("default") or {}).items() if v is not None}
    from_dictionary, dictionary_source = dictionary_priors(md)
    out: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for k in (BINARY_KEYS if md.kind == "binary" else CONTINUOUS_KEYS):
        if k in cfg:
            out[k], sources[k] = float(cfg[k]), "config (outcome)"
        elif k in from_dictionary:
            out[k], sources[k] = float(from_dictionary[k]), dictionary_source
        elif md.kind == "binary":
            out[k], sources[k] = DEFAULT_BINARY_PRIOR[k], "DEFAULT_BINARY_PRIOR"
        elif k in cfg_default:
            out[k], sources[k] = float(cfg_default[k]), "config (default)"
        elif md.analysis_scale in ("log", "logit"):
            out[k], sources[k] = RATIO_SCALE_DEFAULTS[k], f"unit-free {md.analysis_scale}-scale default"
        else:
            ref = md.reference_sd if np.isfinite(md.reference_sd) and md.reference_sd > 0 else 1.0
            out[k] = DATA_DERIVED_MULTIPLIERS[k] * ref
            sources[k] = f"data-derived: {DATA_DERIVED_MULTIPLIERS[k]} x typical per-patient SD ({ref:.4g})"
    het = settings.get("heterogeneity_prior") or {}
    out["tau_family"] = het.get("family", "half_normal")
    out["tau_nu"] = float(het.get("nu", 3.0))
    if out["tau_family"] not in HETEROGENEITY_FAMILIES:
        raise ValueError(f"heterogeneity_prior.family must be one of {HETEROGENEITY_FAMILIES}")
    for key in ("within_study_correlation", "between_visit_correlation"):
        cfg_key = settings.get(key) or {}
        pr = cfg_key.get("prior") or {}
        out[key] = {"alpha": float(pr.get("alpha", 2.0)), "beta": float(pr.get("beta", 2.0)),
                    "structure": cfg_key.get("structure", "cs"),
                    "lag_months": float(cfg_key.get("lag_months", 3.0))}
        if cfg_key.get("fixed") is not None:
            out[key]["fixed"] = float(cfg_key["fixed"])
    out["sources"] = sources
    return out


def tau_prior_quantiles(priors: dict, qs=(0.5, 0.025, 0.975)) -> list[float]:
    """Quantiles of the heterogeneity prior (for the summary's prior columns)."""
    from scipy import stats
    scale, fam = priors["tau_scale"], priors["tau_family"]
    if fam == "half_normal":
        return [float(stats.halfnorm.ppf(q, scale=scale)) for q in qs]
    if fam == "half_cauchy":
        return [float(stats.halfcauchy.ppf(q, scale=scale)) for q in qs]
    if fam == "half_student_t":
        return [float(stats.t.ppf((1 + q) / 2, priors["tau_nu"]) * scale) for q in qs]
    return [float(stats.expon.ppf(q, scale=scale)) for q in qs]


def tau_rv(pm, priors, scale=None):
    """tau with the configured heterogeneity prior family and scale (log transform for sampling); ``scale``: a
    ``pm.Data`` holding the scale, so that another scale is a data change (default: the number)."""
    fam = priors["tau_family"]
    scale = priors["tau_scale"] if scale is None else scale
    if fam == "half_normal":
        return pm.HalfNormal("tau", sigma=scale)
    if fam == "half_cauchy":
        return pm.HalfCauchy("tau", beta=scale)
    if fam == "half_student_t":
        return pm.HalfStudentT("tau", nu=priors["tau_nu"], sigma=scale)
    return pm.Exponential("tau", lam=1.0 / scale)
