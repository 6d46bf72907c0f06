"""Sensitivity refits (model.sensitivity, model.sensitivity_fit) and power-scaling prior sensitivity
(model.power_scaling) on small simulated data sets with known answers; short sampling (2 chains x 400 draws)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from timecourse_meta import testing
from timecourse_meta.model import posterior, power_scaling, sample
from timecourse_meta.model import sensitivity as sens
from timecourse_meta.model import sensitivity_fit as sfit
from timecourse_meta.model.model_data import build_model_data
from timecourse_meta.model.summary import SUMMARY_COLUMNS, summarise

warnings.filterwarnings("ignore", category=UserWarning)
warnings.filterwarnings("ignore", category=FutureWarning)

SPEC = {"label": "Test score", "kind": "continuous", "canonical_unit": "points", "direction_of_benefit": "decrease",
        "analysis_scale": "identity"}
PRIORS = {"delta_sd": 8.0, "tau_scale": 2.0, "step_sd": 4.0, "baseline_sd": 20.0}
SETTINGS = {"arms": testing.ARMS, "visit_grid_months": [0, 3, 6], "compare_time_courses": False,
            "time_course": "random_walk", "priors": {"sim_outcome": dict(PRIORS)},
            "sampling": {"chains": 2, "draws": 400, "tune": 400, "progress_bar": False, "seed": 1},
            "diagnostics": {"min_ess_bulk": 100, "min_ess_tail": 100, "max_divergences": 5, "max_rhat": 1.05}}
STUDY_IDS = ["s1", "s2", "s3", "s4", "s5"]
SEED = 7
#: one compilation per model structure for the whole file (a compilation costs ~20 s, a fit ~1 s)
MODELS = sfit.CompiledModels()


def design(n=40, sd=4.0):
    """Five studies, absolute means at 0, 3 and 6 months (a within-study correlation to estimate)."""
    return [{"study_id": s, "baseline": 12.0, "rows": [{"measure": "absolute", "time": t, "n": n, "sd": sd}
                                                       for t in (0, 3, 6)]} for s in STUDY_IDS]


def study_sheet(ids=STUDY_IDS) -> pd.DataFrame:
    return pd.DataFrame({"study_id": ids, "first_author": [f"Author{i} A" for i in range(len(ids))],
                         "year": [str(2010 + i) for i in range(len(ids))], "patient_group": ids,
                         "overlap": ["none"] * len(ids), "study_sets": ["all"] * len(ids)})


def simulated(delta, tau=0.3, seed=3, outlier: str | None = None, shift=0.0) -> pd.DataFrame:
    table = testing.simulate_table(design(), {"visits": [3, 6], "delta": delta, "tau": tau, "rho_within": 0.5,
                                              "rho_between": 0.7}, seed=seed)
    if outlier:
        at = (table["study_id"] == outlier) & (table["time_months"] > 0)
        table.loc[at, "mean"] += shift
    return table


def main_analysis(table, settings=SETTINGS) -> sens.MainAnalysis:
    """The MainAnalysis the variants change, with the model data the main fit is built from."""
    main = sens.MainAnalysis(rows=table, settings=settings, study_ids=list(STUDY_IDS), study_sheet=study_sheet(),
                             model_data=None, time_course="random_walk", spec=SPEC, correlations=[0.2, 0.8],
                             secondary_source_pattern="secondary source")
    kept = sens.select_rows(table, main, settings, STUDY_IDS)
    main.model_data = build_model_data(kept, "sim_outcome", STUDY_IDS, SPEC, settings, study_set="all")
    return main


def main_fit(table, settings=SETTINGS):
    """The main analysis fitted (as fit.fit_outcome without the comparison, sharing MODELS' compilation)."""
    main = main_analysis(table, settings)
    idata = sfit.fit_variant(main.model_data, settings, SEED, "random_walk", MODELS)
    return main, idata, summarise(idata, main.model_data, settings)


def delta_at(rows: pd.DataFrame, variant: str, visit=6.0) -> pd.Series:
    r = rows[(rows["variant"] == variant) & (rows["quantity"] == "delta") & (rows["visit_months"] == visit)]
    assert len(r) == 1, (variant, r)
    return r.iloc[0]


@pytest.fixture(scope="module")
def outlier_run():
    """s5 improves by 12 points more than the others (true pooled change -2 at 6 months); the main fit, five
    leave-one-out fits and two prior variants, with nutpie's compilations counted."""
    calls = []
    real = sample.compile_model
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sample, "compile_model", lambda model, settings=None: calls.append(1) or real(model, settings))
        table = simulated([-1.0, -2.0], outlier="s5", shift=-12.0)
        main, idata, summary = main_fit(table)
        variants = sens.expand_variants([{"kind": "leave_one_study_out"},
                                         {"kind": "heterogeneity_prior", "family": "half_normal",
                                          "scale_multiplier": 2.0},
                                         {"kind": "delta_prior_scale", "multiplier": 0.5}], main)
        rows = sfit.run_variants(main, summary, variants, SEED, SETTINGS["diagnostics"], MODELS)
    return rows, len(calls)


def test_leave_one_out_moves_only_without_the_outlier(outlier_run):
    rows, _ = outlier_run
    assert list(rows.columns) == sfit.VARIANT_COLUMNS + SUMMARY_COLUMNS
    main = delta_at(rows, "main")["median"]
    moves = {v: delta_at(rows, v)["median"] - main for v in (f"loo_{s}" for s in STUDY_IDS)}
    assert set(rows["variant_status"]) == {"fitted"}
    assert moves["loo_s5"] > 1.5                                  # without the outlier: much less improvement
    assert all(abs(moves[f"loo_{s}"]) < 0.5 * moves["loo_s5"] for s in STUDY_IDS[:4])
    assert delta_at(rows, "loo_s5")["n_studies_model"] == 4
    assert rows.loc[rows["variant"] == "loo_s5", "variant_label"].iloc[0] == "Without study Author4 2014"


def test_data_and_prior_variants_of_one_structure_compile_once(outlier_run):
    rows, compilations = outlier_run
    assert compilations == 1                  # main + 5 leave-one-out (4 or 5 studies) + 2 prior scales: one
    assert len(MODELS.compiled_keys) == 1
    # the prior scale reached the refit (a data change): the summary prints the scale each fit used
    notes = rows[rows["quantity"] == "tau"].set_index("variant")["note"]
    assert "scale 4" in notes["tau_half_normal_x2"] and "scale 2" in notes["main"]
    assert delta_at(rows, "delta_scale_x0.5")["prior_upper"] != delta_at(rows, "main")["prior_upper"]


def test_strong_consistent_effect_keeps_its_direction_in_every_variant():
    table = simulated([-6.0, -8.0], tau=0.3, seed=5)
    main, _, summary = main_fit(table)
    entries = [{"kind": "heterogeneity_prior", "family": "half_normal", "scale_multiplier": 0.5},
               {"kind": "delta_prior_scale", "multiplier": 0.5},
               {"kind": "within_correlation_prior", "alpha": 2.0, "beta": 6.0},
               {"kind": "leave_one_study_out"}]
    variants = sens.expand_variants(entries, main)
    rows = sfit.run_variants(main, summary, variants, SEED, SETTINGS["diagnostics"], MODELS)
    fitted = rows[rows["variant_status"] == "fitted"]
    assert set(fitted["variant"]) == {"main"} | {v.id for v in variants}
    for v in fitted["variant"].unique():
        d = delta_at(rows, v)
        assert d["median"] < 0 and d["p_improvement"] >= 0.95, v


def test_variants_without_anything_to_change_say_why():
    table = simulated([-3.0, -5.0], seed=2)
    main = main_analysis(table)
    summary = pd.DataFrame(columns=SUMMARY_COLUMNS)
    entries = [{"kind": "change_score_correlation"}, {"kind": "without_secondary_sources"},
               {"kind": "without_assumed_rows"}, {"kind": "report_rule", "rule": "one_report_per_group"},
               {"kind": "time_course", "time_course": "random_walk"}]
    rows = sfit.run_variants(main, summary, sens.expand_variants(entries, main), SEED, SETTINGS["diagnostics"])
    other = rows[rows["variant"] != "main"].set_index("variant")
    assert list(other.index) == ["change_r_0.2", "change_r_0.8", "without_secondary_sources",
                                 "without_assumed_rows", "reports_one_report_per_group", "time_course_random_walk"]
    assert set(other["variant_status"]) == {"same_as_main"}
    assert other["variant_note"].str.len().min() > 10
    assert "derived" in other.loc["change_r_0.2", "variant_note"]
    # an outcome with one study: one not_applicable row saying why, besides the main rows
    out = sfit.not_applicable_rows(summary, "sim_outcome", "all", "nothing pooled to vary (single_study)")
    last = out.iloc[-1]
    assert last["variant_status"] == "not_applicable" and "single_study" in last["variant_note"]


def test_secondary_rows_and_assumed_rows_are_dropped():
    table = simulated([-3.0, -5.0], seed=2)
    table.loc[table["study_id"] == "s2", "source"] = "table 1 of a review (secondary source)"
    table.loc[(table["study_id"] == "s3") & (table["time_months"] == 6), "assumption"] = "n imputed"
    main = main_analysis(table)
    no_secondary = sens.apply_variant(sens.expand_variants([{"kind": "without_secondary_sources"}], main)[0], main)
    assert "s2" not in set(no_secondary.rows["study_id"]) and len(no_secondary.rows) == len(table) - 3
    no_assumed = sens.apply_variant(sens.expand_variants([{"kind": "without_assumed_rows"}], main)[0], main)
    assert len(no_assumed.rows) == len(table) - 1


def test_change_score_correlation_rederives_the_sd():
    rows = pd.DataFrame([
        {"analysis_id": "h1", "study_id": "a", "arm": "treatment", "outcome": "o", "kind": "continuous",
         "measure": "absolute", "origin": "reported", "cohort": "all", "time_months": 0.0, "n": 10, "mean": 10.0,
         "sd": 3.0, "se": 3 / np.sqrt(10), "assumption": np.nan, "skewness_flag": False, "poolable": True,
         "raw_row_ids": "r1", "source": "x"},
        {"analysis_id": "h2", "study_id": "a", "arm": "treatment", "outcome": "o", "kind": "continuous",
         "measure": "absolute", "origin": "reported", "cohort": "all", "time_months": 6.0, "n": 10, "mean": 7.0,
         "sd": 4.0, "se": 4 / np.sqrt(10), "assumption": "", "skewness_flag": False, "poolable": True,
         "raw_row_ids": "r2", "source": "x"},
        {"analysis_id": "h3", "study_id": "a", "arm": "treatment", "outcome": "o", "kind": "continuous",
         "measure": "change_from_baseline", "origin": "derived", "cohort": "all", "time_months": 6.0, "n": 10,
         "mean": -3.0, "sd": np.sqrt(13.0), "se": np.sqrt(1.3), "assumption": "r = 0.5", "skewness_flag": False,
         "poolable": True, "raw_row_ids": "r1;r2", "source": "x;x"}])
    out = sens.rederive_change_scores(rows, 0.2)
    change = out[out["origin"] == "derived"].iloc[0]
    assert change["analysis_id"] == "h3" and change["mean"] == pytest.approx(-3.0)
    assert change["sd"] == pytest.approx(np.sqrt(9 + 16 - 2 * 0.2 * 12))      # Cochrane 6.5.2.8, by hand
    assert change["se"] == pytest.approx(change["sd"] / np.sqrt(10))


def test_power_scaling_flags_a_tight_conflicting_prior_and_not_the_default():
    table = simulated([-6.0, -8.0], tau=0.3, seed=5)
    default_main, default_idata, _ = main_fit(table)
    default = power_scaling.sensitivity_table(default_idata, default_main.model_data, SETTINGS, SEED)
    # the latent draws power-scaling scores are the fit's own (same seed): Delta from them is the stored Delta
    latent = posterior.draw_latent(default_idata, default_main.model_data, SETTINGS, SEED, "random_walk")
    np.testing.assert_allclose(np.einsum("dkp,dp->dk", latent.Hd, latent.theta),
                               posterior.flat_draws(default_idata, "delta"))
    tight_settings = {**SETTINGS, "priors": {"sim_outcome": {**PRIORS, "delta_sd": 0.5, "step_sd": 0.25}}}
    tight_main, tight_idata, _ = main_fit(table, tight_settings)
    tight = power_scaling.sensitivity_table(tight_idata, tight_main.model_data, tight_settings, SEED)
    assert list(tight.columns) == power_scaling.COLUMNS
    d_tight = tight[tight["parameter"] == "delta"].set_index("visit_months")
    d_default = default[default["parameter"] == "delta"].set_index("visit_months")
    assert (d_tight["diagnosis"] == power_scaling.CONFLICT).all()
    assert (d_default["diagnosis"] == "-").all()
    assert (d_tight["prior_sensitivity"] > 2 * d_default["prior_sensitivity"]).all()
    assert tight.loc[tight["parameter"] == "tau", "visit_months"].iloc[0] == ""
