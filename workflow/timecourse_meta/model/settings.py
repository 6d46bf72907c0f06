"""The settings one outcome's model depends on, cut from the resolved config (and nothing else, so that a
change to another outcome's prior or to the figures does not refit it)."""

from __future__ import annotations

from timecourse_meta.core import review
from timecourse_meta.data import linkage


def model_settings(cfg: dict, outcome: str) -> dict:
    """The resolved settings one outcome's model depends on (and nothing else, so reruns stay minimal)."""
    model = cfg["model"]
    priors = model["priors"]
    return {
        **{k: v for k, v in model.items() if k != "priors"},
        "priors": {k: priors[k] for k in ("default", outcome) if k in priors},
        "sampling": cfg["sampling"],
        "diagnostics": cfg["diagnostics"],
        "reports": cfg.get("reports", {"rule": linkage.DEFAULT_RULE}),
        # a single study's change from absolute means (no model) uses the configured within-person r
        "within_person_correlation": cfg["harmonisation"]["within_person_correlation"],
        "arms": model_arms(cfg),
    }


def model_arms(cfg: dict) -> dict:
    """The arms entry of the model settings: arm ids of the analysis table and their short names for notes."""
    arms = review.arms(cfg)
    return {"intervention": arms.intervention.id, "comparator": arms.comparator.id,
            "intervention_short": arms.intervention.short, "comparator_short": arms.comparator.short}
