"""The methods block (`methods.*`), from the resolved config so that editing config.yaml edits the methods section,
and the prior table (priors.md) with `methods.priors.<outcome>.*`, resolved as the models resolve them."""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace

import pandas as pd

from timecourse_meta.manuscript.document import study_set_aliases
from timecourse_meta.manuscript.variables.context import Collector, Context
from timecourse_meta.manuscript.variables.words import (REPORT_RULE_WORDS, STRUCTURE_WORDS, TAU_FAMILY_WORDS,
                                                        TIME_COURSE_WORDS, fmt_config_number, join_words)
from timecourse_meta.report.figure_data import DISPLAY_UNITS
from timecourse_meta.report.format import fmt_count, fmt_number

PRIOR_SOURCE_WORDS = (("config (outcome)", "config.yaml (this outcome)"),
                      ("config (default)", "config.yaml (default)"),
                      ("outcome dictionary", "outcome dictionary"), ("DEFAULT_BINARY_PRIOR", "package default"),
                      ("unit-free", "package default (unit-free)"), ("data-derived", "data-derived"))
ESTIMAND_WORDS = {"follow_up_means": "follow-up means", "change_scores": "change scores"}


def _model_modules():
    from timecourse_meta.model import priors as models
    from timecourse_meta.model import settings as pipeline  # heavy (PyMC/ArviZ): imported only when priors are resolved
    return models, pipeline


def prior_values(cfg: Mapping, outcome: str, spec) -> dict:
    """The prior scales the model of `outcome` uses, resolved exactly as `model.priors.resolve_priors` does (config
    for the outcome > documented defaults > config default > unit-free/data-derived rule), without the data.
    A data-derived scale is returned as None with its multiplier of the typical per-patient SD s in
    `multipliers`; `sources` says in words where each value came from."""
    models, pipeline = _model_modules()
    settings = pipeline.model_settings(dict(cfg), outcome)
    md = SimpleNamespace(outcome=outcome, kind=spec.kind, analysis_scale=spec.analysis_scale,
                         unit=spec.canonical_unit, reference_sd=float("nan"), priors=spec.priors)
    pri = models.resolve_priors(md, settings)
    pri["multipliers"] = {}
    for k, src in list(pri["sources"].items()):
        if src.startswith("data-derived"):
            pri[k] = None
            pri["multipliers"][k] = models.DATA_DERIVED_MULTIPLIERS[k]
        pri["sources"][k] = next((words for prefix, words in PRIOR_SOURCE_WORDS if src.startswith(prefix)), src)
    return pri


def _prior_number(pri: dict, key: str) -> str:
    """"10", or "0.5 × s" for a data-derived scale (s = the outcome's typical per-patient SD)."""
    v = pri.get(key)
    if v is not None:
        return fmt_config_number(v)
    return f"{fmt_config_number(pri['multipliers'][key])} \u00d7 s"


def _normal(pri: dict, key: str) -> str:
    v = _prior_number(pri, key)
    return f"Normal(0, {v}\u00b2)" if pri.get(key) is not None else f"Normal(0, ({v})\u00b2)"


def _resolved_settings(cfg: Mapping) -> dict:
    """The model settings not in config.yaml (random-walk reference, knot, ET50), as the models resolve them."""
    _, pipeline = _model_modules()
    from timecourse_meta.model.model_data import resolved_settings
    return resolved_settings(pipeline.model_settings(cfg, cfg["outcomes"][0] if cfg["outcomes"] else "x"))


def put_methods(c: Collector, ctx: Context) -> pd.DataFrame:
    """Every `methods.*` key; returns the prior table."""
    cfg, cfg_file = ctx.cfg, ctx.files.config

    def put(suffix, value, key, note=None):
        c.put(f"methods.{suffix}", value, kind="config", files=[cfg_file], config_key=key, note=note)

    rs = _resolved_settings(cfg)
    _put_data_methods(put, c, ctx)
    _put_model_methods(put, c, ctx, rs)
    _put_sampling_methods(put, cfg)
    return _put_priors(c, ctx, rs)


def _put_data_methods(put, c: Collector, ctx: Context) -> None:
    """Study sets, the rule for repeated reports, outcome counts and the within-person correlation."""
    cfg, cfg_file = ctx.cfg, ctx.files.config
    aliases = study_set_aliases(cfg)
    put("main_set", cfg["main_study_set"], "main_study_set")
    put("main_set_name", ctx.set_name(cfg["main_study_set"]), "main_study_set, review.study_sets")
    put("other_set_name", ctx.set_name(aliases["other"]), "study_sets, review.study_sets")
    sizes = [f"{ctx.set_name(s)} ({fmt_count(len(ctx.sets.get(s, [])))} studies)" for s in cfg["study_sets"]]
    c.put("methods.study_sets", join_words(sizes), kind="data", files=[cfg_file, ctx.files.studies],
          raw_rows=ctx.study_rows(sorted({i for s in cfg["study_sets"] for i in ctx.sets.get(s, [])})),
          config_key="study_sets")
    put("n_study_sets", fmt_count(len(cfg["study_sets"])), "study_sets")
    rule = (cfg.get("reports") or {}).get("rule", "most_complete_per_visit")
    put("report_rule", REPORT_RULE_WORDS.get(rule, rule.replace("_", " ")), "reports.rule")
    put("n_outcomes", fmt_count(len(cfg["outcomes"])), "outcomes")
    put("n_binary_outcomes", fmt_count(len(cfg["binary_outcomes"])), "binary_outcomes")
    h = cfg["harmonisation"]
    put("r", fmt_config_number(h["within_person_correlation"]), "harmonisation.within_person_correlation")
    put("r_sensitivity", join_words([fmt_config_number(v) for v in h["correlation_sensitivity"]]) or "none",
        "harmonisation.correlation_sensitivity")


def _put_model_methods(put, c: Collector, ctx: Context, rs: Mapping) -> None:
    """Visit grid, time course and its comparison, correlation structures, between-arm estimand, the rule for
    the time course reported, the binary tolerance, log-scale outcomes and the heterogeneity prior's family."""
    cfg, cfg_file = ctx.cfg, ctx.files.config
    model = cfg["model"]
    put("visit_grid", join_words([fmt_config_number(v) for v in model["visit_grid_months"]]),
        "model.visit_grid_months")
    tc = model["time_course"]
    words = TIME_COURSE_WORDS.get(tc, tc)
    alternatives = [TIME_COURSE_WORDS[t] for t in TIME_COURSE_WORDS if t != tc]
    put("time_course", words, "model.time_course")
    put("time_course_alternatives", join_words(alternatives), "model.time_course")
    put("loo", (f"The {words} time course was compared with the {join_words(alternatives)} time courses by "
                "approximate leave-one-out cross-validation (PSIS-LOO) for every outcome with two or more studies"
                if model["compare_time_courses"] else
                f"Alternative time courses ({join_words(alternatives)}) were not compared"),
        "model.compare_time_courses")
    ref = fmt_config_number(rs.get("random_walk_reference_months", 3.0))
    c.put("methods.rw_reference_months", ref, kind="config", files=[cfg_file],
          note="timecourse_meta.model.model_data.DEFAULT_SETTINGS (not in config.yaml)")
    descriptions = {
        "random_walk": ("an early response level followed by a continuous-time random walk (Brownian motion) whose "
                        f"steps have a prior SD set per {ref} months, so that sparse visits borrow strength from "
                        "their neighbours"),
        "piecewise_linear": ("linear up to a knot at "
                             f"{fmt_config_number(rs.get('piecewise_knot_months', 3.0))} months and linear, with "
                             "another slope, after it"),
        "emax": ("an Emax curve E t/(ET50 + t) that rises to a plateau, with a log-normal prior on ET50 (median "
                 f"{fmt_config_number(rs.get('emax_et50_median_months', 2.0))} months)"),
    }
    put("time_course_description", descriptions.get(tc, words), "model.time_course")
    for name, key in (("within", "within_study_correlation"), ("between", "between_visit_correlation")):
        block = model[key]
        put(f"{name}_structure", STRUCTURE_WORDS.get(block["structure"], block["structure"]),
            f"model.{key}.structure")
        put(f"{name}_prior", f"Beta({fmt_config_number(block['prior']['alpha'])}, "
                             f"{fmt_config_number(block['prior']['beta'])})", f"model.{key}.prior")
    estimand = model.get("between_arm_estimand", "follow_up_means")
    put("between_arm_estimand", ESTIMAND_WORDS.get(estimand, estimand), "model.between_arm_estimand")
    put("other_estimand", ESTIMAND_WORDS["change_scores" if estimand == "follow_up_means" else "follow_up_means"],
        "model.between_arm_estimand")
    rule = model.get("time_course_rule", "loo")
    put("time_course_rule",
        ("the time course reported is the configured one unless another converged one predicts better by more "
         "than twice the standard error of the difference in expected log predictive density, and the PSIS-LOO "
         "estimates are reliable (no Pareto k above 0.7)") if rule == "loo" else
        "the configured time course is reported whatever the comparison shows", "model.time_course_rule")
    tol = model.get("binary_time_tolerance_months", 0.5)
    put("binary_tolerance", f"{fmt_config_number(tol)} months", "model.binary_time_tolerance_months")
    logs = [ctx.dictionary[o].label for o in cfg["outcomes"]
            if o in ctx.dictionary and ctx.dictionary[o].analysis_scale == "log"]
    c.put("methods.log_outcomes", join_words(logs) if logs else "none", kind="config",
          files=[ctx.files.dictionary], note="outcome dictionary: analysis_scale log")
    fam = model["heterogeneity_prior"]["family"]
    put("tau_family", TAU_FAMILY_WORDS.get(fam, fam), "model.heterogeneity_prior.family")


def _put_sampling_methods(put, cfg: Mapping) -> None:
    sampling, diag = cfg["sampling"], cfg["diagnostics"]
    put("chains", fmt_count(sampling["chains"]), "sampling.chains")
    put("draws", fmt_count(sampling["draws"]), "sampling.draws")
    put("tune", fmt_count(sampling["tune"]), "sampling.tune")
    put("total_draws", fmt_count(sampling["chains"] * sampling["draws"]), "sampling.chains, sampling.draws")
    put("target_accept", fmt_config_number(sampling["target_accept"]), "sampling.target_accept")
    put("seed", fmt_number(sampling["seed"], 0), "sampling.seed")
    for key in ("max_rhat", "min_ess_bulk", "min_ess_tail", "max_divergences", "min_bfmi"):
        put(key, fmt_config_number(diag[key]), f"diagnostics.{key}")


def _put_priors(c: Collector, ctx: Context, rs: Mapping) -> pd.DataFrame:
    """`methods.priors.<outcome>.*` and the prior table, one row per outcome."""
    cfg, cfg_file = ctx.cfg, ctx.files.config
    fam = cfg["model"]["heterogeneity_prior"]["family"]
    family = TAU_FAMILY_WORDS.get(fam, fam)
    rows = []
    for outcome in ctx.outcomes():
        spec = ctx.dictionary[outcome]
        pri = prior_values(cfg, outcome, spec)
        files = [cfg_file, ctx.files.dictionary]
        note = "; ".join(f"{k}: {v}" for k, v in pri["sources"].items())

        def pput(suffix, value, _o=outcome, _files=files, _note=note):
            c.put(f"methods.priors.{_o}.{suffix}", value, kind="config", files=_files,
                  config_key=f"model.priors.{_o}", note=_note)

        tau_text = f"{family}(scale {_prior_number(pri, 'tau_scale')})"
        if spec.kind == "binary":
            scale = "logit of the proportion"
            delta, step = f"{_normal(pri, 'mu_sd')} on the logit", "not applicable"
            text = f"logit proportion ~ {_normal(pri, 'mu_sd')}; \u03c4 ~ {tau_text}"
            pput("mu_sd", _prior_number(pri, "mu_sd"))
        else:
            scale = ("log ratio of means" if spec.analysis_scale == "log"
                     else DISPLAY_UNITS.get(spec.canonical_unit, spec.canonical_unit))
            delta = _normal(pri, "delta_sd")
            step = _prior_number(pri, "step_sd")
            text = (f"\u0394 ~ {delta} at the first visit, random-walk step SD {step} per "
                    f"{fmt_config_number(rs.get('random_walk_reference_months', 3.0))} months, "
                    f"\u03c4 ~ {tau_text} ({scale})")
            if pri["multipliers"]:
                text += "; s = the outcome's typical per-patient SD in the data"
            for k in ("delta_sd", "step_sd", "baseline_sd"):
                pput(k, _prior_number(pri, k))
        pput("tau_scale", _prior_number(pri, "tau_scale"))
        pput("text", text)
        rows.append({"Outcome": spec.label, "Scale": scale, "Pooled change \u0394 (first visit)": delta,
                     "Random-walk step SD": step, "Heterogeneity \u03c4": tau_text,
                     "Source": "; ".join(sorted(set(pri["sources"].values())))})
    return pd.DataFrame(rows)
