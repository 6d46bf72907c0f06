"""Every configured continuous outcome gets a clinically argued default prior, not a data-derived fallback."""

import pandas as pd
import pytest

from conftest import ROOT
from timecourse_meta.core import config
from timecourse_meta.data import dictionary
from timecourse_meta.model import models
from timecourse_meta.model.model_data import build_model_data

CFG = config.load(ROOT / "config.yaml")
OUTCOMES = dictionary.load(ROOT / "data" / "review" / "outcomes.yaml")


@pytest.mark.parametrize("outcome", [o for o in CFG["outcomes"] if OUTCOMES[o].kind == "continuous"])
def test_default_prior_matches_the_dictionary_unit(outcome):
    spec = OUTCOMES[outcome]
    table = pd.DataFrame([
        dict(analysis_id="h1", study_id="s1", arm="MSCT", outcome=outcome, kind="continuous",
             measure="absolute", origin="reported", cohort="all", time_months=0.0, n=10, mean=10.0, sd=2.0,
             unit=spec.canonical_unit, analysis_scale=spec.analysis_scale, poolable=True, method="reported"),
        dict(analysis_id="h2", study_id="s1", arm="MSCT", outcome=outcome, kind="continuous",
             measure="absolute", origin="reported", cohort="all", time_months=6.0, n=10, mean=8.0, sd=2.0,
             unit=spec.canonical_unit, analysis_scale=spec.analysis_scale, poolable=True, method="reported"),
    ])
    md = build_model_data(table, outcome, ["s1"], spec.as_spec(), {}, study_set="test")
    priors = models.resolve_priors(md, {})
    sources = priors.get("sources", priors.get("source", {}))
    assert any("DEFAULT_PRIORS" in str(v) for v in (sources.values() if isinstance(sources, dict) else [sources])), \
        (outcome, priors)
