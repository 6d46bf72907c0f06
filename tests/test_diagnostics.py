"""The convergence gate (timecourse_meta.model.diagnostics): (d) it fails on a deliberately unconverged fit, passes on
a converged one, writes its file before failing, and names outcome, failed checks and remedies."""
from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest

from timecourse_meta import testing
from timecourse_meta.model import build
from timecourse_meta.model import fit
from timecourse_meta.model import model_data as MD
from timecourse_meta.model import sample
from timecourse_meta.model.diagnostics import ConvergenceError, check_convergence, run_diagnostics

warnings.filterwarnings("ignore", category=UserWarning)
warnings.filterwarnings("ignore", category=FutureWarning)

#: model settings naming the simulated tables' arms (the model reads the intervention arm from them)
ARMS = {"arms": testing.ARMS}

THRESHOLDS = {"max_rhat": 1.01, "min_ess_bulk": 400, "min_ess_tail": 400, "max_divergences": 0, "min_bfmi": 0.3}
SPEC = {"label": "Score", "kind": "continuous", "canonical_unit": "points", "direction_of_benefit": "decrease",
        "analysis_scale": "identity"}


def _synthetic_idata(stuck: bool, seed: int = 0) -> az.InferenceData:
    rng = np.random.default_rng(seed)
    nc, nd = 4, 1000
    offsets = np.array([0.0, 0.0, 3.0, -3.0])[:, None] if stuck else 0.0
    mu = rng.normal(size=(nc, nd)) + offsets
    tau = np.abs(rng.normal(size=(nc, nd)))
    const = np.zeros((nc, nd))                      # a fixed element: skipped, not failed
    energy = np.cumsum(rng.normal(size=(nc, nd)), axis=1) if stuck else rng.normal(size=(nc, nd))
    diverging = np.zeros((nc, nd), dtype=bool)
    if stuck:
        diverging[1, :7] = True
    return az.from_dict(posterior={"mu": mu, "tau": tau, "fixed": const},
                        sample_stats={"diverging": diverging, "energy": energy})


def test_gate_passes_a_clean_synthetic_posterior():
    table = check_convergence(_synthetic_idata(stuck=False), THRESHOLDS, "sledai", "review_2023")
    assert table["passed"].all()
    assert "fixed" not in set(table["parameter"])          # constant elements are not diagnosed
    assert set(table["gate"]) == {"passed"}


def test_gate_column_says_failed_or_not_sampled():
    from timecourse_meta.model.diagnostics import diagnostics_table
    table, failures = diagnostics_table(_synthetic_idata(stuck=True), THRESHOLDS, "sledai", "review_2023")
    assert failures and set(table["gate"]) == {"failed"}
    # outcomes reported as a study's own estimate, or without data, have no model: never "passed"
    for status, gate in (("study_estimate", "not sampled (study's own estimate)"), ("no_data", "not sampled (no data)")):
        idata = az.InferenceData(constant_data=__import__("xarray").Dataset({"n_listed_rows": ((), 0)},
                                                                           attrs={"fit_status": status}))
        table, failures = diagnostics_table(idata, THRESHOLDS, "death", "review_2023")
        assert not failures and list(table["gate"]) == [gate]


def test_gate_message_names_outcome_checks_values_and_remedies():
    with pytest.raises(ConvergenceError) as err:
        check_convergence(_synthetic_idata(stuck=True), THRESHOLDS, "proteinuria_24h", "all_candidates")
    msg = str(err.value)
    assert "proteinuria_24h" in msg and "all_candidates" in msg
    assert "R-hat: max" in msg and "mu" in msg
    assert "divergences: 7 of 4000" in msg
    assert "E-BFMI" in msg
    assert "target_accept" in msg and "tau_scale" in msg and "draws" in msg
    assert isinstance(err.value, RuntimeError)


def test_run_diagnostics_writes_the_file_before_failing(tmp_path):
    path = tmp_path / "idata.nc"
    _synthetic_idata(stuck=True).to_netcdf(path)
    out = tmp_path / "diag" / "sledai.csv"
    with pytest.raises(ConvergenceError):
        run_diagnostics(str(path), THRESHOLDS, "sledai", "review_2023", str(out))
    table = pd.read_csv(out)
    assert not table["passed"].all()
    assert {"rhat", "divergences"} <= set(";".join(table["failed_checks"].fillna("")).split(";"))
    # an outcome with nothing to model passes with a status row
    md = MD.build_model_data(pd.DataFrame(columns=["analysis_id", "study_id", "arm", "outcome", "measure",
                                                   "time_months", "n", "mean", "sd", "poolable"]),
                             "c3", ["a"], SPEC, ARMS)
    idata = fit.fit_outcome(md, ARMS, seed=1)
    p2 = tmp_path / "empty.nc"
    fit.write_idata(idata, str(p2))
    t2 = run_diagnostics(str(p2), THRESHOLDS, "c3", "review_2023", str(tmp_path / "c3.csv"))
    assert t2["passed"].all() and t2["kind"].tolist() == ["status"]


@pytest.fixture(scope="module")
def small_model():
    tab = pd.DataFrame([
        {"analysis_id": f"r{i}", "study_id": f"s{i}", "arm": testing.INTERVENTION, "outcome": "sledai", "kind": "continuous",
         "measure": "change_from_baseline", "origin": "reported", "cohort": "all", "time_months": 6, "n": n,
         "mean": d, "sd": sd, "poolable": True}
        for i, (d, sd, n) in enumerate([(-4, 4, 20), (-6, 5, 15), (-2.5, 3.5, 30), (-7, 6, 12)])])
    settings = {**ARMS, "priors": {"sledai": {"delta_sd": 10.0, "tau_scale": 4.0}}, "compare_time_courses": False,
                "sampling": {"progress_bar": False}}
    md = MD.build_model_data(tab, "sledai", ["s0", "s1", "s2", "s3"], SPEC, settings)
    model = build.build_model(md, settings)
    return md, settings, model, sample.compile_model(model, settings)


def test_gate_fails_on_a_deliberately_unconverged_fit(small_model):
    md, settings, model, compiled = small_model
    bad = {**settings, "sampling": {"progress_bar": False, "chains": 4, "tune": 5, "draws": 30}}
    idata, _, _ = sample.fit_time_course(md, bad, seed=3, compiled=compiled, model=model)
    with pytest.raises(ConvergenceError) as err:
        check_convergence(idata, THRESHOLDS, "sledai", "review_2023")
    assert "bulk ESS" in str(err.value) and "sledai" in str(err.value)


def test_gate_passes_the_same_model_sampled_properly(small_model):
    md, settings, model, compiled = small_model
    good = {**settings, "sampling": {"progress_bar": False, "chains": 4, "tune": 1000, "draws": 1000}}
    idata, _, _ = sample.fit_time_course(md, good, seed=3, compiled=compiled, model=model)
    table = check_convergence(idata, THRESHOLDS, "sledai", "review_2023")
    par = table[table["kind"] == "parameter"]
    assert {"tau", "delta[6.0]"} <= set(par["parameter"])
    assert par["rhat"].max() <= 1.01 and par["ess_bulk"].min() >= 400
    assert table.loc[table["parameter"] == "divergences", "value"].iloc[0] == 0
