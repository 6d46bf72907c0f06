"""Tests of the time-course models (timecourse_meta.model: model_data, priors, build, sample, posterior, summary).

Issue checklist: (a) parameter recovery over repeated simulations, (b) agreement with a numerical-integration
(bayesmeta-style grid) posterior for the one-visit normal-normal case, (c) between-arm difference = closed-form
inverse-variance result, (e) same seed -> identical summaries; (d) is in test_diagnostics.py.
Synthetic analysis tables follow docs/analysis_table.md.
"""
from __future__ import annotations

import math
import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from timecourse_meta import testing
from timecourse_meta.model import build
from timecourse_meta.model import evidence
from timecourse_meta.model import fit
from timecourse_meta.model import intervals
from timecourse_meta.model import model_data as MD
from timecourse_meta.model import posterior
from timecourse_meta.model import priors
from timecourse_meta.model import sample
from timecourse_meta.model import summary

warnings.filterwarnings("ignore", category=UserWarning)
warnings.filterwarnings("ignore", category=FutureWarning)

#: model settings naming the simulated tables' arms (the model reads the intervention arm from them)
ARMS = {"arms": testing.ARMS}

QUIET = {"progress_bar": False}

SPEC_ID = {"label": "Test score", "kind": "continuous", "canonical_unit": "points",
           "direction_of_benefit": "decrease", "analysis_scale": "identity"}
SPEC_LOG = {"label": "Proteinuria", "kind": "continuous", "canonical_unit": "g/24h",
            "direction_of_benefit": "decrease", "analysis_scale": "log"}
SPEC_BIN = {"label": "Remission", "kind": "binary", "canonical_unit": "", "direction_of_benefit": "increase",
            "analysis_scale": "logit"}


def row(study, measure, t, n, mean=np.nan, sd=np.nan, *, outcome="score", arm=testing.INTERVENTION, cohort="all",
        origin="reported", poolable=True, reason="", events=np.nan, total=np.nan, kind="continuous",
        method="reported", rid=None):
    """One analysis-table row (docs/analysis_table.md)."""
    return {"analysis_id": rid or f"{study}-{outcome}-{arm}-{measure}-{t}-{cohort}", "study_id": study,
            "arm": arm, "arm_label": arm, "outcome": outcome, "kind": kind, "measure": measure,
            "origin": origin, "cohort": cohort, "time_months": t, "n": n, "mean": mean, "sd": sd,
            "events": events, "total": total, "unit": "points", "analysis_scale": "identity",
            "direction_of_benefit": "decrease", "method": method, "assumption": "", "skewness_flag": False,
            "poolable": poolable, "not_poolable_reason": reason, "raw_row_ids": "r1", "source": "test#t1"}


# ---------------------------------------------------------------------------------------------------------
# model_data: selection, conversion, bookkeeping (no sampling)
# ---------------------------------------------------------------------------------------------------------
def test_derived_rows_never_enter_with_their_absolute_rows():
    tab = pd.DataFrame([
        row("a", "absolute", 0, 20, 10, 3), row("a", "absolute", 3, 20, 7, 3),
        row("a", "change_from_baseline", 3, 20, -3, 2.5, origin="derived", method="change_sd_from_r"),
        row("b", "absolute", 0, 15, 11, 3), row("b", "absolute", 3, 15, 8, 3),
    ])
    md = MD.build_model_data(tab, "score", ["a", "b"], SPEC_ID, ARMS)
    assert len(md.obs) == 4 and set(md.obs["measure"]) == {"absolute"}
    ex = md.excluded.set_index("origin")
    assert "derived" in ex.index and "double counting" in ex.loc["derived", "reason"]


def test_reported_change_supersedes_absolute_followup_of_same_cohort():
    tab = pd.DataFrame([
        row("a", "absolute", 0, 20, 10, 3), row("a", "absolute", 6, 20, 6, 3),
        row("a", "change_from_baseline", 6, 20, -4, 2.0),
        row("b", "absolute", 0, 15, 11, 3), row("b", "absolute", 6, 15, 8, 3),
    ])
    md = MD.build_model_data(tab, "score", ["a", "b"], SPEC_ID, ARMS)
    a = md.obs[md.obs["study_id"] == "a"]
    assert list(a["measure"]) == ["change"]          # baseline-only cohort dropped, follow-up superseded
    reasons = " ".join(md.excluded["reason"])
    assert "superseded by the reported change score" in reasons and "baseline only" in reasons


def test_log_scale_delta_method_and_change_anchoring():
    tab = pd.DataFrame([
        row("a", "absolute", 0, 16, 3.0, 2.0), row("a", "absolute", 1, 16, 2.0, 1.5),
        # change with a follow-up mean at that visit: implied baseline = 1.5 - (-1.0) = 2.5
        row("b", "absolute", 6, 10, 1.5, 1.0), row("b", "change_from_baseline", 6, 10, -1.0, 1.2),
        # change without any anchoring mean: excluded with a reason
        row("c", "change_from_baseline", 6, 12, -1.0, 1.0),
    ])
    md = MD.build_model_data(tab, "score", ["a", "b", "c"], SPEC_LOG, ARMS)
    a0 = md.obs[(md.obs["study_id"] == "a") & (md.obs["time_months"] == 0)].iloc[0]
    assert a0["y"] == pytest.approx(math.log(3.0)) and a0["s"] == pytest.approx(2.0 / 3.0)
    b = md.obs[md.obs["study_id"] == "b"].iloc[0]
    assert b["measure"] == "change"
    assert b["y"] == pytest.approx(math.log(1.5 / 2.5))
    assert b["s"] == pytest.approx(1.2 / math.sqrt(1.5 * 2.5))
    assert "c" not in set(md.obs["study_id"])
    assert any("without an absolute mean" in r for r in md.excluded["reason"])


def test_irregular_times_and_subset_cohorts():
    wk = [0, 4 * 12 / 52, 8 * 12 / 52]
    tab = pd.DataFrame([
        row("a", "absolute", round(wk[0], 4), 22, 13, 4), row("a", "absolute", round(wk[1], 4), 22, 10, 4),
        row("a", "absolute", round(wk[2], 4), 22, 9, 4),
        row("b", "absolute", 0, 40, 14, 5), row("b", "absolute", 12, 40, 7, 5),
        row("b", "absolute", 0, 25, 13, 5, cohort="seen_at_1m"), row("b", "absolute", 1, 25, 11, 5,
                                                                     cohort="seen_at_1m"),
    ])
    md = MD.build_model_data(tab, "score", ["a", "b"], SPEC_ID, {**ARMS, "visit_grid_months": [0, 1, 3, 6, 9, 12]})
    assert np.allclose(md.visits, [0, 0.923, 1, 1.846, 3, 6, 9, 12])
    assert len(md.levels) == 3                       # (a, all), (b, all), (b, seen_at_1m)
    # nested-subset covariance: the two baselines of study b share the subset's 25 patients
    ib = md.obs.index[(md.obs["study_id"] == "b") & (md.obs["time_months"] == 0)]
    A = md.A[np.ix_(ib, ib)]
    assert A[0, 1] == pytest.approx(5 * 5 * 25 / (40 * 25))
    assert np.linalg.eigvalsh(MD.covariance(md, 0.9)).min() > 0


def test_thin_evidence_single_study_and_median_only():
    tab = pd.DataFrame([
        row("a", "absolute", 0, 20, 10, 3), row("a", "absolute", 3, 20, 7, 3),
        row("b", "absolute", 0, 30, 1.2, poolable=False, reason="median without spread",
            method="median_only"),
    ])
    md = MD.build_model_data(tab, "score", ["a", "b"], SPEC_ID, ARMS)
    assert md.status == "single_study" and md.studies == ["a"]
    assert len(md.listed) == 1 and md.listed["study_id"].iloc[0] == "b"
    none = MD.build_model_data(tab[tab["study_id"] == "b"], "score", ["b"], SPEC_ID, ARMS)
    assert none.status == "no_data"
    idata = fit.fit_outcome(none, {"sampling": QUIET}, seed=1)
    assert "posterior" not in idata.groups()
    summ = summary.summarise(idata, none, ARMS)
    assert list(summ["label"]) == [evidence.LABEL_MEDIAN_ONLY] and list(summ["evidence"]) == ["median_only"]


def test_an_outcome_without_dictionary_priors_gets_the_data_derived_rule():
    tab = pd.DataFrame([row("a", "absolute", 0, 20, 10, 4, outcome="unknown_score"),
                        row("a", "absolute", 3, 20, 7, 4, outcome="unknown_score")])
    md = MD.build_model_data(tab, "unknown_score", ["a"], SPEC_ID, ARMS)
    empty = MD.build_model_data(tab, "other", ["a"], SPEC_ID, ARMS)
    assert empty.status == "no_data"
    pri = priors.resolve_priors(md, ARMS)
    assert pri["delta_sd"] == pytest.approx(4.0) and "data-derived" in pri["sources"]["delta_sd"]
    pri = priors.resolve_priors(md, {**ARMS, "priors": {"unknown_score": {"delta_sd": 7.0}}})
    assert pri["delta_sd"] == 7.0 and pri["sources"]["delta_sd"] == "config (outcome)"


# ---------------------------------------------------------------------------------------------------------
# (c) between-arm difference of a controlled study = closed-form inverse-variance result
# ---------------------------------------------------------------------------------------------------------
def test_between_arm_difference_matches_closed_form():
    tab = pd.DataFrame([
        row("rct", "absolute", 0, 20, 14.0, 4.0), row("rct", "absolute", 0, 18, 13.5, 4.2, arm="control"),
        row("rct", "change_from_baseline", 6, 20, -7.5, 4.5),
        row("rct", "change_from_baseline", 6, 18, -4.0, 5.0, arm="control"),
        row("rct", "absolute", 12, 19, 6.0, 3.0), row("rct", "absolute", 12, 17, 9.0, 4.0, arm="control"),
        row("sa", "absolute", 0, 15, 12.0, 4.0), row("sa", "absolute", 6, 15, 7.0, 4.0),
    ])
    md = MD.build_model_data(tab, "score", ["rct", "sa"], SPEC_ID, ARMS)
    ba = md.between_arm.set_index("visit_months")
    # change scores at 6 months
    se6 = math.sqrt(4.5 ** 2 / 20 + 5.0 ** 2 / 18)
    assert ba.loc[6.0, "estimate"] == pytest.approx(-3.5)
    assert ba.loc[6.0, "se"] == pytest.approx(se6)
    # t interval with n1 + n2 - 2 = 36 df (the methods: t for small samples)
    assert ba.loc[6.0, "lower"] == pytest.approx(-3.5 - stats.t.ppf(0.975, 36) * se6)
    assert ba.loc[6.0, "estimand"] == "change scores" and bool(ba.loc[6.0, "primary"])  # the only one at 6
    # follow-up means at 12 months
    se12 = math.sqrt(3.0 ** 2 / 19 + 4.0 ** 2 / 17)
    assert ba.loc[12.0, "estimate"] == pytest.approx(-3.0) and ba.loc[12.0, "se"] == pytest.approx(se12)
    # the control arm is not in the time-course likelihood
    assert set(md.obs["study_id"]) == {"rct", "sa"} and len(md.obs) == 5 and "control" not in " ".join(md.obs["analysis_id"])
    # MSCT reports change and follow-up, control only follow-up: the follow-up means are compared
    t2 = pd.DataFrame([
        row("rct", "absolute", 0, 20, 14.0, 4.0), row("rct", "absolute", 6, 20, 7.0, 4.0),
        row("rct", "change_from_baseline", 6, 20, -7.0, 3.0), row("rct", "absolute", 6, 18, 10.0, 5.0, arm="control")])
    b2 = MD.build_model_data(t2, "score", ["rct"], SPEC_ID, ARMS).between_arm.iloc[0]
    assert b2["estimate"] == pytest.approx(-3.0) and b2["se"] == pytest.approx(math.sqrt(16 / 20 + 25 / 18))
    assert b2["method"] == "difference in follow-up means"
    # log scale: ratio of the arms' ratios of means, inverse-variance on the log scale
    tl = pd.DataFrame([
        row("rct", "absolute", 6, 20, 1.4, 1.1), row("rct", "absolute", 6, 18, 2.4, 1.6, arm="control")])
    mdl = MD.build_model_data(tl, "score", ["rct"], SPEC_LOG, ARMS)
    r = mdl.between_arm.iloc[0]
    assert r["estimate"] == pytest.approx(math.log(1.4 / 2.4))
    assert r["se"] == pytest.approx(math.sqrt((1.1 / 1.4) ** 2 / 20 + (1.6 / 2.4) ** 2 / 18))
    # the summary reports it with the closed-form interval
    summ = summary.summarise(fit.fit_outcome(mdl, {"sampling": QUIET}, seed=1), mdl, ARMS)
    row6 = summ[summ["quantity"] == "between_arm_difference"].iloc[0]
    assert row6["median"] == pytest.approx(r["estimate"]) and row6["upper"] == pytest.approx(r["upper"])


# ---------------------------------------------------------------------------------------------------------
# (b) one-visit normal-normal random effects: MCMC posterior = numerical-integration posterior
# ---------------------------------------------------------------------------------------------------------
def grid_posterior(y, se, delta_sd, tau_logpdf, tau_grid):
    """bayesmeta-style: p(tau | y) on a grid with mu integrated analytically (its normal prior included:
    y ~ N(0, diag(se^2 + tau^2) + delta_sd^2 J), determinant and inverse by Sherman-Morrison);
    p(mu | y) = sum over the grid of p(tau | y) N(mu; m(tau), v(tau))."""
    y, se = np.asarray(y, float), np.asarray(se, float)
    Dg = se[None, :] ** 2 + tau_grid[:, None] ** 2                  # (G, k)
    c = delta_sd ** 2
    s1, sy, syy = (1 / Dg).sum(1), (y / Dg).sum(1), (y ** 2 / Dg).sum(1)
    logdet = np.log(Dg).sum(1) + np.log1p(c * s1)
    quad = syy - c * sy ** 2 / (1 + c * s1)
    logp = -0.5 * (logdet + quad) + tau_logpdf(tau_grid)
    dens = np.exp(logp - logp.max())
    wts = dens * np.gradient(tau_grid)
    wts /= wts.sum()
    prec = s1 + 1 / c
    return wts, sy / prec, 1 / prec


def _mixture_quantile(q, wts, means, variances):
    lo, hi = (means - 8 * np.sqrt(variances)).min(), (means + 8 * np.sqrt(variances)).max()
    xs = np.linspace(lo, hi, 4001)
    cdf = wts @ stats.norm.cdf((xs[None, :] - means[:, None]) / np.sqrt(variances)[:, None])
    return float(np.interp(q, cdf, xs))


@pytest.mark.parametrize("family", ["half_normal", "half_cauchy"])
def test_one_visit_normal_normal_matches_grid_posterior(family):
    d = np.array([-4.0, -6.0, -2.5, -7.0, -3.0])
    sd = np.array([4.0, 5.0, 3.5, 6.0, 4.5])
    n = np.array([20, 15, 30, 12, 25])
    tab = pd.DataFrame([row(f"s{i}", "change_from_baseline", 6, int(n[i]), d[i], sd[i]) for i in range(5)])
    # random-walk prior of Delta at 6 months: Var = delta_sd^2 + step_sd^2 * 6 / 3 = 64 + 36
    settings = {**ARMS, "priors": {"score": {"delta_sd": 8.0, "step_sd": math.sqrt(18.0), "tau_scale": 2.0}},
                "heterogeneity_prior": {"family": family},
                "sampling": {**QUIET, "chains": 4, "draws": 2000, "tune": 1000}, "compare_time_courses": False}
    md = MD.build_model_data(tab, "score", [f"s{i}" for i in range(5)], SPEC_ID, settings)
    assert md.status == "pooled" and len(md.obs) == 5 and set(md.obs["time_months"]) == {6.0}
    idata, _, _ = sample.fit_time_course(md, settings, seed=11)
    mu = idata.posterior["delta"].sel(visit=6.0).values
    tau = idata.posterior["tau"].values

    se = sd / np.sqrt(n)
    tau_logpdf = (lambda t: stats.halfnorm.logpdf(t, scale=2.0)) if family == "half_normal" else \
        (lambda t: stats.halfcauchy.logpdf(t, scale=2.0))
    grid = np.concatenate([np.linspace(1e-6, 10, 2000), np.linspace(10.01, 400, 2000)])
    wts, means, variances = grid_posterior(d, se, 10.0, tau_logpdf, grid)     # prior SD of Delta(6): 10
    exact_mu_mean = float((wts * means).sum())
    exact_mu_sd = math.sqrt(float((wts * (variances + means ** 2)).sum()) - exact_mu_mean ** 2)
    cdf_tau = np.cumsum(wts)

    post = az.from_dict(posterior={"mu": mu, "tau": tau})
    mcse_mu = float(az.mcse(post, var_names=["mu"])["mu"])
    assert abs(mu.mean() - exact_mu_mean) < 4 * mcse_mu + 1e-3
    assert mu.std() == pytest.approx(exact_mu_sd, rel=0.05)
    for q in (0.025, 0.5, 0.975):
        exact_mu_q = _mixture_quantile(q, wts, means, variances)
        exact_tau_q = float(np.interp(q, cdf_tau, grid))
        mc_mu = float(az.mcse(post, var_names=["mu"], method="quantile", prob=q)["mu"])
        mc_tau = float(az.mcse(post, var_names=["tau"], method="quantile", prob=q)["tau"])
        assert abs(np.quantile(mu, q) - exact_mu_q) < 4 * mc_mu + 0.02, (q, np.quantile(mu, q), exact_mu_q)
        assert abs(np.quantile(tau, q) - exact_tau_q) < 4 * mc_tau + 0.02, (q, np.quantile(tau, q), exact_tau_q)


# ---------------------------------------------------------------------------------------------------------
# (a) parameter recovery: truth inside the 90% intervals at the nominal rate over repeated simulations
# ---------------------------------------------------------------------------------------------------------
RECOVERY_DESIGN = [
    {"study_id": "s1", "baseline": 12.0, "rows": [
        {"measure": "absolute", "time": 0, "n": 20, "sd": 4.0}, {"measure": "absolute", "time": 1, "n": 20, "sd": 4.0},
        {"measure": "absolute", "time": 3, "n": 18, "sd": 4.0}, {"measure": "absolute", "time": 6, "n": 16, "sd": 4.0}]},
    {"study_id": "s2", "baseline": 15.0, "rows": [
        {"measure": "absolute", "time": 0, "n": 30, "sd": 5.0}, {"measure": "absolute", "time": 6, "n": 28, "sd": 5.0}]},
    {"study_id": "s3", "rows": [
        {"measure": "change_from_baseline", "time": 3, "n": 15, "sd": 4.5},
        {"measure": "change_from_baseline", "time": 6, "n": 15, "sd": 4.5}]},
    {"study_id": "s4", "baseline": 10.0, "rows": [
        {"measure": "absolute", "time": 0, "n": 25, "sd": 4.0}, {"measure": "absolute", "time": 1, "n": 25, "sd": 4.0}]},
]
RECOVERY_SETTINGS = {**ARMS,
    "visit_grid_months": [0, 1, 3, 6], "compare_time_courses": False,
    "priors": {"sim_outcome": {"delta_sd": 5.0, "tau_scale": 2.0, "step_sd": 3.0, "baseline_sd": 20.0}},
    "sampling": {**QUIET, "chains": 2, "draws": 400, "tune": 400},
}


def test_parameter_recovery_over_repeated_simulations():
    n_sims = 24
    settings = RECOVERY_SETTINGS
    truth0 = {"visits": [1, 3, 6], "delta": [0, 0, 0], "tau": 1.0, "rho_within": 0.5, "rho_between": 0.5}
    md0 = MD.build_model_data(testing.simulate_table(RECOVERY_DESIGN, truth0, seed=0), "sim_outcome",
                              ["s1", "s2", "s3", "s4"], {**SPEC_ID}, settings)
    pri = priors.resolve_priors(md0, settings)
    model = build.build_model(md0, settings)
    compiled = sample.compile_model(model, settings)            # one compilation, reused for every data set
    hits, total = 0, 0
    per_param = {}
    for k in range(n_sims):
        truth = testing.draw_truth_from_prior([1, 3, 6], pri, seed=1000 + k)
        tab = testing.simulate_table(RECOVERY_DESIGN, truth, seed=2000 + k)
        md = MD.build_model_data(tab, "sim_outcome", ["s1", "s2", "s3", "s4"], {**SPEC_ID}, settings)
        idata, _, _ = sample.fit_time_course(md, settings, seed=k, compiled=compiled, model=model)
        post = idata.posterior
        checks = {f"delta[{t}]": (post["delta"].values[..., i], truth["delta"][i]) for i, t in enumerate([1, 3, 6])}
        checks.update({"tau": (post["tau"].values, truth["tau"]),
                       "rho_within": (post["rho_within"].values, truth["rho_within"]),
                       "rho_between": (post["rho_between"].values, truth["rho_between"])})
        for name, (draws, true) in checks.items():
            lo, hi = np.quantile(draws, [0.05, 0.95])
            hit = bool(lo <= true <= hi)
            hits += hit
            total += 1
            per_param.setdefault(name, []).append(hit)
    coverage = hits / total
    # 144 intervals at nominal 0.90: binomial 99.9% range ~ [0.83, 0.96]
    assert 0.80 <= coverage <= 0.98, (coverage, {k: np.mean(v) for k, v in per_param.items()})
    for name, v in per_param.items():
        assert np.mean(v) >= 0.6, (name, np.mean(v))


# ---------------------------------------------------------------------------------------------------------
# full outcome fits: groups, summary contract, determinism (e), binary, single study
# ---------------------------------------------------------------------------------------------------------
FIT_SETTINGS = {**ARMS, "sampling": {**QUIET, "chains": 4, "draws": 500, "tune": 500}, "compare_time_courses": False}


@pytest.fixture(scope="module")
def example():
    return testing.example_analysis_table(), testing.example_outcome_dictionary()


def test_same_seed_gives_identical_summaries_and_groups(example, tmp_path):
    tab, dic = example
    studies = ["rct_a", "sa_b", "sa_c", "sa_d"]
    paths = []
    summaries = []
    for k in range(2):
        idata_out, summary_out = tmp_path / f"idata{k}.nc", tmp_path / f"summary{k}.csv"
        summaries.append(fit.run_model(tab, dic, FIT_SETTINGS, "biomarker_24h", "review_2023", studies,
                                       str(idata_out), str(summary_out), seed=123))
        paths.append((idata_out, summary_out))
    pd.testing.assert_frame_equal(summaries[0], summaries[1])
    assert paths[0][1].read_bytes() == paths[1][1].read_bytes()
    idata = az.from_netcdf(paths[0][0])
    for g in ("posterior", "sample_stats", "prior", "prior_predictive", "posterior_predictive", "observed_data",
              "log_likelihood", "predictions", "constant_data"):
        assert g in idata.groups(), g
    s = summaries[0]
    for c in ("outcome", "study_set", "visit_months", "quantity", "median", "lower", "upper", "p_improvement",
              "n_studies", "n_patients", "label"):
        assert c in s.columns
    delta = s[s["quantity"] == "delta"].set_index("visit_months")
    assert (delta["lower"] < delta["median"]).all() and (delta["median"] < delta["upper"]).all()
    assert delta.loc[1.0, "n_studies"] == 2 and delta.loc[1.0, "evidence"] == evidence.Evidence.POOLED
    assert delta.loc[1.0, "n_patients"] == 27
    assert delta.loc[1.0, "label"] == ("pooled at 1 month from 2 studies (27 patients); time course fitted to "
                                       "4 studies (85 patients)")
    assert (delta["n_studies_model"] == 4).all() and (delta["n_patients_model"] == 85).all()
    assert delta.loc[9.0, "evidence"] == evidence.Evidence.INTERPOLATED
    assert delta.loc[9.0, "label"].startswith("model-based interpolation: no study at 9 months; time course "
                                              "fitted to 4 studies")
    assert {"delta_percent", "prediction", "study_delta", "study_observed", "tau", "rho_within", "rho_between",
            "between_arm_difference"} <= set(s["quantity"])
    obs12 = s[(s["quantity"] == "study_observed") & (s["study_id"] == "sa_c")].iloc[0]
    assert obs12["median"] == pytest.approx(math.log(1.1) - math.log(2.8))
    rho = s[s["quantity"] == "rho_within"].iloc[0]
    assert rho["prior_median"] == pytest.approx(0.5)
    pred = s[s["quantity"] == "prediction"].set_index("visit_months")
    assert (pred["upper"] - pred["lower"] >= delta["upper"] - delta["lower"] - 1e-9).all()
    # percent change is the back-transformed ratio of means
    pc = s[s["quantity"] == "delta_percent"].set_index("visit_months")
    assert pc.loc[12.0, "median"] == pytest.approx(100 * math.expm1(delta.loc[12.0, "median"]), rel=1e-6)


def test_single_study_and_binary_outcomes(example):
    tab, dic = example
    studies = ["rct_a", "sa_b", "sa_c", "sa_d"]
    md = MD.build_model_data(tab, "albumin_level", studies, dic["albumin_level"], FIT_SETTINGS)
    idata = fit.fit_outcome(md, FIT_SETTINGS, seed=5)
    s = summary.summarise(idata, md, FIT_SETTINGS)
    d = s[s["quantity"] == "delta"]
    assert set(d["evidence"]) == {evidence.Evidence.STUDY_ESTIMATE} and (d["n_studies"] == 1).all()
    assert set(d["label"]) == {"study's own estimate (sa_b, 15 patients)"}
    assert "tau" not in set(s["quantity"]) and "posterior" not in idata.groups()   # no model for one study
    # the study's own estimate: the observed change (albumin 27.0 -> 32.0 at 3 months), t interval with 14 df,
    # Var = (5.0^2 + 4.8^2 - 2 r 5.0 4.8) / 15 at the configured within-person r (0.5 by default)
    d3 = d.set_index("visit_months").loc[3.0]
    se = math.sqrt((5.0 ** 2 + 4.8 ** 2 - 2 * 0.5 * 5.0 * 4.8) / 15)
    assert d3["median"] == pytest.approx(5.0)
    assert d3["upper"] == pytest.approx(5.0 + stats.t.ppf(0.975, 14) * se)

    mb = MD.build_model_data(tab, "remission", studies, dic["remission"], FIT_SETTINGS)
    ib = fit.fit_outcome(mb, FIT_SETTINGS, seed=5)
    sb = summary.summarise(ib, mb, FIT_SETTINGS)
    pooled = sb[(sb["quantity"] == "proportion") & (sb["evidence"] == evidence.Evidence.POOLED)].set_index("visit_months")
    assert set(pooled.index) == {6.0, 12.0}
    assert 0.3 < pooled.loc[12.0, "median"] < 0.75
    rd = sb[sb["quantity"] == "between_arm_difference"].iloc[0]
    assert rd["median"] == pytest.approx(9 / 18 - 4 / 18)


def test_marginal_covariance_and_pointwise_loglik_by_brute_force():
    """The integrated model's covariance written out by hand for a 3-row design, and the pointwise
    log-likelihood = log p(y_j | y_-j) of the multivariate normal computed by conditioning."""
    tab = pd.DataFrame([row("a", "absolute", 0, 20, 10.0, 4.0), row("a", "absolute", 3, 20, 7.0, 4.0),
                        row("b", "change_from_baseline", 3, 15, -2.0, 5.0)])
    settings = {**ARMS, "visit_grid_months": [0, 3], "priors": {"score": {"delta_sd": 5.0, "step_sd": 2.0,
                                                                   "tau_scale": 2.0, "baseline_sd": 10.0}}}
    md = MD.build_model_data(tab, "score", ["a", "b"], SPEC_ID, settings)
    tau, rho = 1.5, 0.6
    idata = az.from_dict(posterior={"tau": np.full((1, 2), tau), "rho_within": np.full((1, 2), rho)})
    m, V = posterior.marginal_moments(idata, md, settings, "random_walk")
    var_delta = 5.0 ** 2 + 2.0 ** 2 * 3 / 3                    # J + Brownian motion at 3 months
    a, b = 16 / 20, 25 / 15
    expected = np.array([
        [a + 100, rho * a + 100, 0.0],
        [rho * a + 100, a + 100 + tau ** 2 + var_delta, var_delta],
        [0.0, var_delta, b + tau ** 2 + var_delta]])
    assert np.allclose(V[0], expected) and np.allclose(m, [10.0, 10.0, 0.0])
    ll = posterior.pointwise_log_likelihood(idata, md, settings, "random_walk")["y"].values[0, 0]
    y = np.array([10.0, 7.0, -2.0])
    for j in range(3):
        o = [k for k in range(3) if k != j]
        mu_c = m[j] + expected[j, o] @ np.linalg.solve(expected[np.ix_(o, o)], y[o] - m[o])
        var_c = expected[j, j] - expected[j, o] @ np.linalg.solve(expected[np.ix_(o, o)], expected[o, j])
        assert ll[j] == pytest.approx(stats.norm.logpdf(y[j], mu_c, math.sqrt(var_c)))


# ---------------------------------------------------------------------------------------------------------
# results reported only as an estimate with its standard error; model settings from the config
# ---------------------------------------------------------------------------------------------------------
# equal n within each study, so that "the SE rows describe the same patients" is exactly the nested-subset rule
SE_DESIGN = [
    {"study_id": "s1", "baseline": 12.0, "rows": [{"measure": "absolute", "time": t, "n": 20, "sd": 4.0}
                                                  for t in (0, 1, 3, 6)]},
    {"study_id": "s2", "baseline": 15.0, "rows": [{"measure": "absolute", "time": t, "n": 28, "sd": 5.0}
                                                  for t in (0, 6)]},
    {"study_id": "s3", "rows": [{"measure": "change_from_baseline", "time": t, "n": 15, "sd": 4.5} for t in (3, 6)]},
]
SE_TRUTH = {"visits": [1, 3, 6], "delta": [-2.0, -4.0, -5.0], "tau": 1.0, "rho_within": 0.6, "rho_between": 0.5}
SE_SETTINGS = {**ARMS, "visit_grid_months": [0, 1, 3, 6], "compare_time_courses": False,
               "priors": {"sim_outcome": {"delta_sd": 5.0, "tau_scale": 2.0, "step_sd": 3.0, "baseline_sd": 20.0}},
               "sampling": {**QUIET, "chains": 2, "draws": 1000, "tune": 500}}


def _se_only(table: pd.DataFrame, studies) -> pd.DataFrame:
    """The same table with the given studies' rows reported as estimate and SE of the mean only (no n, no SD)."""
    out = table.copy()
    out["se"] = np.nan
    pick = out["study_id"].isin(studies)
    out.loc[pick, "se"] = out.loc[pick, "sd"] / np.sqrt(out.loc[pick, "n"])
    out.loc[pick, ["n", "sd"]] = np.nan
    return out


def test_rows_with_only_an_estimate_and_its_se_agree_with_the_n_and_sd_route():
    tab = testing.simulate_table(SE_DESIGN, SE_TRUTH, seed=5)
    studies = ["s1", "s2", "s3"]
    md = MD.build_model_data(tab, "sim_outcome", studies, SPEC_ID, SE_SETTINGS)
    md_se = MD.build_model_data(_se_only(tab, ["s2", "s3"]), "sim_outcome", studies, SPEC_ID, SE_SETTINGS)
    assert len(md_se.obs) == len(md.obs) == 8 and md_se.excluded.empty
    assert np.allclose(md_se.obs["y"], md.obs["y"]) and np.allclose(md_se.obs["se"], md.obs["se"], rtol=1e-12)
    assert md_se.obs.loc[md_se.obs["study_id"] == "s2", "n"].isna().all()
    # the same sampling covariance (nested-subset rule with equal n = the SEs' product), so the same likelihood
    assert np.allclose(md_se.A, md.A, rtol=1e-12, atol=0)
    hyper = az.from_dict(posterior={"tau": np.full((1, 1), 1.3), "rho_within": np.full((1, 1), 0.4),
                                    "rho_between": np.full((1, 1), 0.7)})
    for a, b in zip(posterior.marginal_moments(hyper, md, SE_SETTINGS, "random_walk"),
                    posterior.marginal_moments(hyper, md_se, SE_SETTINGS, "random_walk")):
        assert np.allclose(a, b, rtol=1e-12)
    # an SE with n but no SD is the SD route exactly (per-patient SD = se * sqrt(n))
    with_n = _se_only(tab, ["s1"]).assign(n=tab["n"])
    md_n = MD.build_model_data(with_n, "sim_outcome", studies, SPEC_ID, SE_SETTINGS)
    assert np.allclose(md_n.obs["s"], md.obs["s"], rtol=1e-12) and (md_n.obs["n"] == md.obs["n"]).all()
    # fitted: the pooled change agrees with the n/SD route's; SE-only studies count no patients
    s = summary.summarise(fit.fit_outcome(md, SE_SETTINGS, seed=3), md, SE_SETTINGS)
    s_se = summary.summarise(fit.fit_outcome(md_se, SE_SETTINGS, seed=3), md_se, SE_SETTINGS)
    d, d_se = (x[x["quantity"] == "delta"].set_index("visit_months") for x in (s, s_se))
    width = d["upper"] - d["lower"]
    assert ((d_se["median"] - d["median"]).abs() < 0.1 * width).all(), (d["median"], d_se["median"])
    assert ((d_se["upper"] - d_se["lower"]) / width).between(0.85, 1.15).all()
    assert d.loc[6.0, "n_patients"] == 20 + 28 + 15 and d_se.loc[6.0, "n_patients"] == 20
    own = s_se[(s_se["quantity"] == "study_observed") & (s_se["study_id"] == "s3")].iloc[0]
    assert "patients not reported" in own["label"] and "normal interval" in own["note"]
    assert pd.isna(own["n_patients"])


def test_fixed_within_study_correlation_replaces_its_prior():
    tab = testing.simulate_table(SE_DESIGN, SE_TRUTH, seed=5)
    studies = ["s1", "s2", "s3"]
    fixed = {**SE_SETTINGS, "within_study_correlation": {"fixed": 0.4}}
    md = MD.build_model_data(tab, "sim_outcome", studies, SPEC_ID, SE_SETTINGS)
    md_fixed = MD.build_model_data(tab, "sim_outcome", studies, SPEC_ID, fixed)
    assert md.needs_rho_within and not md_fixed.needs_rho_within
    assert [rv.name for rv in build.build_model(md_fixed, fixed).free_RVs] == ["tau", "rho_between"]
    assert np.allclose(MD.covariance(md_fixed, 0.9), MD.covariance(md, 0.4))      # rho no longer matters
    sampled = az.from_dict(posterior={"tau": np.full((1, 1), 1.3), "rho_within": np.full((1, 1), 0.4),
                                      "rho_between": np.full((1, 1), 0.7)})
    without = az.from_dict(posterior={"tau": np.full((1, 1), 1.3), "rho_between": np.full((1, 1), 0.7)})
    assert np.allclose(posterior.marginal_moments(sampled, md, SE_SETTINGS, "random_walk")[1],
                       posterior.marginal_moments(without, md_fixed, fixed, "random_walk")[1])
    assert priors.resolve_priors(md_fixed, fixed)["within_study_correlation"]["fixed"] == 0.4


def test_correlation_lag_is_read_from_the_settings():
    tab = testing.simulate_table(SE_DESIGN, SE_TRUTH, seed=5)
    settings = {**SE_SETTINGS, "within_study_correlation": {"structure": "ar1", "lag_months": 6.0},
                "between_visit_correlation": {"structure": "ar1", "lag_months": 1.5}}
    md = MD.build_model_data(tab, "sim_outcome", ["s1", "s2", "s3"], SPEC_ID, settings)
    s1 = np.flatnonzero(md.obs["study_id"] == "s1")
    t = md.obs["time_months"].to_numpy()[s1]
    assert np.allclose(md.lag_within[np.ix_(s1, s1)], np.abs(t[:, None] - t[None, :]) / 6.0)
    lag_b = build.structure_matrices(md, settings)["lag_between"]
    i1, i6 = (s1[list(t).index(v)] for v in (1.0, 6.0))
    assert lag_b[i1, i6] == pytest.approx(5.0 / 1.5)


def test_interval_level_sets_every_interval_of_the_summary(example):
    tab, dic = example
    studies = ["rct_a", "sa_b", "sa_c", "sa_d"]
    settings = {**FIT_SETTINGS, "interval_level": 0.8}
    md = MD.build_model_data(tab, "albumin_level", studies, dic["albumin_level"], settings)
    s = summary.summarise(fit.fit_outcome(md, settings, seed=5), md, settings)
    d3 = s[s["quantity"] == "delta"].set_index("visit_months").loc[3.0]
    se = math.sqrt((5.0 ** 2 + 4.8 ** 2 - 2 * 0.5 * 5.0 * 4.8) / 15)
    assert d3["upper"] == pytest.approx(5.0 + stats.t.ppf(0.9, 14) * se)
    mb = MD.build_model_data(tab, "remission", studies, dic["remission"], settings)
    sb = summary.summarise(posterior.bookkeeping_idata(mb, settings, "test"), mb, settings)
    rd = sb[sb["quantity"] == "between_arm_difference"].iloc[0]
    assert (rd["lower"], rd["upper"]) == pytest.approx(intervals.newcombe_interval(9, 18, 4, 18, 0.8))
    own = sb[(sb["quantity"] == "study_observed") & (sb["study_id"] == "sa_b")].iloc[0]
    assert (own["lower"], own["upper"]) == pytest.approx(intervals.clopper_pearson(8, 15, 0.8))


def test_between_arm_difference_of_arms_reported_with_their_se_only():
    tab = pd.DataFrame([row("rct", "absolute", 6, np.nan, 7.0), row("rct", "absolute", 6, np.nan, 10.0, arm="control")])
    tab["se"] = [0.8, 1.1]
    r = MD.build_model_data(tab, "score", ["rct"], SPEC_ID, ARMS).between_arm.iloc[0]
    se = math.sqrt(0.8 ** 2 + 1.1 ** 2)
    assert r["estimate"] == pytest.approx(-3.0) and r["se"] == pytest.approx(se)
    assert r["df"] == np.inf and r["upper"] == pytest.approx(-3.0 + stats.norm.ppf(0.975) * se)   # normal interval
    assert pd.isna(r["intervention_n"]) and pd.isna(r["comparator_n"])
