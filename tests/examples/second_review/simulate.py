"""Simulate the second review's extraction sheets (synthetic data; nothing here comes from a publication).

Exercise therapy versus usual care for knee osteoarthritis, five studies, visits at 0, 3, 6 and 12 months.
Patients are drawn from the parameters in TRUTH, and each study reports what a published study would: arm-level
means and SDs (or, for one study, only the change from baseline with its standard error), and responders over
the patients seen at 12 months. `python simulate.py` rewrites data/raw/outcomes.csv from the seed; the studies
and appraisal sheets are written by hand (README.md). tests/test_second_review.py imports TRUTH to check that the
pooled estimates recover it, and checks that outcomes.csv is what this script writes.
"""

from __future__ import annotations

import csv
import io
import math
import sys
from pathlib import Path

import numpy as np

SEED = 20240805
VISITS = (0, 3, 6, 12)
SOURCE_URL = "https://example.org/synthetic"
LOCATOR = "simulated (tests/examples/second_review/README.md)"

#: The simulated truth. Continuous outcomes: `change` is the mean change from baseline of the arm at each
#: follow-up visit (womac_pain: points; effusion_volume: ratio of means, follow-up / baseline); each study's
#: change is shifted by one random effect with SD `tau` (points, or log ratio), the same at every visit.
#: Patients: `baseline_mean` (study means drawn around it with SD `baseline_between_sd`), per-patient SD `sd`
#: (effusion_volume: SD of log volume), correlation `r` between any two visits of a patient.
#: Binary: `p` is the typical proportion of responders at 12 months, study logits shifted with SD `tau`.
TRUTH = {
    "womac_pain": {
        "scale": "identity", "baseline_mean": 10.0, "baseline_between_sd": 1.0, "sd": 3.5, "r": 0.5, "tau": 0.6,
        "change": {"exercise": {3: -2.5, 6: -3.2, 12: -3.0}, "usual_care": {3: -0.8, 6: -1.0, 12: -1.0}},
    },
    "effusion_volume": {
        "scale": "log", "baseline_mean": 8.0, "baseline_between_sd": 0.15, "sd": 0.6, "r": 0.5, "tau": 0.1,
        "change": {"exercise": {3: 0.85, 6: 0.75, 12: 0.70}, "usual_care": {3: 0.97, 6: 0.95, 12: 0.95}},
    },
    "oarsi_response": {"scale": "logit", "tau": 0.3, "p": {"exercise": 0.55, "usual_care": 0.35}},
}

#: What each study reports: arms with their patients at each visit (attrition), which visits each outcome is
#: reported at, and how. `change_se` = the change from baseline as estimate and standard error only (no n, no SD).
STUDIES = {
    "lund2019": {"arms": {"exercise": (40, 38, 37, 36), "usual_care": (40, 39, 37, 35)},
                 "womac_pain": (0, 3, 6, 12), "effusion_volume": (0, 6, 12), "report": "mean_sd"},
    "moreau2020": {"arms": {"exercise": (30, 29, 28, 27)},
                   "womac_pain": (0, 3, 6, 12), "effusion_volume": (0, 3, 6, 12), "report": "mean_sd"},
    "tanaka2021": {"arms": {"exercise": (24, 24, 23, 22)},
                   "womac_pain": (3, 6, 12), "effusion_volume": (0, 12), "report": "change_se"},
    "okafor2022": {"arms": {"exercise": (45, 43, 41, 40)},
                   "womac_pain": (0, 3, 6, 12), "effusion_volume": (0, 6, 12), "report": "mean_sd"},
    "silva2023": {"arms": {"exercise": (36, 35, 35, 33)},
                  "womac_pain": (0, 6, 12), "effusion_volume": (0, 3, 6, 12), "report": "mean_sd"},
}
ARM_LABELS = {"exercise": "exercise therapy", "usual_care": "usual care"}
REPORTED = {"womac_pain": ("WOMAC pain subscale", "points"), "effusion_volume": ("knee effusion volume (ultrasound)", "mL"),
            "oarsi_response": ("OMERACT-OARSI responder", "%")}
COLUMNS = ["row_id", "study_id", "arm", "arm_label", "outcome", "outcome_reported", "measure", "cohort",
           "time_value", "time_unit", "n", "statistic", "mean", "sd", "se", "ci_lower", "ci_upper", "ci_level",
           "median", "q1", "q3", "min", "max", "events", "total", "percent", "count", "value", "unit", "p_value",
           "usable", "not_usable_reason", "assumption", "source_url", "locator", "notes"]


def _study_effects(rng: np.random.Generator, spec: dict) -> tuple[float, float]:
    """A study's baseline level (log level for effusion) and random effect on the change, shared by its arms:
    randomised arms come from one population, so they differ only by what the programme does."""
    if spec["scale"] == "identity":
        level = rng.normal(spec["baseline_mean"], spec["baseline_between_sd"])
    else:  # log-normal: the arithmetic mean at a visit is exp(mu + sd^2 / 2), so the ratio of means is exp(shift)
        level = math.log(spec["baseline_mean"]) - spec["sd"] ** 2 / 2 + rng.normal(0.0, spec["baseline_between_sd"])
    return level, rng.normal(0.0, spec["tau"])


def _patients(rng: np.random.Generator, spec: dict, arm: str, n: int, level: float, effect: float) -> np.ndarray:
    """n patients x 4 visits on the outcome's own scale (mL for effusion: log-normal).

    Drawn through the Cholesky factor of the visits' covariance, written out by hand, so that the sheet is the same
    on every machine (NumPy's default SVD basis of a matrix with repeated eigenvalues depends on the LAPACK build).
    """
    k = len(VISITS)
    cov = spec["sd"] ** 2 * (spec["r"] * np.ones((k, k)) + (1 - spec["r"]) * np.eye(k))
    shift = (lambda c: c) if spec["scale"] == "identity" else math.log
    mean = np.array([level] + [level + shift(spec["change"][arm][t]) + effect for t in VISITS[1:]])
    draws = mean + rng.standard_normal((n, k)) @ _cholesky(cov).T
    return draws if spec["scale"] == "identity" else np.exp(draws)


def _cholesky(cov: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor by the textbook recurrence (no LAPACK call, so no build-dependent rounding)."""
    k = len(cov)
    lower = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1):
            rest = sum(lower[i, m] * lower[j, m] for m in range(j))
            lower[i, j] = math.sqrt(cov[i, i] - rest) if i == j else (cov[i, j] - rest) / lower[j, j]
    return lower


def rows() -> list[dict]:
    """Every row of the outcomes sheet, in study, outcome, arm, visit order (deterministic from SEED)."""
    rng = np.random.default_rng(SEED)
    out: list[dict] = []
    for study, design in STUDIES.items():
        count = 0

        def add(**values):
            nonlocal count
            count += 1
            row = dict.fromkeys(COLUMNS, "")
            row.update(row_id=f"{study}-{count:03d}", study_id=study, cohort="all", time_unit="months",
                       usable="yes", source_url=SOURCE_URL, locator=LOCATOR, notes="synthetic")
            row.update({k: str(v) for k, v in values.items()})
            out.append(row)

        for outcome in ("womac_pain", "effusion_volume"):
            spec = TRUTH[outcome]
            reported, unit = REPORTED[outcome]
            level, effect = _study_effects(rng, spec)
            for arm, ns in design["arms"].items():
                values = _patients(rng, spec, arm, ns[0], level, effect)
                for visit in design[outcome]:
                    i = VISITS.index(visit)
                    seen = values[: ns[i]]  # the first ns[i] patients are those still seen: missing at random
                    common = dict(arm=arm, arm_label=ARM_LABELS[arm], outcome=outcome, outcome_reported=reported,
                                  time_value=visit, unit=unit)
                    if design["report"] == "change_se" and outcome == "womac_pain":
                        change = seen[:, i] - seen[:, 0]
                        add(**common, measure="change_from_baseline", statistic="estimate_se",
                            mean=f"{change.mean():.2f}", se=f"{change.std(ddof=1) / math.sqrt(len(change)):.3f}")
                    else:
                        add(**common, measure="absolute", n=ns[i], statistic="mean_sd",
                            mean=f"{seen[:, i].mean():.2f}", sd=f"{seen[:, i].std(ddof=1):.2f}")
        spec = TRUTH["oarsi_response"]
        for arm, ns in design["arms"].items():
            logit = math.log(spec["p"][arm] / (1 - spec["p"][arm])) + rng.normal(0.0, spec["tau"])
            total = ns[-1]
            events = int(rng.binomial(total, 1 / (1 + math.exp(-logit))))
            add(arm=arm, arm_label=ARM_LABELS[arm], outcome="oarsi_response",
                outcome_reported=REPORTED["oarsi_response"][0], measure="absolute", time_value=12,
                statistic="events_total", events=events, total=total, percent=f"{100 * events / total:.1f}",
                unit="%")
    return out


def outcomes_csv() -> str:
    """The text of data/raw/outcomes.csv."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows())
    return buffer.getvalue()


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "data" / "raw" / "outcomes.csv"
    target.write_text(outcomes_csv(), encoding="utf-8")
