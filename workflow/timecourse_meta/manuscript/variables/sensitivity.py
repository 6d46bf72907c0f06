"""The sensitivity block: per study set the verdict on every pooled conclusion (`<set>.sensitivity.*`, from
`results/tables/S/sensitivity_verdicts.full.csv`), and the methods' list of the variants that were run
(`methods.sensitivity.*`, from every set's `sensitivity_variants.csv` and config `sensitivity.verdict`).

Keys (p = `sets.S`, `main`, `other`):
* `p.sensitivity.n_assessed` (outcomes with a verdict), `n_robust`, `n_fragile`, `n_not_assessable`,
  `robust_list`, `fragile_list` (outcome labels, "none"), `sentence` (which conclusions are robust and which
  fragile, and why, in one clause without a leading capital), and per outcome O (continuous and binary)
  `p.sensitivity.O.verdict` (the verdict's line), `p.sensitivity.O.prior` (the power-scaling flags);
* `methods.sensitivity.p_threshold`, `p_worsening` (1 - p_threshold), `n_variants` (variants other than the
  main analysis, over all sets), and per group G of `report.sensitivity.GROUPS` other than main
  `methods.sensitivity.G` (the variants' labels, "none"); leaving out each study is one item.
Without the files (a review whose sensitivity fits did not run) every key says so instead of failing.
"""

from __future__ import annotations

import pandas as pd

from timecourse_meta.manuscript.variables.context import Collector, Context, read_csv
from timecourse_meta.manuscript.variables.words import join_words
from timecourse_meta.report import sensitivity as sensitivity_mod
from timecourse_meta.report.format import fmt_count, fmt_number
from timecourse_meta.report.tables import midsentence

NOT_RUN = "not run (no sensitivity results)"
LOO_WORDS = "each study left out in turn"


def _verdicts(ctx: Context, s: str) -> pd.DataFrame | None:
    path = ctx.files.sensitivity_verdicts.get(s)
    return read_csv(path, dtype={"overturning": str, "text": str}, keep_default_na=False) if path else None


def put_sensitivity(c: Collector, ctx: Context, s: str, prefixes: list[str]) -> None:
    """One study set's verdicts (module docstring)."""
    path = ctx.files.sensitivity_verdicts.get(s)
    frame = _verdicts(ctx, s)

    def put(suffix, value, note=None):
        c.put([f"{p}.sensitivity.{suffix}" for p in prefixes], value, kind="model", files=[path] if path else [],
              note=note)

    if frame is None:
        for suffix in ("n_assessed", "n_robust", "n_fragile", "n_not_assessable", "robust_list", "fragile_list",
                       "sentence"):
            put(suffix, NOT_RUN)
        for outcome in ctx.outcomes():
            put(f"{outcome}.verdict", NOT_RUN)
            put(f"{outcome}.prior", NOT_RUN)
        return
    by_outcome = {r["outcome"]: r for r in frame.to_dict("records")}
    for outcome in ctx.outcomes():
        r = by_outcome.get(outcome)
        put(f"{outcome}.verdict", str(r["text"]) if r else NOT_RUN)
        put(f"{outcome}.prior", str(r["prior_sensitivity"]) if r else NOT_RUN)
    labels = {o: ctx.dictionary[o].label for o in ctx.outcomes() if o in ctx.dictionary}
    rows = [by_outcome[o] for o in ctx.outcomes() if o in by_outcome]
    groups = {v: [r for r in rows if r["verdict"] == v]
              for v in (sensitivity_mod.ROBUST, sensitivity_mod.FRAGILE, sensitivity_mod.NOT_ASSESSABLE)}
    note = "a count of outcomes by their sensitivity verdict"
    put("n_assessed", fmt_count(sum(len(g) for g in groups.values())), note)
    put("n_robust", fmt_count(len(groups[sensitivity_mod.ROBUST])), note)
    put("n_fragile", fmt_count(len(groups[sensitivity_mod.FRAGILE])), note)
    put("n_not_assessable", fmt_count(len(groups[sensitivity_mod.NOT_ASSESSABLE])), note)
    put("robust_list", join_words([labels.get(r["outcome"], r["outcome"]) for r in groups[sensitivity_mod.ROBUST]]))
    put("fragile_list", join_words([labels.get(r["outcome"], r["outcome"]) for r in groups[sensitivity_mod.FRAGILE]]))
    put("sentence", verdict_sentence(groups, labels))


def verdict_sentence(groups: dict, labels: dict) -> str:
    """Which pooled conclusions held in every fitted variant and which did not (naming what overturned them)."""
    def name(r):
        return midsentence(labels.get(r["outcome"], r["outcome"]))

    robust, fragile = groups[sensitivity_mod.ROBUST], groups[sensitivity_mod.FRAGILE]
    unassessed = groups[sensitivity_mod.NOT_ASSESSABLE]
    if not (robust or fragile or unassessed):
        return "no outcome had a pooled conclusion whose sensitivity could be assessed"
    def pooled(r):  # the main estimate at the key visit pooled from two or more studies there
        return str(r.get("evidence") or "pooled") in ("pooled", "nan")

    parts = []
    robust_pooled = [r for r in robust if pooled(r)]
    robust_model = [r for r in robust if not pooled(r)]
    if robust_pooled:
        noun = "conclusion" if len(robust_pooled) == 1 else "conclusions"
        parts.append(f"the pooled {noun} on {join_words([name(r) for r in robust_pooled])} held in every fitted "
                     "sensitivity analysis (robust)")
    if robust_model:
        noun = "conclusion" if len(robust_model) == 1 else "conclusions"
        parts.append(f"the model-based {noun} on {join_words([name(r) for r in robust_model])} (the fitted time "
                     "course at a visit that fewer than two studies report) held in every fitted sensitivity "
                     "analysis (robust)")
    for r in fragile:
        why = str(r["text"]).removeprefix(f"{sensitivity_mod.FRAGILE}: ")
        kind = "" if pooled(r) else "model-based "
        parts.append(f"the {kind}conclusion on {name(r)} was fragile ({why})")
    if unassessed:
        parts.append(f"no variant could be compared for {join_words([name(r) for r in unassessed])}")
    return "; ".join(parts)


def put_sensitivity_methods(c: Collector, ctx: Context) -> None:
    """The verdict's threshold (config) and the variants run (every set's variant list)."""
    p = sensitivity_mod.settings((ctx.cfg.get("sensitivity") or {}).get("verdict"))["p_threshold"]
    cfg_file = ctx.files.config
    c.put("methods.sensitivity.p_threshold", fmt_number(p, 2), kind="config", files=[cfg_file],
          config_key="sensitivity.verdict.p_threshold")
    c.put("methods.sensitivity.p_worsening", fmt_number(1 - p, 2), kind="config", files=[cfg_file],
          config_key="sensitivity.verdict.p_threshold")
    paths = list(ctx.files.sensitivity_variants.values())
    frames = [f for f in (read_csv(path, dtype=str, keep_default_na=False) for path in paths) if f is not None]
    listed = pd.concat(frames, ignore_index=True) if frames else None

    def put(suffix, value):
        c.put(f"methods.sensitivity.{suffix}", value, kind="derived", files=paths,
              note="the variants of the sensitivity fits, over every study set")

    if listed is None:
        put("n_variants", NOT_RUN)
        for group in sensitivity_mod.GROUPS:
            if group != "main":
                put(group, NOT_RUN)
        return
    listed = listed[listed["variant"] != "main"].drop_duplicates("variant")
    put("n_variants", fmt_count(len(listed)))
    for group in sensitivity_mod.GROUPS:
        if group == "main":
            continue
        part = listed[listed["group"] == group]
        loo = part["variant"].str.startswith("loo_")
        items = [midsentence(lab) for lab in dict.fromkeys(part.loc[~loo, "label"])]
        if loo.any():
            items.insert(0, LOO_WORDS)
        put(group, "; ".join(items) if items else "none")
