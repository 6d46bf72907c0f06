"""Priors are review data: every configured continuous outcome of the shipped review gets its clinically argued
prior from the outcome dictionary (with a rationale), the numbers are the ones the review has always used, and a
bad priors entry is an error naming the file, outcome and key."""

import pandas as pd
import pytest

from conftest import ROOT
from timecourse_meta import testing
from timecourse_meta.core import config
from timecourse_meta.data import dictionary
from timecourse_meta.model import priors
from timecourse_meta.model.model_data import build_model_data

CFG = config.load(ROOT / "config.yaml")
DICTIONARY = ROOT / "data" / "review" / "outcomes.yaml"
OUTCOMES = dictionary.load(DICTIONARY)
ARMS = {"arms": testing.ARMS}

# The shipped review's prior scales (delta_sd, tau_scale, step_sd, baseline_sd) on each outcome's own analysis
# scale: the values of the review's methods, unchanged since they moved from the package into the dictionary.
SHIPPED = {
    "proteinuria_24h": (1.0, 0.5, 0.5, 2.0), "gfr": (20.0, 10.0, 10.0, 50.0),
    "serum_creatinine": (0.5, 0.25, 0.25, 2.0), "creatinine_clearance": (20.0, 10.0, 10.0, 50.0),
    "sledai": (10.0, 4.0, 5.0, 15.0), "anti_dsdna": (1.0, 0.5, 0.5, 3.0), "c3": (40.0, 20.0, 20.0, 100.0),
    "c4": (10.0, 5.0, 5.0, 30.0), "serum_albumin": (10.0, 4.0, 5.0, 20.0), "renal_bilag": (6.0, 3.0, 3.0, 10.0),
}


def _model_data(outcome, spec):
    table = pd.DataFrame([
        dict(analysis_id=f"h{k}", study_id="s1", arm=testing.INTERVENTION, outcome=outcome, kind="continuous",
             measure="absolute", origin="reported", cohort="all", time_months=t, n=10, mean=m, sd=2.0,
             unit=spec.canonical_unit, analysis_scale=spec.analysis_scale, poolable=True, method="reported")
        for k, (t, m) in enumerate(((0.0, 10.0), (6.0, 8.0)))])
    return build_model_data(table, outcome, ["s1"], spec.as_spec(), ARMS, study_set="test")


@pytest.mark.parametrize("outcome", [o for o in CFG["outcomes"] if OUTCOMES[o].kind == "continuous"])
def test_default_prior_comes_from_the_dictionary_with_the_shipped_numbers(outcome):
    spec = OUTCOMES[outcome]
    resolved = priors.resolve_priors(_model_data(outcome, spec), ARMS)
    keys = ("delta_sd", "tau_scale", "step_sd", "baseline_sd")
    assert tuple(resolved[k] for k in keys) == SHIPPED[outcome]
    assert set(resolved["sources"].values()) == {f"outcome dictionary ({outcome}.priors.{spec.analysis_scale})"}
    assert spec.priors[spec.analysis_scale]["rationale"].strip()


def test_binary_outcomes_without_dictionary_priors_take_the_generic_rule():
    spec = OUTCOMES["renal_remission"]
    md = build_model_data(pd.DataFrame(columns=["outcome", "study_id", "arm", "time_months"]), "renal_remission",
                          [], spec.as_spec(), ARMS)
    resolved = priors.resolve_priors(md, ARMS)
    assert (resolved["mu_sd"], resolved["tau_scale"]) == (2.0, 0.5)
    assert set(resolved["sources"].values()) == {"DEFAULT_BINARY_PRIOR"}
    # a priors entry of the dictionary replaces the generic rule; config replaces single keys of both
    md.priors = {"logit": {"mu_sd": 1.5, "rationale": "common events"}}
    resolved = priors.resolve_priors(md, {**ARMS, "priors": {"renal_remission": {"tau_scale": 0.3}}})
    assert (resolved["mu_sd"], resolved["tau_scale"]) == (1.5, 0.3)
    assert resolved["sources"] == {"mu_sd": "outcome dictionary (renal_remission.priors.logit)",
                                   "tau_scale": "config (outcome)"}


def _dictionary_with(tmp_path, entry_lines: str):
    path = tmp_path / "outcomes.yaml"
    path.write_text("outcomes:\n  pain:\n    label: Pain\n    kind: continuous\n    canonical_unit: points\n"
                    "    units: {points: 1.0}\n    direction_of_benefit: decrease\n    analysis_scale: identity\n"
                    + entry_lines, encoding="utf-8")
    return path


def test_priors_of_the_dictionary_are_checked_with_file_outcome_and_key(tmp_path):
    ok = dictionary.load(_dictionary_with(tmp_path, "    priors:\n      identity: {delta_sd: 3, rationale: why}\n"))
    assert ok["pain"].as_spec()["priors"] == {"identity": {"delta_sd": 3, "rationale": "why"}}
    cases = {
        "    priors:\n      identity: {delta_sd: 3}\n": "key 'outcomes.pain.priors.identity'",      # no rationale
        "    priors:\n      identity: {delta_sd: -1, rationale: x}\n": "outcomes.pain.priors.identity.delta_sd",
        "    priors:\n      sqrt: {delta_sd: 1, rationale: x}\n": "outcomes.pain.priors",            # unknown scale
        "    priors:\n      identity: {delta_sd: 1, mu_sd: 1, rationale: x}\n":
            "outcome 'pain': key 'priors.identity.mu_sd': not read for a continuous outcome",
        "    prior: {}\n": "unknown key 'outcomes.pain.prior'",
    }
    for lines, expected in cases.items():
        with pytest.raises(dictionary.DictionaryError) as err:
            dictionary.load(_dictionary_with(tmp_path, lines))
        assert str(tmp_path / "outcomes.yaml") in str(err.value) and expected in str(err.value), str(err.value)
