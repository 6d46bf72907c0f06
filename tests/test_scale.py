"""The continuous model by study block: its log density equals the dense MvNormal's, the latent draws follow the
exact conditional, results of a small review are unchanged, and memory stays linear in the studies."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import arviz as az
import numpy as np
import pytest
from scipy import stats

from timecourse_meta import testing
from timecourse_meta.model import build, posterior
from timecourse_meta.model import model_data as MD

ROOT = Path(__file__).resolve().parents[1]
SPEC = {"kind": "continuous", "analysis_scale": "identity", "canonical_unit": "points",
        "direction_of_benefit": "decrease"}


def scale_design(n_studies: int, seed: int = 0) -> list[dict]:
    """Studies shaped like a published longitudinal meta-analysis: 4 follow-up visits, absolute means with a
    baseline (some with a second, smaller cohort), or change scores; unequal n."""
    rng = np.random.default_rng(seed)
    design = []
    for i in range(n_studies):
        n = int(rng.integers(10, 60))
        if i % 3 == 2:
            rows = [{"measure": "change_from_baseline", "time": t, "n": n, "sd": 4.0} for t in (1, 3, 6, 12)]
        else:
            rows = [{"measure": "absolute", "time": t, "n": n, "sd": 5.0} for t in (0, 1, 3, 6, 12)]
            if i % 5 == 0:
                rows += [{"measure": "absolute", "time": t, "n": n // 2, "sd": 5.0, "cohort": "sub"} for t in (0, 6)]
        design.append({"study_id": f"s{i:04d}", "baseline": 12.0, "rows": rows})
    return design


TRUTH = {"visits": [1, 3, 6, 12], "delta": [-2.0, -3.5, -4.5, -5.0], "tau": 1.0, "rho_within": 0.6,
         "rho_between": 0.5}
SETTINGS = {"arms": testing.ARMS, "visit_grid_months": [0, 1, 3, 6, 12], "compare_time_courses": False,
            "priors": {"sim_outcome": {"delta_sd": 5.0, "tau_scale": 2.0, "step_sd": 3.0, "baseline_sd": 20.0}}}


def model_data(n_studies: int, settings=SETTINGS):
    tab = testing.simulate_table(scale_design(n_studies), TRUTH, seed=3)
    return MD.build_model_data(tab, "sim_outcome", sorted(tab["study_id"].unique()), SPEC, settings)


def _constrained(point: dict) -> dict:
    out = {}
    for k, v in point.items():
        if k.endswith("_logodds__"):
            out[k[:-len("_logodds__")]] = 1 / (1 + np.exp(-v))
        elif k.endswith("_log__"):
            out[k[:-len("_log__")]] = np.exp(v)
    return out


@pytest.mark.parametrize("tc", ["random_walk", "piecewise_linear", "emax"])
def test_block_logp_equals_the_dense_mvnormal(tc):
    """46 studies x 4 visits (uneven blocks, cohorts, change rows): the model's likelihood term at random
    parameter points equals log N(y | m, V) with V written out densely (``posterior.marginal_moments``)."""
    md = model_data(46)
    assert len(build.structure_blocks(md, SETTINGS)) >= 1 and md.n_obs > 200
    model = build.build_model(md, SETTINGS, tc)
    loglik = model.compile_fn(model.logp(vars=model.observed_RVs), inputs=model.value_vars,
                              on_unused_input="ignore")
    rng = np.random.default_rng(1)
    y = md.obs["y"].to_numpy(float)
    for _ in range(4):
        point = {k: v + rng.normal(0, 0.7, np.shape(v)) for k, v in model.initial_point().items()}
        hyper = az.from_dict(posterior={k: np.full((1, 1), v) for k, v in _constrained(point).items()})
        m, V = posterior.marginal_moments(hyper, md, SETTINGS, tc)
        dense = stats.multivariate_normal(m, V[0]).logpdf(y)
        assert float(loglik(point)) == pytest.approx(dense, abs=1e-8, rel=0)


@pytest.mark.parametrize("outcome", ["symptom_score", "biomarker_24h"])
def test_small_data_dense_and_block_likelihoods_agree(outcome, monkeypatch):
    """Small data use the dense MvNormal (``DENSE_MAX_ROWS``); forced by block, the same log density."""
    tab, dic = testing.example_analysis_table(), testing.example_outcome_dictionary()
    settings = {"arms": testing.ARMS}
    md = MD.build_model_data(tab, outcome, ["rct_a", "sa_b", "sa_c", "sa_d"], dic[outcome], settings)
    dense = build.build_model(md, settings)
    monkeypatch.setattr(build, "DENSE_MAX_ROWS", 0)
    block = build.build_model(md, settings)
    assert "cov_scale" in dense.named_vars and "cov_scale_0" in block.named_vars
    f_dense, f_block = (m.compile_fn(m.logp(), inputs=m.value_vars, on_unused_input="ignore") for m in (dense, block))
    rng = np.random.default_rng(4)
    for _ in range(4):
        point = {k: v + rng.normal(0, 0.7, np.shape(v)) for k, v in dense.initial_point().items()}
        assert float(f_block(point)) == pytest.approx(float(f_dense(point)), abs=1e-8, rel=0)


@pytest.mark.parametrize("tc", ["random_walk", "emax"])
def test_a_prior_variant_of_a_block_model_is_a_data_change(tc):
    """By block (148 rows), other prior scales (delta_sd, step_sd, tau scale, baseline_sd) keep the structure
    key, and the model built with the main priors, given the variant's ``data_updates``, has the log density of
    the model built with the variant's priors (so one compilation serves both, as ``sensitivity_fit`` uses it)."""
    md = model_data(30)
    assert md.n_obs > build.DENSE_MAX_ROWS
    other = {**SETTINGS, "priors": {"sim_outcome": {"delta_sd": 2.0, "tau_scale": 0.5, "step_sd": 1.0,
                                                    "baseline_sd": 7.0}}}
    assert build.structure_key(md, SETTINGS, tc) == build.structure_key(md, other, tc)
    main, variant = build.build_model(md, SETTINGS, tc), build.build_model(md, other, tc)
    f_variant = variant.compile_fn(variant.logp(), inputs=variant.value_vars, on_unused_input="ignore")
    point = main.initial_point()
    before = float(main.compile_fn(main.logp(), inputs=main.value_vars, on_unused_input="ignore")(point))
    assert abs(before - float(f_variant(point))) > 1.0
    for name, value in build.data_updates(md, other, tc).items():
        main[name].set_value(value)
    f_main = main.compile_fn(main.logp(), inputs=main.value_vars, on_unused_input="ignore")
    assert float(f_main(point)) == pytest.approx(float(f_variant(point)), abs=1e-8, rel=0)


def test_block_structure_key_tells_layouts_apart():
    """Without a study the block layout differs (static shapes): another key; the dense path keeps one key."""
    md, fewer = model_data(30), model_data(29)
    assert build.structure_key(md, SETTINGS) != build.structure_key(fewer, SETTINGS)
    assert build.structure_key(model_data(5), SETTINGS) == build.structure_key(model_data(4), SETTINGS)


def test_pointwise_loo_density_equals_the_dense_formula():
    md = model_data(12)
    rng = np.random.default_rng(2)
    hyper = az.from_dict(posterior={"tau": rng.uniform(0.2, 2, (1, 5)), "rho_within": rng.uniform(0.1, 0.9, (1, 5)),
                                    "rho_between": rng.uniform(0.1, 0.9, (1, 5))})
    ll = posterior.pointwise_log_likelihood(hyper, md, SETTINGS, "random_walk")["y"].values[0]
    m, V = posterior.marginal_moments(hyper, md, SETTINGS, "random_walk")
    P = np.linalg.inv(V)
    c = np.einsum("dij,dj->di", P, md.obs["y"].to_numpy(float)[None] - m[None])
    g = np.diagonal(P, axis1=1, axis2=2)
    assert np.allclose(ll, -0.5 * np.log(2 * np.pi) + 0.5 * np.log(g) - 0.5 * c ** 2 / g, atol=1e-9, rtol=0)


def test_latent_draws_follow_the_exact_conditional():
    """At one fixed hyperparameter value, 20,000 block-wise draws of (theta, beta, u) have the mean and SD of
    the dense Gaussian conditional gamma | y (P W' V^-1 (y - W m) etc.), within 4.5 Monte Carlo SEs."""
    md = model_data(6)
    D = 20000
    hyper = az.from_dict(posterior={"tau": np.full((1, D), 1.2), "rho_within": np.full((1, D), 0.5),
                                    "rho_between": np.full((1, D), 0.6)})
    m_g, Pg, W, Sigma, Hd, p, B = posterior._latent_prior(
        az.from_dict(posterior={k: v.values[:, :1] for k, v in hyper.posterior.items()}), md, SETTINGS,
        "random_walk")
    V = Sigma[0] + W[0] @ Pg[0] @ W[0].T
    PWt = Pg[0] @ W[0].T
    y = md.obs["y"].to_numpy(float)
    mean = m_g + PWt @ np.linalg.solve(V, y - W[0] @ m_g)
    cov = Pg[0] - PWt @ np.linalg.solve(V, PWt.T)
    K, S = len(md.post_visits), len(md.studies)
    T = np.zeros((K + S * K, len(mean)))                 # gamma -> (delta, study_delta)
    T[:K, :p] = Hd[0]
    for i in range(S):
        T[K + i * K:K + (i + 1) * K, :p] = Hd[0]
        T[K + i * K:K + (i + 1) * K, p + B + i * K:p + B + (i + 1) * K] = np.eye(K)
    exact_mean, exact_sd = T @ mean, np.sqrt(np.diag(T @ cov @ T.T))
    posterior.add_latent_draws(hyper, md, SETTINGS, seed=5, tc="random_walk")
    draws = np.concatenate([posterior.flat_draws(hyper, "delta"),
                            posterior.flat_draws(hyper, "study_delta").reshape(D, -1)], axis=1)
    assert np.all(np.abs(draws.mean(0) - exact_mean) < 4.5 * exact_sd / np.sqrt(D))
    assert np.all(np.abs(draws.std(0) / exact_sd - 1) < 4.5 / np.sqrt(2 * D))
    base = posterior.flat_draws(hyper, "baseline")
    assert np.all(np.abs(base.mean(0) - mean[p:p + B]) < 4.5 * np.sqrt(np.diag(cov)[p:p + B] / D))


# numbers of the example symptom score (2 chains x 300 draws, seed 11) computed with the dense implementation
# before the model went block-wise: (quantity, visit, median, lower, upper)
EXPECTED_SUMMARY = json.loads((Path(__file__).parent / "fixtures" / "scale_expected_summary.json").read_text())


def test_summary_of_a_small_review_is_unchanged_and_the_backends_agree():
    """With the numba backend the fixture was made with, the hyperparameters' NUTS draws are the same up to
    rounding (the log density is the same), so tau and rho agree closely; the exactly drawn latent quantities
    use other random numbers, so Delta agrees within Monte Carlo error (a tenth of its interval width). The JAX
    backend (the default) computes the same log density with other rounding, so its chains part from numba's
    after a few hundred steps: every quantity agrees within Monte Carlo error (a fifth of the interval width
    for 600 draws), not draw for draw."""
    from timecourse_meta.model import fit, summary
    tab, dic = testing.example_analysis_table(), testing.example_outcome_dictionary()
    for backend in ("numba", "jax"):
        settings = {"arms": testing.ARMS, "compare_time_courses": False,
                    "sampling": {"backend": backend, "chains": 2, "draws": 300, "tune": 300, "progress_bar": False}}
        md = MD.build_model_data(tab, "symptom_score", ["rct_a", "sa_b", "sa_c", "sa_d"], dic["symptom_score"],
                                 settings)
        s = summary.summarise(fit.fit_outcome(md, settings, seed=11), md, settings)
        for quantity, visit, median, lower, upper in EXPECTED_SUMMARY:
            sel = s[s["quantity"] == quantity]
            row = sel.iloc[0] if visit is None else sel[np.isclose(sel["visit_months"], visit)].iloc[0]
            exact = backend == "numba" and quantity in ("tau", "rho_between", "rho_within")
            tol = (1e-4 if exact else 0.1 if backend == "numba" else 0.2) * (upper - lower)
            assert abs(row["median"] - median) <= tol, (backend, quantity, visit, row["median"], median)
            assert abs(row["upper"] - upper) <= max(tol, 0.15 * (upper - lower)), (backend, quantity, visit)


def largest_intermediate(model) -> int:
    """Elements of the largest array in the graph of the model's log density and its gradient (shapes
    evaluated at the initial point, so that data containers of unknown static shape count too)."""
    import pytensor
    from pytensor.graph.traversal import ancestors
    logp = model.logp()
    outputs = [logp, *pytensor.grad(logp, model.value_vars)]
    tensors = [v for v in ancestors(outputs) if getattr(v.type, "ndim", 0) >= 1]
    shapes = pytensor.function(model.value_vars, [v.shape for v in tensors], on_unused_input="ignore",
                               mode="FAST_COMPILE")(**model.initial_point())
    return max(int(np.prod(s)) for s in shapes)


def test_no_rows_by_rows_array_in_the_log_density():
    """The log density and its gradient for 100 studies hold no array with N^2 / 4 elements or more (the
    dense model's V had N^2)."""
    md = model_data(100)
    biggest = largest_intermediate(build.build_model(md, SETTINGS))
    assert biggest < md.n_obs ** 2 / 4, (biggest, md.n_obs)


MEMORY_SCRIPT = textwrap.dedent("""
    import resource, sys, json
    sys.path.insert(0, {tests!r})
    import test_scale as T
    from timecourse_meta.model import fit
    n = int(sys.argv[1])
    settings = {{**T.SETTINGS, "sampling": {{"chains": 2, "draws": 200, "tune": 200, "progress_bar": False}}}}
    md = T.model_data(n, settings)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    idata = fit.fit_outcome(md, settings, seed=1)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({{"rows": md.n_obs, "before_kb": before, "after_kb": after}}))
""")


@pytest.mark.slow
def test_fit_of_100_studies_stays_under_2_gb():
    """A fit of ~100 studies x 4 visits (short sampling) in a subprocess: peak RSS grows by < 2 GB (the dense
    draws x N x N arrays of 4000 draws would need 4000 * 500^2 * 8 B = 8 GB each)."""
    script = MEMORY_SCRIPT.format(tests=str(Path(__file__).parent))
    out = subprocess.run([sys.executable, "-c", script, "100"], capture_output=True, text=True, check=True,
                         cwd=ROOT, timeout=1200)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["rows"] > 450
    assert (res["after_kb"] - res["before_kb"]) / 1024 ** 2 < 2.0, res
