"""Benchmark: nutpie against PyMC's default NUTS sampler on the same model, and the time to fit every
outcome of an analysis table.

Prints, from one run:
  1. for one outcome's model (default: symptom_score of the example table): compile time, sampling time, the smallest bulk ESS over the
     sampled parameters, and effective samples per second (sampling only, and including compilation) for
     nutpie (``nutpie.compile_pymc_model`` + ``nutpie.sample``) and for ``pymc.sample`` (PyMC's NUTS, C
     backend), same model, chains, draws, tune and target_accept;
  2. for every outcome of the table that is in the outcome dictionary: status, seconds (compile / sample /
     post-processing incl. the time-course comparison when on), the diagnostics gate's verdict, and the total;
     with --sensitivity also each pooled outcome's sensitivity variants (the config's sensitivity.variants, else
     the schema's default list): seconds, variants, compilations, and the layer's total against the main fits'.

Without --table / --dictionary the synthetic table of ``testing.example_analysis_table`` is used.

Usage:  PYTHONPATH=workflow python workflow/scripts/benchmark_samplers.py [--table results/harmonised/analysis_table.csv
        --dictionary data/review/outcomes.yaml] [--settings resolved_config.yaml]
        [--outcome symptom_score] [--studies a;b;c] [--study-set review_2023] [--chains 4 --draws 1000 --tune 1000]
        [--no-compare] [--skip-all]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from timecourse_meta.model import model_data as MD  # noqa: E402
from timecourse_meta import testing  # noqa: E402
from timecourse_meta.model import build, fit, sample, summary  # noqa: E402
from timecourse_meta.model.diagnostics import diagnostics_table  # noqa: E402


def _min_ess(idata, names) -> tuple[float, str]:
    import arviz as az
    best = (np.inf, "")
    for v in names:
        e = float(np.min(az.ess(idata.posterior[[v]], method="bulk")[v].values))
        if e < best[0]:
            best = (e, v)
    return best


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table")
    ap.add_argument("--dictionary")
    ap.add_argument("--settings", help="YAML with the model settings (resolved config's model part)")
    ap.add_argument("--outcome", default="symptom_score")
    ap.add_argument("--studies", help="';'-separated study ids (default: all studies in the table)")
    ap.add_argument("--study-set", default="all")
    ap.add_argument("--chains", type=int)
    ap.add_argument("--draws", type=int)
    ap.add_argument("--tune", type=int)
    ap.add_argument("--seed", type=int, default=20231127)
    ap.add_argument("--no-compare", action="store_true", help="skip the time-course comparison when fitting all")
    ap.add_argument("--skip-all", action="store_true", help="only the sampler comparison")
    ap.add_argument("--sensitivity", action="store_true",
                    help="in [2], also refit every sensitivity variant of each pooled outcome (as rule "
                         "sensitivity_fit: one compilation per model structure) and print the layer's cost")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")

    import yaml
    settings = {}
    if args.settings:
        with open(args.settings) as fh:
            settings = yaml.safe_load(fh) or {}
    settings = MD.resolved_settings(settings)
    settings["sampling"] = {**settings["sampling"], "progress_bar": False,
                            **{k: v for k, v in (("chains", args.chains), ("draws", args.draws),
                                                 ("tune", args.tune)) if v}}
    if args.no_compare:
        settings["compare_time_courses"] = False
    if args.table:
        table = pd.read_csv(args.table)
        dictionary = {o: fit.outcome_spec(args.dictionary, o) for o in table["outcome"].astype(str).unique()}
    else:
        table, dictionary = testing.example_analysis_table(), testing.example_outcome_dictionary()
        settings.setdefault("arms", testing.ARMS)
    studies = args.studies.split(";") if args.studies else sorted(table["study_id"].astype(str).unique())
    s = settings["sampling"]
    chains, draws, tune = int(s["chains"]), int(s["draws"]), int(s["tune"])
    print(f"cores: {os.cpu_count()}; chains {chains}, draws {draws}, tune {tune}, target_accept "
          f"{s.get('target_accept')}; load average {os.getloadavg()[0]:.2f}")

    # 1. sampler comparison on one outcome's model -----------------------------------------------------
    md = MD.build_model_data(table, args.outcome, studies, dictionary[args.outcome], settings, args.study_set)
    model = build.build_model(md, settings)
    names = [rv.name for rv in model.free_RVs]
    print(f"\n[1] model: {args.outcome} ({md.status}, {len(md.studies)} studies, {md.n_obs} rows, "
          f"{len(md.post_visits)} visits); sampled parameters: {', '.join(names)}")
    import nutpie
    import pymc as pm
    with sample.limited_blas_threads():  # the same BLAS setting (1 thread) for both samplers
        t0 = time.perf_counter()
        compiled = nutpie.compile_pymc_model(model)
        t1 = time.perf_counter()
        idata_n = sample.sample_compiled(compiled, settings, seed=args.seed)
        t2 = time.perf_counter()
        ess_n, worst_n = _min_ess(idata_n, names)
        div_n = int(idata_n.sample_stats["diverging"].values.sum())

        t3 = time.perf_counter()
        with model:
            idata_p = pm.sample(draws=draws, tune=tune, chains=chains, cores=min(chains, os.cpu_count() or 1),
                                random_seed=args.seed, target_accept=float(s.get("target_accept", 0.9)),
                                progressbar=False, compute_convergence_checks=False)
        t4 = time.perf_counter()
    samp_p = float(idata_p.sample_stats.attrs.get("sampling_time", t4 - t3))
    ess_p, worst_p = _min_ess(idata_p, names)
    div_p = int(idata_p.sample_stats["diverging"].values.sum())
    rows = [
        {"sampler": "nutpie", "compile_s": t1 - t0, "sample_s": t2 - t1, "min_ess_bulk": ess_n, "worst": worst_n,
         "ess_per_s_sampling": ess_n / (t2 - t1), "ess_per_s_total": ess_n / (t2 - t0), "divergences": div_n},
        {"sampler": "pymc (default NUTS)", "compile_s": (t4 - t3) - samp_p, "sample_s": samp_p,
         "min_ess_bulk": ess_p, "worst": worst_p, "ess_per_s_sampling": ess_p / samp_p,
         "ess_per_s_total": ess_p / (t4 - t3), "divergences": div_p},
    ]
    pd.set_option("display.width", 200)
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.1f}"))
    print(f"nutpie / pymc effective samples per second (sampling only): "
          f"{rows[0]['ess_per_s_sampling'] / rows[1]['ess_per_s_sampling']:.2f}x; including compilation: "
          f"{rows[0]['ess_per_s_total'] / rows[1]['ess_per_s_total']:.2f}x")

    if args.skip_all:
        return
    # 2. all outcomes of the table -----------------------------------------------------------------------
    outcomes = [o for o in dict.fromkeys(table["outcome"].astype(str)) if o in dictionary]
    print(f"\n[2] fitting all {len(outcomes)} outcomes of the table (study set {args.study_set!r}, "
          f"compare_time_courses={settings['compare_time_courses']})")
    res = []
    t_all = time.perf_counter()
    for o in outcomes:
        t0 = time.perf_counter()
        mdo = MD.build_model_data(table, o, studies, dictionary[o], settings, args.study_set)
        idata = fit.fit_outcome(mdo, settings, seed=sample.outcome_seed(args.seed, o))
        summary.summarise(idata, mdo, settings)
        _, failures = diagnostics_table(idata, settings["diagnostics"], o, args.study_set)
        meta = idata.constant_data.attrs
        res.append({"outcome": o, "status": mdo.status, "studies": len(mdo.studies), "rows": mdo.n_obs,
                    "compile_s": meta.get("seconds_compile", 0.0), "sample_s": meta.get("seconds_sample", 0.0),
                    "post_s": meta.get("seconds_postprocess", 0.0), "total_s": time.perf_counter() - t0,
                    "gate": "pass" if not failures else "FAIL: " + "; ".join(failures)})
        if args.sensitivity:
            res[-1].update(_sensitivity_cost(table, o, studies, dictionary[o], settings, args, mdo, idata))
    print(pd.DataFrame(res).to_string(index=False, float_format=lambda x: f"{x:.1f}"))
    main_s = sum(r["total_s"] for r in res)
    print(f"time to fit all outcomes: {main_s:.1f} s")
    if args.sensitivity:
        sens_s = sum(r["sensitivity_s"] for r in res)
        print(f"sensitivity layer: {sens_s:.1f} s for {sum(r['variants'] for r in res)} variants with "
              f"{sum(r['compilations'] for r in res)} compilations; main + sensitivity = {main_s + sens_s:.1f} s "
              f"({(main_s + sens_s) / max(main_s, 1e-9):.2f} x the main fits)")


def _sensitivity_cost(table, outcome, studies, spec, settings, args, md, idata) -> dict:
    """Seconds, variants and compilations of one outcome's sensitivity refits (as rule sensitivity_fit)."""
    from timecourse_meta.core import config as config_mod
    from timecourse_meta.model import sensitivity as sens_mod
    from timecourse_meta.model import sensitivity_fit as sfit

    if md.status != "pooled":
        return {"sensitivity_s": 0.0, "variants": 0, "compilations": 0}
    entries = (settings.get("sensitivity") or {}).get("variants") or \
        config_mod.load_schema()["properties"]["sensitivity"]["properties"]["variants"]["default"]
    sheet = pd.DataFrame({"study_id": studies, "patient_group": studies, "overlap": "none", "study_sets": "all"})
    rows = table[table["outcome"].astype(str) == outcome].reset_index(drop=True)
    main = sens_mod.MainAnalysis(rows=rows, settings=settings, study_ids=list(studies), study_sheet=sheet,
                                 model_data=md, time_course=str(idata.constant_data.attrs.get("time_course")),
                                 spec=spec, correlations=[0.2, 0.8])
    variants = sens_mod.expand_variants(entries, main)
    models = sfit.CompiledModels()
    t0 = time.perf_counter()
    summary_main = summary.summarise(idata, md, settings)
    sfit.run_variants(main, summary_main, variants, sample.outcome_seed(args.seed, outcome),
                      settings["diagnostics"], models)
    return {"sensitivity_s": time.perf_counter() - t0, "variants": len(variants),
            "compilations": len(models.compiled_keys)}


if __name__ == "__main__":
    main()
