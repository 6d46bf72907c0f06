"""The checks of each study set: sampler diagnostics of its models (`<set>.diag.*`) and the verdicts on the
published claims (`<set>.claims.*`)."""

from __future__ import annotations

import math

import pandas as pd

from timecourse_meta.manuscript.variables.context import Collector, Context, read_csv
from timecourse_meta.report.format import fmt_count, fmt_number


def put_diagnostics(c: Collector, ctx: Context, s: str, prefixes: list[str]) -> None:
    """Models sampled and passed, and the worst R-hat, ESS, divergences and E-BFMI over the set's models."""
    outcomes = ctx.outcomes()
    paths = [ctx.files.diagnostics[(s, o)] for o in outcomes]
    fitted = passed = 0
    rhat, ess_b, ess_t, bfmi, div = [], [], [], [], 0
    for path in paths:
        d = read_csv(path)
        if d is None:
            continue
        params = d[d["kind"] == "parameter"]
        gate = str(d["gate"].iloc[0]) if "gate" in d and len(d) else ("passed" if len(params) else "not sampled")
        if params.empty or gate.startswith("not sampled"):
            continue
        fitted += 1
        passed += int(gate == "passed")
        rhat += pd.to_numeric(params["rhat"], errors="coerce").dropna().tolist()
        ess_b += pd.to_numeric(params["ess_bulk"], errors="coerce").dropna().tolist()
        ess_t += pd.to_numeric(params["ess_tail"], errors="coerce").dropna().tolist()
        sampler = d[d["kind"] == "sampler"]
        div += int(pd.to_numeric(sampler.loc[sampler["parameter"] == "divergences", "value"],
                                 errors="coerce").fillna(0).sum())
        bfmi += pd.to_numeric(sampler.loc[sampler["parameter"].astype(str).str.startswith("e_bfmi"), "value"],
                              errors="coerce").dropna().tolist()

    def put(suffix, value):
        c.put([f"{p}.diag.{suffix}" for p in prefixes], value, kind="diagnostics", files=paths)

    none = "not applicable (no model fitted)"
    put("n_models", fmt_count(len(outcomes)))
    put("n_fitted", fmt_count(fitted))
    put("n_sampled", fmt_count(fitted))
    put("sampled_sentence", "no outcome needed a sampled model" if fitted == 0 else
        f"{fmt_count(fitted)} outcome{'s were' if fitted > 1 else ' was'} estimated by a sampled model, and "
        f"{fmt_count(passed)} passed every convergence check")
    put("n_not_fitted", fmt_count(len(outcomes) - fitted))
    put("n_passed", fmt_count(passed))
    put("max_rhat", fmt_number(max(rhat), 3) if rhat else none)
    put("min_ess_bulk", fmt_count(int(math.floor(min(ess_b)))) if ess_b else none)
    put("min_ess_tail", fmt_count(int(math.floor(min(ess_t)))) if ess_t else none)
    put("divergences", fmt_count(div) if fitted else none)
    put("min_bfmi", fmt_number(min(bfmi), 2) if bfmi else none)


def put_claims(c: Collector, ctx: Context, s: str, prefixes: list[str]) -> None:
    """How many published claims the set's results support, contradict or cannot assess."""
    path = ctx.files.claims[s]
    frame = read_csv(path, dtype=str, keep_default_na=False)
    counts = {"supported": 0, "contradicted": 0, "not assessable": 0}
    n = 0
    if frame is not None:
        if "level" in frame.columns:
            claim_rows = frame[frame["level"] == "claim"]
            verdicts = claim_rows["verdict"]
        else:
            claim_rows = frame[frame["Claim"].str.strip() != ""]
            verdicts = claim_rows["Verdict"]
        n = len(claim_rows)
        for v in verdicts:
            key = "not assessable" if v.startswith("not assessable") else v
            counts[key] = counts.get(key, 0) + 1

    def put(suffix, value):
        c.put([f"{p}.claims.{suffix}" for p in prefixes], value, kind="claims", files=[path])

    if frame is None:
        for suffix in ("n", "supported", "contradicted", "not_assessable"):
            put(suffix, "not checked (no claims table)")
        return
    put("n", fmt_count(n))
    put("supported", fmt_count(counts["supported"]))
    put("contradicted", fmt_count(counts["contradicted"]))
    put("not_assessable", fmt_count(counts["not assessable"]))
