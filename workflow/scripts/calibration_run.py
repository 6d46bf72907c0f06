"""Calibration run (simulation-based calibration) of the continuous time-course model.

Truths (Delta(t) on the visit grid, tau, rho_within, rho_between) are drawn from the model's priors, data are
simulated from the model in numpy (``testing.simulate_table``) with a design shaped like the shipped review's disease-activity score
evidence (absolute means at 0/1/3, 0/12 and 0/0.92/1.85/3.69/5.54 months, change scores at 3/6 months), each
data set is fitted with nutpie (one compilation reused through ``compiled.with_data``), and the script prints

  * the coverage of the central 50%, 90% and 95% posterior intervals per parameter (nominal if calibrated),
  * SBC rank uniformity per parameter (chi-square over 10 bins of the rank of the truth among thinned draws),
  * sampler health over all fits (divergences, worst R-hat) and timings.

Usage:  PYTHONPATH=workflow python workflow/scripts/calibration_run.py [--sims 200] [--seed 1]
        [--chains 4 --draws 500 --tune 500] [--out results/calibration.csv]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from timecourse_meta.model import model_data as MD  # noqa: E402
from timecourse_meta import testing  # noqa: E402
from timecourse_meta.model import build, priors, sample  # noqa: E402

WEEKS = [round(w * 12 / 52, 4) for w in (4, 8, 16, 24)]
DESIGN = [
    {"study_id": "sa_b", "baseline": 12.0, "rows": [
        {"measure": "absolute", "time": t, "n": 15, "sd": 4.0} for t in (0, 1, 3)]},
    {"study_id": "sa_c", "baseline": 15.0, "rows": [
        {"measure": "absolute", "time": 0, "n": 40, "sd": 5.0}, {"measure": "absolute", "time": 12, "n": 35, "sd": 4.5}]},
    {"study_id": "sa_d", "baseline": 13.0, "rows": [
        {"measure": "absolute", "time": t, "n": 22, "sd": 4.5} for t in [0] + WEEKS]},
    {"study_id": "rct_a", "rows": [
        {"measure": "change_from_baseline", "time": 3, "n": 18, "sd": 4.5},
        {"measure": "change_from_baseline", "time": 6, "n": 18, "sd": 4.5}]},
]
SPEC = {"label": "activity score", "kind": "continuous", "canonical_unit": "points", "direction_of_benefit": "decrease",
        "analysis_scale": "identity"}
STUDIES = [d["study_id"] for d in DESIGN]


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sims", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--thin", type=int, default=10, help="thinning of draws for SBC ranks")
    ap.add_argument("--out", default=None, help="optional CSV of per-simulation results")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")

    settings = {
        "visit_grid_months": [0, 1, 3, 6, 9, 12], "compare_time_courses": False,
        "priors": {"sim_outcome": {"delta_sd": 10.0, "tau_scale": 4.0, "step_sd": 5.0, "baseline_sd": 15.0}},
        "sampling": {"progress_bar": False, "chains": args.chains, "draws": args.draws, "tune": args.tune},
        "arms": testing.ARMS,
    }
    t_start = time.perf_counter()
    truth0 = {"visits": [1], "delta": [0.0], "tau": 1.0, "rho_within": 0.5, "rho_between": 0.5}
    # the grid: union of config grid and observed times (the design fixes it)
    tab0 = testing.simulate_table(DESIGN, {**truth0, "visits": [1, 3, 6, 12] + WEEKS,
                                     "delta": [0.0] * (4 + len(WEEKS))}, seed=0)
    md0 = MD.build_model_data(tab0, "sim_outcome", STUDIES, SPEC, settings)
    visits = [float(v) for v in md0.post_visits]
    pri = priors.resolve_priors(md0, settings)
    model = build.build_model(md0, settings)
    compiled = sample.compile_model(model, settings)
    t_compile = time.perf_counter() - t_start
    print(f"design: {len(STUDIES)} studies, {md0.n_obs} rows, visits {visits}; compile {t_compile:.1f} s",
          flush=True)

    records = []
    fit_times = []
    for k in range(args.sims):
        truth = testing.draw_truth_from_prior(visits, pri, seed=args.seed * 100003 + k)
        tab = testing.simulate_table(DESIGN, truth, seed=args.seed * 200003 + k)
        md = MD.build_model_data(tab, "sim_outcome", STUDIES, SPEC, settings)
        t0 = time.perf_counter()
        idata, _, _ = sample.fit_time_course(md, settings, seed=args.seed * 300007 + k, compiled=compiled, model=model)
        fit_times.append(time.perf_counter() - t0)
        post = idata.posterior
        ss = idata.sample_stats
        ndiv = int(ss["diverging"].values.sum())
        params = {f"delta[{v:g}]": (post["delta"].values[..., i], truth["delta"][i]) for i, v in enumerate(visits)}
        params.update({"tau": (post["tau"].values, truth["tau"]),
                       "rho_within": (post["rho_within"].values, truth["rho_within"]),
                       "rho_between": (post["rho_between"].values, truth["rho_between"])})
        import arviz as az
        rhat = float(max(float(az.rhat(post[[v]])[v].max()) for v in ("tau", "rho_within", "rho_between")))
        for name, (draws, true) in params.items():
            flat = draws.reshape(-1)
            thinned = draws[:, ::args.thin].reshape(-1)
            rec = {"sim": k, "parameter": name, "truth": float(true), "median": float(np.median(flat)),
                   "rank": int((thinned < true).sum()), "n_rank": int(thinned.size), "divergences": ndiv,
                   "max_rhat": rhat}
            for level in (0.5, 0.9, 0.95):
                lo, hi = np.quantile(flat, [(1 - level) / 2, 1 - (1 - level) / 2])
                rec[f"in_{int(level * 100)}"] = bool(lo <= true <= hi)
                rec[f"width_{int(level * 100)}"] = float(hi - lo)
            records.append(rec)
        if (k + 1) % 20 == 0:
            print(f"  {k + 1}/{args.sims} simulations, {np.mean(fit_times):.2f} s per fit", flush=True)

    df = pd.DataFrame(records)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        df.to_csv(args.out, index=False)
    rows = []
    order = [f"delta[{v:g}]" for v in visits] + ["tau", "rho_within", "rho_between"]
    for name in order:
        g = df[df["parameter"] == name]
        n_rank = int(g["n_rank"].iloc[0])
        bins = np.floor(g["rank"].to_numpy() / (n_rank + 1) * 10).astype(int)
        counts = np.bincount(bins, minlength=10)
        chi2 = float(((counts - len(g) / 10) ** 2 / (len(g) / 10)).sum())
        rows.append({"parameter": name, "cover_50": g["in_50"].mean(), "cover_90": g["in_90"].mean(),
                     "cover_95": g["in_95"].mean(), "mean_width_90": g["width_90"].mean(),
                     "sbc_chi2_p": float(stats.chi2.sf(chi2, 9))})
    out = pd.DataFrame(rows)
    overall = {k: df[k].mean() for k in ("in_50", "in_90", "in_95")}
    n_int = len(df)
    pd.set_option("display.width", 160)
    print()
    print(out.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print()
    print(f"overall coverage over {n_int} intervals: 50%: {overall['in_50']:.3f}, 90%: {overall['in_90']:.3f}, "
          f"95%: {overall['in_95']:.3f}  (binomial 95% range for 90%: "
          f"{stats.binom.ppf(0.025, n_int, 0.9) / n_int:.3f}-{stats.binom.ppf(0.975, n_int, 0.9) / n_int:.3f}; "
          "intervals within a simulation are correlated)")
    sims = df.drop_duplicates("sim")
    print(f"sampler: {int(sims['divergences'].sum())} divergences in {args.sims} fits; worst R-hat "
          f"{sims['max_rhat'].max():.4f}; {args.chains} chains x {args.draws} draws")
    print(f"time: compile {t_compile:.1f} s once, {np.mean(fit_times):.2f} s per fit (median "
          f"{np.median(fit_times):.2f}), total {time.perf_counter() - t_start:.1f} s")
    return out


if __name__ == "__main__":
    main()
