"""Simulation helpers for tests, calibration and benchmarks: analysis tables simulated from the continuous
model, truths drawn from its priors, and a small synthetic review (outcome dictionary + analysis table) shaped
like real evidence. Generic outcomes and arms only (arm ids ``INTERVENTION``/``COMPARATOR``)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from timecourse_meta.model.build import R_JITTER

#: arm ids of the simulated tables, and the model settings' ``arms`` entry that reads them
INTERVENTION, COMPARATOR = "treatment", "control"
ARMS = {"intervention": INTERVENTION, "comparator": COMPARATOR}


def simulate_table(design: list[dict], truth: dict, seed: int, outcome: str = "sim_outcome",
                   structure_within: str = "cs", structure_between: str = "ar1", lag_months: float = 3.0
                   ) -> pd.DataFrame:
    """An analysis table (identity scale) simulated from the continuous model, in numpy.

    ``design``: one dict per study: ``study_id``, ``rows``: list of dicts with ``measure`` (absolute |
    change_from_baseline), ``time`` (months), ``n``, ``sd`` (per-patient SD), optional ``cohort``; optional
    ``baseline`` (mean level). ``truth``: ``visits`` (post-baseline grid, months), ``delta`` (Delta at those
    visits), ``tau``, ``rho_within``, ``rho_between``. The sampling covariance and random effects follow the
    model exactly (nested-subset covariance, CS/AR(1) correlations)."""
    rng = np.random.default_rng(seed)
    visits = np.asarray(truth["visits"], float)
    delta = np.asarray(truth["delta"], float)
    K = len(visits)
    if structure_between == "ar1":
        lagb = np.abs(visits[:, None] - visits[None, :]) / lag_months
    else:
        lagb = (np.abs(visits[:, None] - visits[None, :]) > 0).astype(float)
    R = np.where(lagb == 0, 1.0, np.power(truth["rho_between"], lagb))
    R = (1 - R_JITTER) * R + R_JITTER * np.eye(K)
    Lr = np.linalg.cholesky(R)
    recs = []
    k = 0
    for st in design:
        u = truth["tau"] * Lr @ rng.standard_normal(K)
        dstudy = np.concatenate([[0.0], delta + u])
        grid = np.concatenate([[0.0], visits])
        for measure in ("absolute", "change_from_baseline"):
            rws = [r for r in st["rows"] if r["measure"] == measure]
            if not rws:
                continue
            t = np.array([float(r["time"]) for r in rws])
            n = np.array([float(r["n"]) for r in rws])
            s = np.array([float(r["sd"]) for r in rws])
            if structure_within == "cs":
                lag = (np.abs(t[:, None] - t[None, :]) > 0).astype(float)
            else:
                lag = np.abs(t[:, None] - t[None, :]) / lag_months
            C = np.where(lag == 0, 1.0, np.power(truth["rho_within"], lag))
            cov = C * np.outer(s, s) * np.minimum.outer(n, n) / np.outer(n, n)
            mu = np.array([dstudy[int(np.argmin(np.abs(grid - tt)))] for tt in t])
            if measure == "absolute":
                mu = mu + float(st.get("baseline", 10.0))
            y = rng.multivariate_normal(mu, cov)
            for r, yy in zip(rws, y):
                k += 1
                recs.append({
                    "analysis_id": f"sim{k:04d}", "study_id": st["study_id"], "arm": INTERVENTION,
                    "arm_label": "treatment",
                    "outcome": outcome, "kind": "continuous", "measure": measure, "origin": "reported",
                    "cohort": r.get("cohort", "all"), "time_months": float(r["time"]), "n": float(r["n"]),
                    "mean": float(yy), "sd": float(r["sd"]), "events": np.nan, "total": np.nan, "unit": "points",
                    "analysis_scale": "identity", "direction_of_benefit": "decrease", "method": "reported",
                    "assumption": "", "skewness_flag": False, "poolable": True, "not_poolable_reason": "",
                    "raw_row_ids": f"raw{k:04d}", "source": "simulation"})
    return pd.DataFrame(recs)


def draw_truth_from_prior(visits, priors: dict, seed: int, reference_months: float = 3.0) -> dict:
    """Delta (random walk: J + Brownian motion), tau (half-normal), rho_within, rho_between drawn from the
    model's priors."""
    rng = np.random.default_rng(seed)
    visits = np.asarray(visits, float)
    gaps = np.diff(np.concatenate([[0.0], visits]))
    delta = priors["delta_sd"] * rng.standard_normal() + \
        np.cumsum(priors["step_sd"] * np.sqrt(gaps / reference_months) * rng.standard_normal(len(visits)))
    wc = priors.get("within_study_correlation", {"alpha": 2.0, "beta": 2.0})
    bc = priors.get("between_visit_correlation", {"alpha": 2.0, "beta": 2.0})
    return {"visits": visits, "delta": delta, "tau": abs(rng.normal(0, priors["tau_scale"])),
            "rho_within": rng.beta(wc["alpha"], wc["beta"]), "rho_between": rng.beta(bc["alpha"], bc["beta"])}


def example_outcome_dictionary() -> dict:
    """A small outcome dictionary matching ``example_analysis_table`` (tests, benchmark); two outcomes carry
    dictionary priors, the symptom score takes the data-derived rule."""
    return {
        "symptom_score": {"label": "Symptom score", "kind": "continuous", "canonical_unit": "points",
                   "direction_of_benefit": "decrease", "analysis_scale": "identity"},
        "biomarker_24h": {"label": "24-h biomarker", "kind": "continuous", "canonical_unit": "g/24h",
                            "direction_of_benefit": "decrease", "analysis_scale": "log",
                          "priors": {"log": {"delta_sd": 1.0, "tau_scale": 0.5, "step_sd": 0.5, "baseline_sd": 2.0,
                                             "rationale": "log ratio of means: +/-2 spans a 7-fold change"}}},
        "albumin_level": {"label": "Albumin level", "kind": "continuous", "canonical_unit": "g/L",
                          "direction_of_benefit": "increase", "analysis_scale": "identity",
                          "priors": {"identity": {"delta_sd": 10.0, "tau_scale": 4.0, "step_sd": 5.0,
                                                  "baseline_sd": 20.0, "rationale": "+/-20 g/L is the extreme"}}},
        "marker_c": {"label": "Marker C", "kind": "continuous", "canonical_unit": "g/L",
                     "direction_of_benefit": "increase", "analysis_scale": "identity"},
        "remission": {"label": "Remission", "kind": "binary", "canonical_unit": "",
                      "direction_of_benefit": "increase", "analysis_scale": "logit"},
    }


def example_analysis_table() -> pd.DataFrame:
    """A synthetic analysis table shaped like real evidence (see docs/analysis_table.md): a symptom score in 4
    studies (an RCT reporting change at 6 months with a control arm; absolute means at 0/1/3, 0/12 and
    0/0.92/1.85/3.69/5.54 months), a biomarker (log scale) in 3 studies incl. a subset cohort and a change
    score anchored by a follow-up mean, an albumin level in one study, marker C median-only, remission (binary)
    in 3 studies with a control arm, and a derived change row that must not enter the likelihood. Arm ids
    ``INTERVENTION``/``COMPARATOR`` (model settings: ``{"arms": ARMS}``)."""
    recs = []

    def add(study, outcome, measure, t, n, mean=np.nan, sd=np.nan, arm=INTERVENTION, cohort="all", origin="reported",
            events=np.nan, total=np.nan, poolable=True, reason="", method="reported", kind="continuous",
            scale="identity", direction="decrease", unit="points"):
        recs.append({
            "analysis_id": f"{study}-{outcome}-{len(recs):03d}", "study_id": study, "arm": arm,
            "arm_label": "active treatment" if arm == INTERVENTION else "standard care", "outcome": outcome,
            "kind": kind,
            "measure": measure, "origin": origin, "cohort": cohort, "time_months": t, "n": n, "mean": mean,
            "sd": sd, "events": events, "total": total, "unit": unit, "analysis_scale": scale,
            "direction_of_benefit": direction, "method": method, "assumption": "", "skewness_flag": False,
            "poolable": poolable, "not_poolable_reason": reason, "raw_row_ids": f"raw-{len(recs):03d}",
            "source": "synthetic#table1"})

    # symptom score ------------------------------------------------------------------------------------------------
    add("rct_a", "symptom_score", "absolute", 0, 18, 14.0, 4.0)
    add("rct_a", "symptom_score", "change_from_baseline", 6, 18, -7.5, 4.5)
    add("rct_a", "symptom_score", "absolute", 0, 18, 13.5, 4.2, arm=COMPARATOR)
    add("rct_a", "symptom_score", "change_from_baseline", 6, 18, -4.0, 5.0, arm=COMPARATOR)
    for t, m, s in ((0, 12.1, 3.9), (1, 9.0, 4.1), (3, 6.8, 3.7)):
        add("sa_b", "symptom_score", "absolute", t, 15, m, s)
    add("sa_b", "symptom_score", "change_from_baseline", 3, 15, -5.3, 3.0, origin="derived", method="change_sd_from_r")
    for t, m, s in ((0, 15.2, 5.0), (12, 6.1, 4.0)):
        add("sa_c", "symptom_score", "absolute", t, 40 if t == 0 else 35, m, s)
    for t, m, s in ((0, 13.0, 4.5), (4 * 12 / 52, 10.2, 4.6), (8 * 12 / 52, 8.8, 4.2), (16 * 12 / 52, 7.6, 4.0),
                    (24 * 12 / 52, 6.9, 3.8)):
        add("sa_d", "symptom_score", "absolute", round(t, 4), 22, m, s)
    # biomarker (g/24h, log scale)  ---------------------------------------------------------------------------
    kw = dict(scale="log", unit="g/24h")
    for t, m, s in ((0, 3.2, 2.1), (1, 2.3, 1.8), (3, 1.6, 1.3)):
        add("sa_b", "biomarker_24h", "absolute", t, 15, m, s, **kw)
    for t, m, s, n in ((0, 2.8, 1.9, 40), (12, 1.1, 0.9, 35)):
        add("sa_c", "biomarker_24h", "absolute", t, n, m, s, **kw)
    add("rct_a", "biomarker_24h", "absolute", 0, 18, 3.0, 2.0, **kw)
    add("rct_a", "biomarker_24h", "absolute", 6, 18, 1.4, 1.1, **kw)
    add("rct_a", "biomarker_24h", "change_from_baseline", 6, 18, -1.6, 1.5, **kw)
    add("rct_a", "biomarker_24h", "absolute", 6, 18, 2.4, 1.6, arm=COMPARATOR, **kw)
    add("rct_a", "biomarker_24h", "change_from_baseline", 6, 18, -0.6, 1.4, arm=COMPARATOR, **kw)
    add("sa_d", "biomarker_24h", "absolute", 0, 12, 2.9, 1.7, cohort="seen_at_1m", **kw)
    add("sa_d", "biomarker_24h", "absolute", 1, 12, 2.2, 1.5, cohort="seen_at_1m", **kw)
    # albumin: one study ---------------------------------------------------------------------------------------
    for t, m, s in ((0, 27.0, 5.0), (1, 29.5, 5.2), (3, 32.0, 4.8)):
        add("sa_b", "albumin_level", "absolute", t, 15, m, s, direction="increase", unit="g/L")
    # marker C: median only ------------------------------------------------------------------------------------------
    add("sa_c", "marker_c", "absolute", 0, 40, 0.55, poolable=False, reason="median without spread (median_only)",
        method="median_only", direction="increase", unit="g/L")
    # remission (binary) ---------------------------------------------------------------------------------------
    bk = dict(kind="binary", scale="logit", direction="increase", unit="")
    add("rct_a", "remission", "absolute", 6, 18, events=9, total=18, **bk)
    add("rct_a", "remission", "absolute", 6, 18, events=4, total=18, arm=COMPARATOR, **bk)
    add("sa_c", "remission", "absolute", 12, 35, events=21, total=35, **bk)
    add("sa_d", "remission", "absolute", round(24 * 12 / 52, 4), 22, events=10, total=22, **bk)
    add("sa_b", "remission", "absolute", 12, 15, events=8, total=15, **bk)
    return pd.DataFrame(recs)
