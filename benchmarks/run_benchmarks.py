"""The workflow's benchmark, from one run: cold full run (timed as the main analysis alone, then the sensitivity
layer added: the cost of that layer against the main analysis), no-op rerun, a one-cell change of the raw outcomes
sheet, a one-prior change of the outcome dictionary (the jobs each ran, from Snakemake's own log, and its time
as a share of the cold run), the share of compile / sample / post-processing time over the fit logs, the fit
of a simulated outcome with 10, 100 and 1,000 studies (4 visits; time and peak memory), and nutpie against
PyMC's own NUTS sampler (``pm.sample(nuts_sampler="pymc")``) on the same model (effective samples per second).

The workflow parts run on a copy of the project in a temporary directory (without results/ and .venv), with
the Snakemake of the Python that runs this script. ``--quick``: the second review (tests/examples/second_review)
instead of the shipped one and a scale series of 10 and 30 studies.

Usage:  .venv/bin/python benchmarks/run_benchmarks.py [--quick] [--only workflow|scale|samplers]
        [--cores 2] [--json out.json] [--keep]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))
SKIP = shutil.ignore_patterns(".git", ".venv", "results", ".snakemake", "__pycache__", "*.egg-info",
                              ".pytest_cache")
JOB = re.compile(r"^(?:local)?rule (\w+):\n(?:(?:    .*\n)*?    wildcards: (.*)\n)?", re.M)
DONE = re.compile(r"done in ([\d.]+) s \((.*)\)")
SENS = re.compile(r"(\d+) variants in ([\d.]+) s, (\d+) compilations")
PARTS = ("workflow", "scale", "samplers")


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# workflow runs ---------------------------------------------------------------------------------------------
def snakemake(project: Path, workdir: Path, cores: int, *extra: str) -> tuple[float, list[str], str]:
    """One real run: (wall seconds, jobs that ran as 'rule[wildcards]', stderr)."""
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(project / "Snakefile"), "--directory",
                          str(workdir), "--cores", str(cores), *extra], cwd=workdir, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"snakemake failed in {workdir}:\n{res.stderr[-4000:]}")
    jobs = [f"{m.group(1)}[{m.group(2)}]" if m.group(2) else m.group(1) for m in JOB.finditer(res.stderr)]
    return wall, jobs, res.stderr


def change_one_cell(workdir: Path, outcome: str | None) -> str:
    """Multiply one SD of one follow-up visit of ``outcome`` (else the first continuous row with an SD) by 1.1."""
    import pandas as pd
    path = workdir / "data/raw/outcomes.csv"
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    sd = pd.to_numeric(raw["sd"], errors="coerce")
    t = pd.to_numeric(raw["time_value"], errors="coerce")
    ok = sd.notna() & (t > 0)
    if outcome and (ok & (raw["outcome"] == outcome)).any():
        ok &= raw["outcome"] == outcome
    i = ok.idxmax()
    raw.loc[i, "sd"] = f"{sd[i] * 1.1:.4g}"
    raw.to_csv(path, index=False)
    return f"{raw.loc[i, 'row_id']}: sd {sd[i]:g} -> {raw.loc[i, 'sd']} ({raw.loc[i, 'outcome']})"


def change_one_prior(workdir: Path, outcome: str | None) -> str:
    """Multiply the first ``tau_scale`` of ``outcome``'s entry (else of any outcome) in outcomes.yaml by 1.2."""
    path = workdir / "data/review/outcomes.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start = next((k for k, ln in enumerate(lines) if outcome and re.match(rf"^  {re.escape(outcome)}:", ln)), 0)
    for k in range(start, len(lines)):
        m = re.search(r"tau_scale: ([\d.]+)", lines[k])
        if m and not lines[k].lstrip().startswith("#"):
            new = f"{float(m.group(1)) * 1.2:g}"
            lines[k] = lines[k][:m.start(1)] + new + lines[k][m.end(1):]
            path.write_text("".join(lines), encoding="utf-8")
            return f"line {k + 1}: tau_scale {m.group(1)} -> {new}"
    raise SystemExit(f"{path}: no tau_scale to change")


def fit_shares(workdir: Path) -> dict:
    """Compile / sample / post-processing seconds summed over results/logs/models/fit_model_*.log, and the
    sensitivity refits' seconds, variants and compilations over results/logs/sensitivity/sensitivity_fit_*.log."""
    total = {"seconds_total": 0.0, "seconds_compile": 0.0, "seconds_sample": 0.0, "seconds_postprocess": 0.0}
    logs = sorted((workdir / "results/logs/models").glob("fit_model_*.log"))
    for log in logs:
        for m in DONE.finditer(log.read_text(errors="replace")):
            total["seconds_total"] += float(m.group(1))
            for key, value in re.findall(r"(seconds_\w+) ([\d.]+) s", m.group(2)):
                if key in total:
                    total[key] += float(value)
    total["fit_logs"] = len(logs)
    # the sensitivity layer (rule sensitivity_fit): seconds, variants and compilations per outcome
    total.update(sensitivity_seconds=0.0, sensitivity_variants=0, sensitivity_compilations=0)
    for log in sorted((workdir / "results/logs/sensitivity").glob("sensitivity_fit_*.log")):
        for m in SENS.finditer(log.read_text(errors="replace")):
            total["sensitivity_variants"] += int(m.group(1))
            total["sensitivity_seconds"] += float(m.group(2))
            total["sensitivity_compilations"] += int(m.group(3))
    return total


def run_workflow(args, out: dict) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="tcm-bench-"))
    project = tmp / "project"
    progress(f"copying the project to {project}")
    shutil.copytree(ROOT, project, ignore=SKIP)
    workdir = project / "tests/examples/second_review" if args.quick else project
    outcome = None if args.quick else "sledai"
    # the cold full run in two parts: the main analysis (sensitivity.enabled false), then the sensitivity layer
    # added by the plain config (only its jobs and what reads them rerun): their sum is the cold full run
    main_only = workdir / "benchmark_main_only.yaml"
    main_only.write_text("sensitivity:\n  enabled: false\n", encoding="utf-8")
    progress(f"cold run of the main analysis ({'second review' if args.quick else 'shipped review'}, "
             f"--cores {args.cores}, no sensitivity layer) ...")
    main, jobs_main, _ = snakemake(project, workdir, args.cores, "--configfile", main_only.name)
    progress(f"main analysis: {main:.1f} s, {len(jobs_main)} jobs; adding the sensitivity layer ...")
    layer, jobs_layer, _ = snakemake(project, workdir, args.cores)
    main_only.unlink()
    cold = main + layer
    out["cold_main_only"] = {"seconds": main, "jobs": len(jobs_main)}
    out["sensitivity_layer"] = {"seconds": layer, "jobs": len(jobs_layer), "share_of_main": layer / main,
                                "jobs_run": sorted(jobs_layer)}
    out["cold"] = {"seconds": cold, "jobs": len(jobs_main) + len(jobs_layer)}  # jobs run in the two parts
    out["fit_shares"] = fit_shares(workdir)          # before the reruns rewrite some of the logs
    progress(f"sensitivity layer: {layer:.1f} s, {len(jobs_layer)} jobs; cold run {cold:.1f} s; no-op rerun ...")
    noop, jobs, _ = snakemake(project, workdir, args.cores)
    out["noop"] = {"seconds": noop, "jobs": len(jobs)}
    for name, change in (("one_cell", change_one_cell), ("one_prior", change_one_prior)):
        what = change(workdir, outcome)
        progress(f"{name}: {what}; rerun ...")
        wall, jobs, _ = snakemake(project, workdir, args.cores)
        out[name] = {"change": what, "seconds": wall, "share_of_cold": wall / cold, "jobs": len(jobs),
                     "jobs_run": sorted(jobs)}
    if args.keep:
        progress(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


# scale series ----------------------------------------------------------------------------------------------
SCALE_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[2])
import numpy as np
from timecourse_meta import testing
from timecourse_meta.model import fit, model_data as MD
n = int(sys.argv[1])
rng = np.random.default_rng(0)
design = []
for i in range(n):
    size = int(rng.integers(10, 60))
    if i % 3 == 2:
        rows = [{"measure": "change_from_baseline", "time": t, "n": size, "sd": 4.0} for t in (1, 3, 6, 12)]
    else:
        rows = [{"measure": "absolute", "time": t, "n": size, "sd": 5.0} for t in (0, 1, 3, 6, 12)]
    design.append({"study_id": f"s{i:04d}", "baseline": 12.0, "rows": rows})
truth = {"visits": [1, 3, 6, 12], "delta": [-2.0, -3.5, -4.5, -5.0], "tau": 1.0, "rho_within": 0.6,
         "rho_between": 0.5}
table = testing.simulate_table(design, truth, seed=1)
settings = {"arms": testing.ARMS, "visit_grid_months": [0, 1, 3, 6, 12], "compare_time_courses": False,
            "priors": {"sim_outcome": {"delta_sd": 5.0, "tau_scale": 2.0, "step_sd": 3.0, "baseline_sd": 20.0}},
            "sampling": {"progress_bar": False}}
spec = {"kind": "continuous", "analysis_scale": "identity", "canonical_unit": "points",
        "direction_of_benefit": "decrease"}
t0 = time.perf_counter()
md = MD.build_model_data(table, "sim_outcome", sorted(table["study_id"].unique()), spec, settings)
idata = fit.fit_outcome(md, settings, seed=1)
wall = time.perf_counter() - t0
meta = idata.constant_data.attrs
print(json.dumps({"studies": n, "rows": md.n_obs, "seconds": wall,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  **{k: float(meta[k]) for k in ("seconds_compile", "seconds_sample", "seconds_postprocess")}}))
"""


def run_scale(args, out: dict) -> None:
    series = args.studies or ([10, 30] if args.quick else [10, 100, 1000])
    out["scale"] = []
    for n in series:
        progress(f"scale: fit of {n} simulated studies x 4 visits (4 chains x 1000 draws) ...")
        res = subprocess.run([sys.executable, "-c", SCALE_CHILD, str(n), str(ROOT / "workflow")],
                             capture_output=True, text=True)
        if res.returncode != 0:
            out["scale"].append({"studies": n, "error": res.stderr[-1500:]})
            progress(f"scale {n}: failed\n{res.stderr[-1500:]}")
            continue
        row = json.loads(res.stdout.strip().splitlines()[-1])
        out["scale"].append(row)
        progress(f"scale {n}: {row['seconds']:.1f} s, peak {row['peak_rss_mb']:.0f} MB")


# samplers ---------------------------------------------------------------------------------------------------
def run_samplers(args, out: dict) -> None:
    """nutpie against pm.sample(nuts_sampler="pymc") on the example symptom score model: min bulk ESS over the
    sampled parameters per second of sampling (and per second including compilation)."""
    import warnings

    import arviz as az
    import numpy as np
    import pymc as pm

    from timecourse_meta import testing
    from timecourse_meta.model import build, sample
    from timecourse_meta.model import model_data as MD
    warnings.filterwarnings("ignore")
    settings = {"arms": testing.ARMS, "sampling": {"chains": 4, "draws": 1000, "tune": 1000,
                                                   "progress_bar": False}}
    tab, dic = testing.example_analysis_table(), testing.example_outcome_dictionary()
    md = MD.build_model_data(tab, "symptom_score", sorted(tab["study_id"].unique()), dic["symptom_score"], settings)
    model = build.build_model(md, settings)
    names = [rv.name for rv in model.free_RVs]

    def min_ess(idata):
        return float(min(np.min(az.ess(idata.posterior[[v]], method="bulk")[v].values) for v in names))

    rows = []
    with sample.limited_blas_threads():
        for backend in sample.BACKENDS:
            progress(f"samplers: nutpie ({backend}) ...")
            backend_settings = {**settings, "sampling": {**settings["sampling"], "backend": backend}}
            t0 = time.perf_counter()
            compiled = sample.compile_model(model, backend_settings)
            t1 = time.perf_counter()
            idata = sample.sample_compiled(compiled, backend_settings, seed=1)
            t2 = time.perf_counter()
            rows.append({"sampler": f"nutpie ({backend})", "compile_s": t1 - t0, "sample_s": t2 - t1,
                         "min_ess_bulk": min_ess(idata)})
        progress("samplers: PyMC's NUTS (nuts_sampler='pymc') ...")
        t3 = time.perf_counter()
        with model:
            idata_p = pm.sample(draws=1000, tune=1000, chains=4, cores=1, random_seed=1, target_accept=0.9,
                                nuts_sampler="pymc", progressbar=False, compute_convergence_checks=False)
        t4 = time.perf_counter()
    sampling = float(idata_p.sample_stats.attrs.get("sampling_time", t4 - t3))
    rows.append({"sampler": "pymc (nuts_sampler='pymc')", "compile_s": (t4 - t3) - sampling, "sample_s": sampling,
                 "min_ess_bulk": min_ess(idata_p)})
    for r in rows:
        r["ess_per_s"] = r["min_ess_bulk"] / r["sample_s"]
        r["ess_per_s_with_compile"] = r["min_ess_bulk"] / (r["sample_s"] + r["compile_s"])
    out["samplers"] = {"model": f"symptom_score example ({len(md.studies)} studies, {md.n_obs} rows; "
                                f"{', '.join(names)})", "rows": rows}


# the table ----------------------------------------------------------------------------------------------------
def table(out: dict) -> str:
    lines = ["| measurement | value | ratio |", "| --- | --- | --- |"]
    cold = out.get("cold")
    if cold:
        lines.append(f"| cold full run | {cold['seconds']:.1f} s, {cold['jobs']} jobs | 1 |")
        main, layer = out["cold_main_only"], out["sensitivity_layer"]
        lines.append(f"| of which the main analysis (no sensitivity layer) | {main['seconds']:.1f} s, {main['jobs']} "
                     f"jobs | {main['seconds'] / cold['seconds']:.2f} of cold |")
        lines.append(f"| of which the sensitivity layer (added after) | {layer['seconds']:.1f} s, {layer['jobs']} jobs "
                     f"| {layer['share_of_main']:.2f}x the main analysis |")
        lines.append(f"| no-op rerun | {out['noop']['seconds']:.1f} s | {out['noop']['seconds'] / cold['seconds']:.3f}"
                     " of cold |")
        for key, label in (("one_cell", "one-cell change"), ("one_prior", "one-prior change")):
            r = out[key]
            lines.append(f"| {label} ({r['change']}) | {r['seconds']:.1f} s, {r['jobs']} jobs | "
                         f"{r['share_of_cold']:.3f} of cold |")
    fs = out.get("fit_shares")
    if fs and fs["seconds_total"]:
        for key in ("seconds_compile", "seconds_sample", "seconds_postprocess"):
            lines.append(f"| cold run's fits: {key[8:]} ({fs['fit_logs']} logs) | {fs[key]:.1f} s | "
                         f"{fs[key] / fs['seconds_total']:.2f} of fit time |")
        if fs.get("sensitivity_variants"):
            lines.append(f"| cold run's sensitivity refits | {fs['sensitivity_seconds']:.1f} s for "
                         f"{fs['sensitivity_variants']} variants, {fs['sensitivity_compilations']} compilations | "
                         f"{fs['sensitivity_seconds'] / fs['seconds_total']:.2f}x the main fits' time |")
    scale = [r for r in out.get("scale", []) if "error" not in r]
    for r in scale:
        ratio = f"{r['seconds'] / scale[0]['seconds']:.1f}x time, {r['peak_rss_mb'] / scale[0]['peak_rss_mb']:.1f}x " \
                f"memory of {scale[0]['studies']}"
        lines.append(f"| fit of {r['studies']} studies ({r['rows']} rows) | {r['seconds']:.1f} s (compile "
                     f"{r['seconds_compile']:.1f}, sample {r['seconds_sample']:.1f}, post "
                     f"{r['seconds_postprocess']:.1f}), peak {r['peak_rss_mb']:.0f} MB | {ratio} |")
    for r in out.get("scale", []):
        if "error" in r:
            lines.append(f"| fit of {r['studies']} studies | failed | |")
    smp = out.get("samplers")
    if smp:
        base = smp["rows"][1]["ess_per_s"]
        for r in smp["rows"]:
            lines.append(f"| {r['sampler']}: ESS/s ({smp['model']}) | {r['ess_per_s']:.0f} (with compile "
                         f"{r['ess_per_s_with_compile']:.1f}); min bulk ESS {r['min_ess_bulk']:.0f} | "
                         f"{r['ess_per_s'] / base:.2f}x PyMC's NUTS |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="second review and a small scale series")
    ap.add_argument("--only", choices=PARTS, help="run one part")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--studies", type=int, nargs="+", help="scale series (default 10 100 1000; quick: 10 30)")
    ap.add_argument("--json", help="write the measurements to this JSON file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary project copy")
    args = ap.parse_args(argv)
    out: dict = {"quick": args.quick, "cores": args.cores, "cpu_count": os.cpu_count(),
                 "load_average": os.getloadavg()[0]}
    runners = {"workflow": run_workflow, "scale": run_scale, "samplers": run_samplers}
    for part in ([args.only] if args.only else PARTS):
        runners[part](args, out)
    print(table(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2), encoding="utf-8")
        progress(f"wrote {args.json}")


if __name__ == "__main__":
    main()
