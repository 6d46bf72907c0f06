"""Estimands and labels of the model layer: between-arm differences (both estimands, t intervals, Newcombe risk
differences), control-arm changes, binary follow-up durations, single-study exact results, rare-event priors
(prior predictive), the evidence vocabulary, the time-course rule, and log-scale creatinine."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import ROOT
from timecourse_meta import testing
from timecourse_meta.data import dictionary
from timecourse_meta.model import binary_data
from timecourse_meta.model import build
from timecourse_meta.model import compare
from timecourse_meta.model import diagnostics
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

QUIET = {"progress_bar": False, "chains": 2, "draws": 300, "tune": 300}
SPEC_ID = {"label": "Score", "kind": "continuous", "canonical_unit": "points", "direction_of_benefit": "decrease",
           "analysis_scale": "identity"}
SPEC_LOG = {"label": "Proteinuria", "kind": "continuous", "canonical_unit": "g/24h",
            "direction_of_benefit": "decrease", "analysis_scale": "log"}
SPEC_BIN = {"label": "Death", "kind": "binary", "canonical_unit": "", "direction_of_benefit": "decrease",
            "analysis_scale": "logit"}


def row(study, measure, t, n, mean=np.nan, sd=np.nan, *, outcome="score", arm=testing.INTERVENTION, origin="reported",
        events=np.nan, total=np.nan, kind="continuous", cohort="all"):
    return {"analysis_id": f"{study}-{outcome}-{arm}-{measure}-{t}-{origin}", "study_id": study, "arm": arm,
            "arm_label": arm, "outcome": outcome, "kind": kind, "measure": measure, "origin": origin,
            "cohort": cohort, "time_months": t, "n": n, "mean": mean, "sd": sd, "events": events, "total": total,
            "unit": "points", "method": "change_sd_from_r" if origin == "derived" else "reported",
            "poolable": True, "not_poolable_reason": "", "raw_row_ids": "r1", "source": "test"}


def ev(study, t, e, n, arm=testing.INTERVENTION, outcome="death"):
    return row(study, "absolute", t, n, events=e, total=n, arm=arm, outcome=outcome, kind="binary")


# ---------------------------------------------------------------------------------------------------------
# closed-form intervals
# ---------------------------------------------------------------------------------------------------------
def test_newcombe_hybrid_score_interval_matches_the_published_example():
    # Newcombe 1998, Stat Med 17:873, Table II, method 10: 56/70 vs 48/80 -> 0.0524 to 0.3339
    lo, hi = intervals.newcombe_interval(56, 70, 48, 80)
    assert (round(lo, 4), round(hi, 4)) == (0.0524, 0.3339)
    # 0/10 vs 0/10: symmetric, each limit the Wilson upper limit of 0/10 = z^2 / (n + z^2)
    z2 = stats.norm.ppf(0.975) ** 2
    lo, hi = intervals.newcombe_interval(0, 10, 0, 10)
    assert hi == pytest.approx(z2 / (10 + z2)) and lo == pytest.approx(-hi)
    # never outside [-1, 1], unlike Wald
    lo, hi = intervals.newcombe_interval(10, 10, 0, 20)
    assert hi == pytest.approx(1.0) and 0.6 < lo < 0.7


def test_clopper_pearson_is_the_exact_beta_interval():
    lo, hi = intervals.clopper_pearson(1, 12)
    # exact: P(X >= 1 | p = lo) = 0.025 and P(X <= 1 | p = hi) = 0.025
    assert stats.binom.sf(0, 12, lo) == pytest.approx(0.025) and stats.binom.cdf(1, 12, hi) == pytest.approx(0.025)
    assert (round(lo, 4), round(hi, 4)) == (0.0021, 0.3848)
    assert intervals.clopper_pearson(0, 6)[0] == 0.0 and intervals.clopper_pearson(6, 6)[1] == 1.0


# ---------------------------------------------------------------------------------------------------------
# between-arm differences: both estimands
# ---------------------------------------------------------------------------------------------------------
def rct_table():
    """An RCT with both arms at 0 and 6 months and the change scores harmonisation derived (origin derived),
    plus a single-arm study."""
    return pd.DataFrame([
        row("rct", "absolute", 0, 12, 14.0, 4.0), row("rct", "absolute", 6, 12, 6.0, 3.0),
        row("rct", "change_from_baseline", 6, 12, -8.0, math.sqrt(16 + 9 - 2 * 0.5 * 12), origin="derived"),
        row("rct", "absolute", 0, 6, 13.0, 4.0, arm="control"), row("rct", "absolute", 6, 6, 9.0, 5.0, arm="control"),
        row("rct", "change_from_baseline", 6, 6, -4.0, math.sqrt(16 + 25 - 2 * 0.5 * 20), arm="control",
            origin="derived"),
        row("sa", "absolute", 0, 15, 12.0, 4.0), row("sa", "absolute", 6, 15, 7.0, 4.0),
    ])


def test_between_arm_reports_follow_up_means_and_change_scores_with_t_intervals():
    md = MD.build_model_data(rct_table(), "score", ["rct", "sa"], SPEC_ID, ARMS)
    ba = md.between_arm[md.between_arm["visit_months"] == 6.0].set_index("estimand")
    assert set(ba.index) == {"follow-up means", "change scores"}
    fu = ba.loc["follow-up means"]
    se = math.sqrt(9 / 12 + 25 / 6)
    assert fu["estimate"] == pytest.approx(6.0 - 9.0) and fu["se"] == pytest.approx(se)
    assert fu["lower"] == pytest.approx(-3.0 - stats.t.ppf(0.975, 12 + 6 - 2) * se)   # t, n1 + n2 - 2 df
    assert bool(fu["primary"])                                   # the configured default: follow-up means
    cs = ba.loc["change scores"]
    se_c = math.sqrt((16 + 9 - 12) / 12 + (16 + 25 - 20) / 6)
    assert cs["estimate"] == pytest.approx(-8.0 - (-4.0)) and cs["se"] == pytest.approx(se_c)
    assert not bool(cs["primary"]) and "within-person r" in cs["method"]
    # baseline difference at visit 0: reported, never primary
    base = md.between_arm[md.between_arm["visit_months"] == 0.0].iloc[0]
    assert base["estimand"] == "baseline means" and not bool(base["primary"])
    # derived rows still never enter the likelihood
    assert set(md.obs["measure"]) == {"absolute"} and len(md.obs) == 4
    # the config key switches the primary estimand
    md2 = MD.build_model_data(rct_table(), "score", ["rct", "sa"], SPEC_ID,
                              {**ARMS, "between_arm_estimand": "change_scores"})
    b2 = md2.between_arm[md2.between_arm["visit_months"] == 6.0].set_index("estimand")
    assert bool(b2.loc["change scores", "primary"]) and not bool(b2.loc["follow-up means", "primary"])
    with pytest.raises(ValueError, match="between_arm_estimand"):
        MD.build_model_data(rct_table(), "score", ["rct", "sa"], SPEC_ID, {**ARMS, "between_arm_estimand": "both"})


def test_primary_falls_back_to_the_estimand_that_is_reported():
    tab = pd.DataFrame([row("rct", "change_from_baseline", 6, 12, -8.0, 4.0),
                        row("rct", "change_from_baseline", 6, 6, -5.0, 8.0, arm="control")])
    ba = MD.build_model_data(tab, "score", ["rct"], SPEC_ID, ARMS).between_arm
    assert list(ba["estimand"]) == ["change scores"] and bool(ba["primary"].iloc[0])
    assert "primary because follow-up means are not reported" in ba["method"].iloc[0]


def test_single_study_summary_rows_control_arm_and_log_scale_t_intervals():
    """Deng-like: an RCT reporting follow-up means and change scores at 6 months on a log-scale outcome, no
    baseline row: no model; the study's own change, the control arm's own change and both between-arm
    estimands, all with t intervals (also the _percent rows, on the log scale)."""
    tab = pd.DataFrame([
        row("deng2017", "absolute", 6, 12, 1.0, 1.0), row("deng2017", "change_from_baseline", 6, 12, -2.1, 1.8),
        row("deng2017", "absolute", 6, 6, 3.1, 2.7, arm="control"),
        row("deng2017", "change_from_baseline", 6, 6, -1.4, 1.1, arm="control")])
    md = MD.build_model_data(tab, "score", ["deng2017"], SPEC_LOG, ARMS)
    idata = fit.fit_outcome(md, {"sampling": QUIET}, seed=1)
    assert "posterior" not in idata.groups()
    s = summary.summarise(idata, md, ARMS)
    assert s["evidence"].isin(evidence.Evidence.ALL).all()
    # the MSCT arm's own change: log(m_f / m_b), m_b = 1.0 + 2.1, SD 1.8 / sqrt(m_f m_b), t with 11 df
    own = s[s["quantity"] == "delta"].iloc[0]
    y, se = math.log(1.0 / 3.1), 1.8 / math.sqrt(1.0 * 3.1) / math.sqrt(12)
    assert own["median"] == pytest.approx(y) and own["upper"] == pytest.approx(y + stats.t.ppf(0.975, 11) * se)
    assert own["evidence"] == "study_estimate" and own["label"] == "study's own estimate (Deng 2017, 12 patients)"
    obs = s[s["quantity"] == "study_observed"].iloc[0]
    assert obs["lower"] == pytest.approx(own["lower"])
    # the control arm's own change, same form: log(3.1 / 4.5), t with 5 df
    ctl = s[s["quantity"] == "control_observed"].iloc[0]
    yc, sec = math.log(3.1 / 4.5), 1.1 / math.sqrt(3.1 * 4.5) / math.sqrt(6)
    assert ctl["median"] == pytest.approx(yc) and ctl["lower"] == pytest.approx(yc - stats.t.ppf(0.975, 5) * sec)
    assert ctl["evidence"] == "study_estimate" and ctl["label"].startswith("control arm: study's own estimate")
    # between-arm rows: both estimands, primary marked, percent rows back-transformed from the t interval
    ba = s[s["quantity"] == "between_arm_difference"].set_index("estimand")
    assert set(ba.index) == {"follow-up means", "change scores"}
    assert ba["primary"].tolist().count(True) == 1 and bool(ba.loc["follow-up means", "primary"])
    se_fu = math.sqrt((1.0 / 1.0) ** 2 / 12 + (2.7 / 3.1) ** 2 / 6)
    hi = math.log(1.0 / 3.1) + stats.t.ppf(0.975, 16) * se_fu
    assert ba.loc["follow-up means", "upper"] == pytest.approx(hi)
    pc = s[(s["quantity"] == "between_arm_difference_percent") & (s["estimand"] == "follow-up means")].iloc[0]
    assert pc["upper"] == pytest.approx(100 * math.expm1(hi)) and pc["evidence"] == "between_arm"
    assert (s.loc[s["quantity"].str.startswith("between_arm"), "evidence"] == "between_arm").all()


# ---------------------------------------------------------------------------------------------------------
# binary outcomes: follow-up durations, study's own numbers, rare-event priors
# ---------------------------------------------------------------------------------------------------------
def test_binary_duration_joins_a_grid_visit_only_within_the_tolerance():
    grid = [0, 1, 3, 6, 9, 12]
    assert binary_data.binary_duration(11.8, grid, 0.5) == 12.0
    assert binary_data.binary_duration(5.54, grid, 0.5) == 6.0
    assert binary_data.binary_duration(48.0, grid, 0.5) == 48.0       # not snapped to 12
    assert binary_data.binary_duration(10.5, grid, 0.5) == 10.5       # 1.5 from 9 and 12: its own duration
    assert binary_data.binary_duration(10.5, grid, 2.0) == 9.0
    assert math.isnan(binary_data.binary_duration(float("nan"), grid, 0.5))


def test_binary_durations_are_never_pooled_together_and_long_term_data_keep_their_duration():
    tab = pd.DataFrame([ev("wang2013", 12, 10, 83), ev("wang2013", 48, 1, 6), ev("wang2018", 60, 9, 37),
                        ev("liang2010", 12, 2, 15), ev("wang2013", np.nan, 20, 87), ev("li2016", np.nan, 3, 20)])
    md = MD.build_model_data(tab, "death", ["wang2013", "wang2018", "liang2010", "li2016"], SPEC_BIN, ARMS)
    assert md.status == "pooled" and list(md.visits) == [12.0]
    assert set(md.obs["study_id"]) == {"wang2013", "liang2010"} and set(md.obs["bin_months"]) == {12.0}
    own = md.study_rows[~md.study_rows["pooled"]]
    assert sorted(own["bin_months"].dropna()) == [48.0, 60.0]
    assert own["bin_months"].isna().sum() == 2       # unknown durations: never pooled with each other
    s = summary.summarise(posterior.bookkeeping_idata(md, ARMS, "test"), md, ARMS)   # closed-form rows need no posterior
    at48 = s[(s["quantity"] == "proportion") & (s["visit_months"] == 48.0)].iloc[0]
    assert at48["median"] == pytest.approx(1 / 6) and at48["evidence"] == "study_estimate"
    assert (at48["lower"], at48["upper"]) == pytest.approx(intervals.clopper_pearson(1, 6))
    assert at48["label"] == "study's own estimate (Wang 2013, 6 patients)"
    assert not ((s["quantity"] == "proportion") & (s["visit_months"] == 12.0) & (s["evidence"] == "study_estimate")).any()


def test_single_study_binary_is_the_studys_own_proportion_with_an_exact_interval(tmp_path):
    tab = pd.DataFrame([ev("deng2017", 6, 1, 12), ev("deng2017", 6, 0, 6, arm="control")])
    md = MD.build_model_data(tab, "death", ["deng2017"], SPEC_BIN, ARMS)
    assert md.status == "single_study"
    idata = fit.fit_outcome(md, {"sampling": QUIET}, seed=1)
    assert "posterior" not in idata.groups()                  # no model: the 50%-centred prior cannot act
    s = summary.summarise(idata, md, ARMS)
    p = s[s["quantity"] == "proportion"].iloc[0]
    assert p["median"] == pytest.approx(1 / 12) and (p["lower"], p["upper"]) == pytest.approx(intervals.clopper_pearson(1, 12))
    assert p["evidence"] == "study_estimate" and p["label"] == "study's own estimate (Deng 2017, 12 patients)"
    rd = s[s["quantity"] == "between_arm_difference"].iloc[0]
    assert rd["median"] == pytest.approx(1 / 12) and rd["estimand"] == "risk difference" and bool(rd["primary"])
    assert (rd["lower"], rd["upper"]) == pytest.approx(intervals.newcombe_interval(1, 12, 0, 6))
    ctl = s[s["quantity"] == "control_observed"].iloc[0]
    assert ctl["median"] == 0.0 and ctl["upper"] == pytest.approx(intervals.clopper_pearson(0, 6)[1])
    # the diagnostics table says so, never "passed"
    table, failures = diagnostics.diagnostics_table(idata, None, "death", "review_2023")
    assert not failures and set(table["gate"]) == {"not sampled (study's own estimate)"}


def test_rare_event_prior_predictive_and_posterior_of_two_small_studies():
    tab = pd.DataFrame([ev("a", 6, 1, 12), ev("b", 6, 1, 15)])
    md = MD.build_model_data(tab, "death", ["a", "b"], SPEC_BIN, ARMS)
    assert md.status == "pooled"
    import pymc as pm
    with build.build_model(md, ARMS):
        prior = pm.sample_prior_predictive(draws=4000, random_seed=3)
    p = prior.prior["p_bin"].values.ravel()
    # the implied prior on the typical proportion is not concentrated near 50% ...
    assert np.mean((p > 0.4) & (p < 0.6)) < 0.25
    # ... and puts reasonable mass on rare (and near-certain) events
    assert 0.04 < np.mean(p < 0.05) < 0.15 and 0.04 < np.mean(p > 0.95) < 0.15
    tau = prior.prior["tau"].values.ravel()
    assert np.quantile(tau, 0.95) == pytest.approx(stats.halfnorm.ppf(0.95, scale=0.5), rel=0.1)
    # posterior of 1/12 + 1/15: near the observed pooled rate 2/27, not pulled towards 50%
    s = summary.summarise(fit.fit_outcome(md, {"sampling": {**QUIET, "draws": 500}}, seed=2), md, ARMS)
    pooled = s[(s["quantity"] == "proportion") & s["study_id"].isna()].iloc[0]
    assert 0.04 < pooled["median"] < 0.12 and pooled["upper"] < 0.35
    assert pooled["evidence"] in ("pooled", "prior_dominated") and pooled["n_studies"] == 2


# ---------------------------------------------------------------------------------------------------------
# evidence vocabulary, time-course rule, log-scale creatinine
# ---------------------------------------------------------------------------------------------------------
def test_prior_dominated_rule():
    assert evidence.prior_dominated(-1.0, 1.0, -1.0, 1.1)[0]          # 95% of the prior's width
    dominated, ratio = evidence.prior_dominated(-0.5, 0.5, -2.0, 2.0)
    assert not dominated and ratio == pytest.approx(0.25)
    ev_, lab = evidence.with_prior_check("pooled", "pooled at 6 months", 0.0, 0.95, 0.0, 1.0)
    assert ev_ == "prior_dominated" and lab.startswith("prior-dominated: the 95% interval is 95% as wide")
    assert set(evidence.Evidence.ALL) == {"study_estimate", "pooled", "interpolated", "prior_dominated", "median_only",
                                    "between_arm", "shrunken_study", "not_estimable"}


def cmp_table(elpd, dse, converged=(True, True, True)):
    names = ["random_walk", "piecewise_linear", "emax"]
    best = max(elpd)
    return pd.DataFrame({"time_course": names, "elpd_loo": elpd, "elpd_diff": [best - e for e in elpd],
                         "dse": dse, "converged": list(converged)})


def test_time_course_rule_switches_only_beyond_two_standard_errors():
    # the configured random walk is best: kept
    assert compare.choose_time_course(cmp_table([-10, -12, -13], [0, 1, 1]), "random_walk")[0] == "random_walk"
    # emax better by 5 with SE of the difference 2 (5 > 4): emax reported
    tc, note = compare.choose_time_course(cmp_table([-15, -14, -10], [2, 1, 0]), "random_walk")
    assert tc == "emax" and "2 x SE" in note
    # better by 3 with SE 2 (3 < 4): the configured one is kept
    tc, note = compare.choose_time_course(cmp_table([-13, -14, -10], [2, 1, 0]), "random_walk")
    assert tc == "random_walk" and "within 2 x SE" in note
    # an unconverged winner is not used
    tc, note = compare.choose_time_course(cmp_table([-15, -14, -10], [2, 1, 0], (True, True, False)), "random_walk")
    assert tc == "random_walk" and "did not converge" in note
    assert compare.choose_time_course(cmp_table([-15, -14, -10], [2, 1, 0]), "random_walk", "fixed")[0] == "random_walk"
    # a clear difference resting on unreliable PSIS-LOO estimates (Pareto k > 0.7) does not switch either
    flagged = cmp_table([-15, -14, -10], [2, 1, 0]).assign(warning=[False, False, True])
    tc, note = compare.choose_time_course(flagged, "random_walk")
    assert tc == "random_walk" and "Pareto k" in note
    assert compare.choose_time_course(flagged.assign(warning=False), "random_walk")[0] == "emax"
    with pytest.raises(ValueError, match="time_course_rule"):
        compare.choose_time_course(cmp_table([-15, -14, -10], [2, 1, 0]), "random_walk", "best")


def test_time_course_comparison_fits_each_shape_once_and_reports_the_choice(monkeypatch):
    tab, dic = testing.example_analysis_table(), testing.example_outcome_dictionary()
    settings = {**ARMS, "sampling": QUIET, "compare_time_courses": True, "time_course_rule": "loo"}
    md = MD.build_model_data(tab, "symptom_score", ["rct_a", "sa_b", "sa_c", "sa_d"], dic["symptom_score"], settings)
    calls = []
    real = sample.fit_time_course

    def counting(md_, settings_, seed_, tc=None, **kw):
        calls.append(tc)
        return real(md_, settings_, seed_, tc, **kw)

    monkeypatch.setattr(fit, "fit_time_course", counting)
    monkeypatch.setattr(compare, "fit_time_course", counting)
    idata = fit.fit_outcome(md, settings, seed=4)
    assert sorted(calls) == sorted(build.TIME_COURSES)               # no shape fitted twice
    table = pd.read_json(__import__("io").StringIO(idata.constant_data.attrs["loo_comparison_json"]))
    expected, _ = compare.choose_time_course(table, "random_walk", "loo")
    s = summary.summarise(idata, md, settings)
    assert set(s.loc[s["quantity"] == "delta", "time_course"]) == {expected}
    choice = s[s["quantity"] == "time_course_choice"].iloc[0]
    assert choice["time_course"] == expected and "time_course_rule: loo" in choice["note"]
    assert len(s[s["quantity"] == "elpd_loo"]) == 3


def test_creatinine_in_umol_per_litre_on_the_log_scale():
    spec = dictionary.load(ROOT / "data" / "review" / "outcomes.yaml")["serum_creatinine"].as_spec()   # shipped
    tab = pd.DataFrame([row("a", "absolute", 0, 10, 120.0, 40.0, outcome="serum_creatinine"),
                        row("a", "absolute", 6, 10, 90.0, 30.0, outcome="serum_creatinine"),
                        row("b", "absolute", 0, 8, 200.0, 80.0, outcome="serum_creatinine"),
                        row("b", "change_from_baseline", 6, 8, -50.0, 40.0, outcome="serum_creatinine")])
    md = MD.build_model_data(tab, "serum_creatinine", ["a", "b"], spec, ARMS)
    a = md.obs[md.obs["study_id"] == "a"].set_index("time_months")
    assert a.loc[0.0, "y"] == pytest.approx(math.log(120.0)) and a.loc[0.0, "s"] == pytest.approx(40.0 / 120.0)
    b = md.obs[(md.obs["study_id"] == "b") & (md.obs["measure"] == "change")].iloc[0]
    assert b["y"] == pytest.approx(math.log(150.0 / 200.0))      # anchored by the baseline mean
    pri = priors.resolve_priors(md, ARMS)
    assert pri["delta_sd"] == 0.5
    assert pri["sources"]["delta_sd"] == "outcome dictionary (serum_creatinine.priors.log)"
    # an outcome without a log-scale entry in the dictionary falls back to the unit-free ratio defaults
    md.outcome, md.priors = "cystatin_c", {"identity": {"delta_sd": 50.0, "rationale": "identity scale only"}}
    pri = priors.resolve_priors(md, ARMS)
    assert pri["delta_sd"] == priors.RATIO_SCALE_DEFAULTS["delta_sd"] and "unit-free" in pri["sources"]["delta_sd"]
