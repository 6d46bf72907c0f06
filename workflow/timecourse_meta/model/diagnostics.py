"""The convergence gate: ArviZ diagnostics of one fitted outcome against thresholds from config.

``diagnostics_table`` computes, ``check_convergence`` raises ``ConvergenceError`` when a threshold fails,
``run_diagnostics`` writes the table first (so the user can read it) and then raises.

Checked: every posterior variable (free parameters and deterministic functions of them, element by element;
elements constant across all draws, e.g. fixed zeros, are skipped): split R-hat (rank-normalised, ArviZ),
bulk ESS and tail ESS; the sampler: number of divergent transitions after warm-up and E-BFMI per chain.
Defaults (``settings["diagnostics"]``): max_rhat 1.01, min_ess_bulk 400, min_ess_tail 400,
max_divergences 0, min_bfmi 0.3. An idata without a posterior (an outcome reported as the study's own
estimate, or with nothing to model) is not a fit: it does not fail, and its single ``status`` row says
"not sampled (...)" in the ``gate`` column, never "passed". Every row carries the outcome's ``gate``:
``passed``, ``failed`` or ``not sampled (<why>)``.
"""
from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pandas as pd

from timecourse_meta.core import atomic
from timecourse_meta.core.errors import EngineError

DEFAULT_THRESHOLDS = {"max_rhat": 1.01, "min_ess_bulk": 400, "min_ess_tail": 400, "max_divergences": 0,
                      "min_bfmi": 0.3}

COLUMNS = ["outcome", "study_set", "kind", "parameter", "rhat", "ess_bulk", "ess_tail", "mcse_mean", "value",
           "threshold", "passed", "failed_checks", "gate"]

GATE_PASSED, GATE_FAILED = "passed", "failed"
NOT_SAMPLED = {"study_estimate": "not sampled (study's own estimate)", "no_data": "not sampled (no data)",
               "not_modelled": "not sampled (outcome not modelled)"}

ADVICE = {
    "rhat": "run longer chains (raise sampling.tune and sampling.draws, e.g. 2000 each) and look at the trace "
            "plots for chains stuck in different modes; a stronger prior on tau or on the correlations, or a "
            "simpler time course (random_walk) removes weakly identified directions",
    "ess_bulk": "raise sampling.draws (ESS grows with draws); if ESS per draw is very low, the parameter named "
                "is weakly identified: a stronger prior on tau (smaller tau_scale / half_normal family) or a "
                "non-centred parameterisation (already used for the study effects) helps",
    "ess_tail": "raise sampling.draws; heavy tails (half_cauchy / half_student_t heterogeneity prior) need "
                "more draws for the tail ESS: consider half_normal with a defensible tau_scale",
    "divergences": "raise sampling.target_accept (0.95, 0.99); divergences with few studies usually come from "
                   "the tau funnel: use a lighter-tailed heterogeneity prior (half_normal, smaller tau_scale), "
                   "keep the non-centred parameterisation, or choose the random_walk time course / fewer visits",
    "bfmi": "low E-BFMI means the momentum resampling explores the energy poorly: reparameterise (non-centred "
            "study effects), put stronger priors on tau and the correlations, lengthen tuning",
}


class ConvergenceError(EngineError, RuntimeError):
    """Raised by the diagnostics gate; the message names outcome, study set, failed checks and remedies."""


def _thresholds(thresholds: dict | None) -> dict:
    th = dict(DEFAULT_THRESHOLDS)
    th.update({k: v for k, v in (thresholds or {}).items() if v is not None})
    return th


def diagnostics_table(idata: az.InferenceData, thresholds: dict | None, outcome: str, study_set: str
                      ) -> tuple[pd.DataFrame, list[str]]:
    """(per-parameter and sampler-level diagnostics, list of failure descriptions)."""
    th = _thresholds(thresholds)
    base = {"outcome": outcome, "study_set": study_set}
    if "posterior" not in idata.groups():
        status = "no posterior"
        if "constant_data" in idata.groups():
            status = str(idata.constant_data.attrs.get("fit_status", status))
        gate = NOT_SAMPLED.get(status, f"not sampled ({status})")
        rows = [{**base, "kind": "status", "parameter": "no MCMC fit", "value": np.nan, "threshold": np.nan,
                 "passed": True, "failed_checks": f"nothing to check ({status})", "gate": gate}]
        return pd.DataFrame(rows, columns=COLUMNS), []

    post = idata.posterior
    n_chains = post.sizes.get("chain", 1)
    rows, worst = _parameter_rows(post, th, base)
    failures = _worst_failures(worst, th)
    ss = idata.sample_stats if "sample_stats" in idata.groups() else None
    rows += _sampler_rows(idata, ss, th, base, failures)
    rows.append({**base, "kind": "sampler", "parameter": "draws", "value": float(post.sizes.get("draw", 0)
                 * n_chains), "threshold": np.nan, "passed": True,
                 "failed_checks": f"{n_chains} chains x {post.sizes.get('draw', 0)} draws"})
    gate = GATE_FAILED if failures else (GATE_PASSED if ss is not None else "not sampled (exact draws)")
    return pd.DataFrame(rows, columns=COLUMNS).assign(gate=gate), failures


def _parameter_rows(post, th: dict, base: dict) -> tuple[list[dict], dict]:
    """One row per non-constant posterior element (R-hat, bulk/tail ESS, MCSE) and the failing ones by check."""
    n_chains = post.sizes.get("chain", 1)
    warnings.filterwarnings("ignore", message="invalid value encountered", category=RuntimeWarning)
    rows: list[dict] = []
    worst = {"rhat": [], "ess_bulk": [], "ess_tail": []}
    for v in [v for v in post.data_vars if not str(v).endswith("__")]:
        ds = post[[v]]
        rh = np.atleast_1d(az.rhat(ds)[v].values).ravel() if n_chains > 1 else None
        eb_all = np.atleast_1d(az.ess(ds, method="bulk")[v].values).ravel()
        et_all = np.atleast_1d(az.ess(ds, method="tail")[v].values).ravel()
        mc_all = np.atleast_1d(az.mcse(ds)[v].values).ravel()
        sd_all = np.atleast_1d(post[v].std(("chain", "draw")).values).ravel()
        edims = [d for d in post[v].dims if d not in ("chain", "draw")]
        shape = tuple(post.sizes[d] for d in edims)
        for flat_i, idx in enumerate(np.ndindex(*shape) if shape else [()]):
            if sd_all[flat_i] == 0:       # constant element: nothing to diagnose
                continue
            labels = [str(post[d].values[i]) for d, i in zip(edims, idx)]
            name = f"{v}[{', '.join(labels)}]" if labels else str(v)
            rhat = float(rh[flat_i]) if rh is not None else float("nan")
            eb, et = float(eb_all[flat_i]), float(et_all[flat_i])
            failed = []
            if n_chains > 1 and not (np.isfinite(rhat) and rhat <= th["max_rhat"]):
                failed.append("rhat")
                worst["rhat"].append((rhat, name))
            if not (np.isfinite(eb) and eb >= th["min_ess_bulk"]):
                failed.append("ess_bulk")
                worst["ess_bulk"].append((eb, name))
            if not (np.isfinite(et) and et >= th["min_ess_tail"]):
                failed.append("ess_tail")
                worst["ess_tail"].append((et, name))
            rows.append({**base, "kind": "parameter", "parameter": name, "rhat": rhat, "ess_bulk": eb,
                         "ess_tail": et, "mcse_mean": float(mc_all[flat_i]), "passed": not failed,
                         "failed_checks": ";".join(failed)})
    return rows, worst


def _worst_failures(worst: dict, th: dict) -> list[str]:
    failures = []
    if worst["rhat"]:
        w = sorted(worst["rhat"], key=lambda x: -x[0] if np.isfinite(x[0]) else -np.inf)
        failures.append(f"R-hat: max {_fmt(w[0][0])} > {th['max_rhat']} in {len(w)} parameter(s), worst "
                        f"{', '.join(n for _, n in w[:3])}")
    if worst["ess_bulk"]:
        w = sorted(worst["ess_bulk"])
        failures.append(f"bulk ESS: min {_fmt(w[0][0])} < {th['min_ess_bulk']} in {len(w)} parameter(s), worst "
                        f"{', '.join(n for _, n in w[:3])}")
    if worst["ess_tail"]:
        w = sorted(worst["ess_tail"])
        failures.append(f"tail ESS: min {_fmt(w[0][0])} < {th['min_ess_tail']} in {len(w)} parameter(s), worst "
                        f"{', '.join(n for _, n in w[:3])}")
    return failures


def _sampler_rows(idata, ss, th: dict, base: dict, failures: list[str]) -> list[dict]:
    """Divergences and E-BFMI per chain (failures appended to ``failures``)."""
    rows = []
    if ss is not None and "diverging" in ss:
        ndiv = int(np.asarray(ss["diverging"].values).sum())
        ok = ndiv <= th["max_divergences"]
        rows.append({**base, "kind": "sampler", "parameter": "divergences", "value": float(ndiv),
                     "threshold": float(th["max_divergences"]), "passed": ok,
                     "failed_checks": "" if ok else "divergences"})
        if not ok:
            total = int(np.asarray(ss["diverging"].values).size)
            failures.append(f"divergences: {ndiv} of {total} post-warm-up transitions > {th['max_divergences']}")
    if ss is not None and "energy" in ss:
        bfmi = np.atleast_1d(az.bfmi(idata))
        low = []
        for c, b in enumerate(bfmi):
            ok = bool(np.isfinite(b) and b >= th["min_bfmi"])
            rows.append({**base, "kind": "sampler", "parameter": f"e_bfmi_chain_{c}", "value": float(b),
                         "threshold": float(th["min_bfmi"]), "passed": ok, "failed_checks": "" if ok else "bfmi"})
            if not ok:
                low.append(f"chain {c}: {_fmt(b)}")
        if low:
            failures.append(f"E-BFMI < {th['min_bfmi']} ({'; '.join(low)})")
    return rows


def _fmt(x: float) -> str:
    return "nan" if not np.isfinite(x) else f"{x:.4g}"


def failure_message(failures: list[str], outcome: str, study_set: str) -> str:
    keys = []
    for f in failures:
        if f.startswith("R-hat"):
            keys.append("rhat")
        elif f.startswith("bulk ESS"):
            keys.append("ess_bulk")
        elif f.startswith("tail ESS"):
            keys.append("ess_tail")
        elif f.startswith("divergences"):
            keys.append("divergences")
        elif f.startswith("E-BFMI"):
            keys.append("bfmi")
    lines = [f"Convergence gate failed for outcome '{outcome}' (study set '{study_set}'):"]
    lines += [f"  - {f}" for f in failures]
    lines.append("What to try:")
    lines += [f"  - {k}: {ADVICE[k]}" for k in dict.fromkeys(keys)]
    lines.append("Nothing downstream uses this model until it passes.")
    return "\n".join(lines)


def check_convergence(idata: az.InferenceData, thresholds: dict | None, outcome: str, study_set: str
                      ) -> pd.DataFrame:
    """Per-parameter diagnostics; raises ``ConvergenceError`` (message: outcome/study set, failed checks with
    their values, what to try) when a threshold fails."""
    table, failures = diagnostics_table(idata, thresholds, outcome, study_set)
    if failures:
        raise ConvergenceError(failure_message(failures, outcome, study_set))
    return table


def run_diagnostics(idata_path: str, thresholds: dict | None, outcome: str, study_set: str, out_csv: str
                    ) -> pd.DataFrame:
    """Read the idata, write the diagnostics CSV atomically, then raise ``ConvergenceError`` on failure."""
    idata = az.from_netcdf(idata_path)
    table, failures = diagnostics_table(idata, thresholds, outcome, study_set)
    atomic.write_csv(out_csv, table)
    if failures:
        raise ConvergenceError(failure_message(failures, outcome, study_set))
    return table
