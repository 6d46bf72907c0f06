"""A second review, run by config alone: the whole workflow, manuscript included, on tests/examples/second_review.

The review (exercise therapy vs usual care for knee osteoarthritis, simulated data) shares nothing with the shipped
one but the engine. Its folder is copied to a temporary directory and run with the repository's Snakefile
(`snakemake -s Snakefile --directory <copy>`), as a review team would run the engine on their own files. One run
serves every test marked slow (56 jobs; about 6 minutes on 2 cores shared with other work, most of it compiling
the six models); `-m "not slow"` leaves them out and keeps the checks of the example's own files.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT

EXAMPLE = ROOT / "tests" / "examples" / "second_review"
SHIPPED_TERMS = re.compile(r"msct|lupus|nephritis|sledai", re.IGNORECASE)
TEXT_OUTPUTS = {".csv", ".md", ".yml", ".yaml", ".json", ".html", ".svg", ".txt", ".tsv", ".log", ".bib"}
EMBEDDED = re.compile(r"data:[a-z]+/[a-z+.-]+;base64,[A-Za-z0-9+/=\s]+")  # images inside HTML/SVG: not text


def _simulation():
    spec = importlib.util.spec_from_file_location("second_review_simulate", EXAMPLE / "simulate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SIM = _simulation()


@pytest.fixture(scope="module")
def run(second_review_run):
    """The second review's folder after a complete run of the workflow (conftest.second_review_run)."""
    return second_review_run


def summary(project: Path, study_set: str, outcome: str) -> pd.DataFrame:
    return pd.read_csv(project / "results" / "models" / study_set / outcome / "summary.csv")


def pooled(project: Path, study_set: str, outcome: str, quantity: str, visit: float) -> pd.Series:
    s = summary(project, study_set, outcome)
    rows = s[(s["quantity"] == quantity) & (s["visit_months"] == visit) & s["study_id"].isna()]
    assert len(rows) == 1, f"{outcome} {quantity} at {visit} months: {len(rows)} rows in {study_set}"
    return rows.iloc[0]


def test_simulated_sheet_is_what_the_simulation_writes():
    """The outcomes sheet is regenerated exactly from simulate.py's seed and TRUTH, so the truths below hold."""
    assert (EXAMPLE / "data" / "raw" / "outcomes.csv").read_text(encoding="utf-8") == SIM.outcomes_csv()


def test_every_source_cell_says_the_data_are_synthetic():
    for name in ("studies", "outcomes", "appraisal"):
        sheet = pd.read_csv(EXAMPLE / "data" / "raw" / f"{name}.csv", dtype=str, keep_default_na=False)
        assert set(sheet["source_url"]) == {SIM.SOURCE_URL}, name
        assert set(sheet["locator"]) == {SIM.LOCATOR}, name


def test_the_example_names_nothing_of_the_shipped_review():
    for path in EXAMPLE.rglob("*"):
        if path.is_file() and path.suffix in TEXT_OUTPUTS | {".qmd", ".py"}:
            assert not SHIPPED_TERMS.search(path.read_text(encoding="utf-8")), path


@pytest.mark.slow
def test_manuscript_shows_the_reviews_own_arms_and_outcomes(run):
    html = (run / "results" / "manuscript" / "index.html").read_text(encoding="utf-8")
    qmd = (run / "manuscript" / "index.qmd").read_text(encoding="utf-8")
    for engine_text in ("usual-care arm", "Knee effusion volume", "OMERACT-OARSI response"):
        assert engine_text not in qmd  # so that finding it in the HTML shows the engine wrote it from the config
        assert engine_text in html, engine_text
    assert "exercise therapy" in html
    for ext in ("docx", "pdf"):
        assert (run / "results" / "manuscript" / f"index.{ext}").stat().st_size > 0


@pytest.mark.slow
def test_no_output_names_the_shipped_review(run):
    found = []
    for path in sorted((run / "results").rglob("*")):
        if not path.is_file():
            continue
        if path.suffix in TEXT_OUTPUTS:
            text = path.read_text(encoding="utf-8", errors="replace")
        elif path.suffix == ".docx":
            with zipfile.ZipFile(path) as z:
                text = z.read("word/document.xml").decode("utf-8")
        else:
            continue
        text = EMBEDDED.sub("", text)
        found += [f"{path.relative_to(run)}: {text[max(0, m.start() - 40):m.end() + 20]!r}"
                  for m in SHIPPED_TERMS.finditer(text)]
    assert not found, found[:20]


@pytest.mark.slow
def test_arms_keep_the_reviews_ids(run):
    table = pd.read_csv(run / "results" / "harmonised" / "analysis_table.csv")
    assert set(table["arm"]) == {"exercise", "usual_care"}
    assert set(table.loc[table["arm"] == "usual_care", "study_id"]) == {"lund2019"}


@pytest.mark.slow
def test_estimate_with_se_only_reaches_the_model(run):
    """tanaka2021 reports WOMAC pain only as change from baseline with its SE (no n, no SD): it is modelled."""
    table = pd.read_csv(run / "results" / "harmonised" / "analysis_table.csv")
    tanaka = table[(table["study_id"] == "tanaka2021") & (table["outcome"] == "womac_pain")]
    assert len(tanaka) == 3 and tanaka["poolable"].all()
    s = summary(run, "all_eligible", "womac_pain")
    assert "tanaka2021" in set(s.loc[s["quantity"] == "study_observed", "study_id"])


@pytest.mark.slow
def test_log_outcome_is_reported_as_a_ratio(run):
    """Knee effusion volume is modelled as a log ratio of means and reported as percent change of the mean."""
    s = summary(run, "all_eligible", "effusion_volume")
    assert set(s["analysis_scale"]) == {"log"}
    for visit in (3.0, 6.0, 12.0):
        log_ratio = pooled(run, "all_eligible", "effusion_volume", "delta", visit)
        percent = pooled(run, "all_eligible", "effusion_volume", "delta_percent", visit)
        assert percent["median"] == pytest.approx(100 * math.expm1(log_ratio["median"]), abs=0.01)  # median of draws
    variables = yaml.safe_load((run / "results" / "manuscript" / "_variables.yml").read_text(encoding="utf-8"))
    assert "%" in variables["main"]["effusion_volume"]["unit"]
    assert re.fullmatch(r"−?\d+% \(95% CrI −?\d+% to −?\d+%\)", variables["main"]["effusion_volume"]["change"])
    # the identity-scale outcome stays in its unit (points)
    assert re.fullmatch(r"−?[\d.]+ \(95% CrI −?[\d.]+ to −?[\d.]+\)", variables["main"]["womac_pain"]["change"])


@pytest.mark.slow
def test_pooled_estimates_recover_the_simulated_truth(run):
    """Loose: the truth inside the 95% credible interval and the median near it (five small simulated studies)."""
    truth = SIM.TRUTH
    for visit in (6.0, 12.0):
        pain = pooled(run, "all_eligible", "womac_pain", "delta", visit)
        true_pain = truth["womac_pain"]["change"]["exercise"][int(visit)]
        assert pain["lower"] < true_pain < pain["upper"], (visit, pain[["median", "lower", "upper"]].to_dict())
        assert abs(pain["median"] - true_pain) < 1.5
    effusion = pooled(run, "all_eligible", "effusion_volume", "delta_percent", 12.0)
    true_percent = 100 * (truth["effusion_volume"]["change"]["exercise"][12] - 1)
    assert effusion["lower"] < true_percent < effusion["upper"], effusion[["median", "lower", "upper"]].to_dict()
    assert abs(effusion["median"] - true_percent) < 15


@pytest.mark.slow
def test_randomised_comparison_uses_the_comparator_arm(run):
    s = summary(run, "supervised", "womac_pain")
    diff = s[(s["quantity"] == "between_arm_difference") & (s["visit_months"] == 12.0) & (s["primary"] == True)]  # noqa: E712
    assert len(diff) == 1
    truth = SIM.TRUTH["womac_pain"]["change"]
    true_difference = truth["exercise"][12] - truth["usual_care"][12]
    assert diff.iloc[0]["lower"] < true_difference < diff.iloc[0]["upper"]
    between = (run / "results" / "tables" / "supervised" / "between_arm.md").read_text(encoding="utf-8")
    assert "exercise arm" in between.lower() and "usual-care arm" in between.lower()  # review.arms.*.arm_name


@pytest.mark.slow
def test_models_use_the_dictionarys_priors(run):
    """Each outcome's priors are those of the review's outcome dictionary (no default written for another review)."""
    import arviz as az

    dictionary = yaml.safe_load((run / "data" / "review" / "outcomes.yaml").read_text(encoding="utf-8"))["outcomes"]
    for outcome in ("womac_pain", "effusion_volume", "oarsi_response"):
        entry = dictionary[outcome]
        expected = {k: v for k, v in entry["priors"][entry["analysis_scale"]].items()
                    if k in ("delta_sd", "tau_scale", "step_sd", "baseline_sd", "mu_sd")}
        for study_set in ("supervised", "all_eligible"):
            idata = az.from_netcdf(run / "results" / "models" / study_set / outcome / "idata.nc")
            used = json.loads(idata.constant_data.attrs["priors_json"])
            assert {k: used[k] for k in expected} == expected, (study_set, outcome, used.get("sources"))


@pytest.mark.slow
def test_manuscript_words_come_from_the_reviews_files(run):
    """Study-set names from config review.study_sets, design words from the vocabulary, checklists by label."""
    config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    vocabulary = yaml.safe_load((run / "data" / "review" / "vocabulary.yaml").read_text(encoding="utf-8"))
    variables = yaml.safe_load((run / "results" / "manuscript" / "_variables.yml").read_text(encoding="utf-8"))
    sets = config["review"]["study_sets"]
    assert variables["main"]["name"] == sets["supervised"]["name"]
    assert variables["other"]["name"] == sets["all_eligible"]["name"]
    assert "before-after" in variables["main"]["designs"].lower()  # the vocabulary's pre_post, counted
    for checklist in vocabulary["checklists"].values():
        assert checklist["label"] in variables["appraisal"]["checklists"]
    html = (run / "results" / "manuscript" / "index.html").read_text(encoding="utf-8")
    appraisal = (run / "results" / "tables" / "appraisal.md").read_text(encoding="utf-8")
    for judgement in vocabulary["judgements"].values():
        assert judgement["label"] in appraisal
    for code in vocabulary["checklists"]:
        assert f"| {code} |" not in appraisal  # readers see the checklist's label, never its code
    assert vocabulary["characteristics"][1]["header"] in html  # a review-defined column of Table 1


@pytest.mark.slow
def test_provenance_hashes_every_review_file(run):
    """The reproducibility appendix lists each file the review is made of (config data.* keys), with its hash."""
    provenance = (run / "results" / "manuscript" / "provenance.md").read_text(encoding="utf-8")
    config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    files = ["config.yaml", *(f"{config['data']['raw_dir']}/{s}.csv" for s in ("studies", "outcomes", "appraisal")),
             config["data"]["outcome_dictionary"], config["data"]["vocabulary"], config["data"]["claims"]]
    for name in files:
        assert f"`{name}`" in provenance, name


@pytest.mark.slow
def test_claims_check_gives_an_estimate_with_se_its_interval(run):
    """A study's verdict on 'less pain at 12 months' agrees with its own interval in the model summary, also for
    tanaka2021, whose change is reported only as an estimate with its SE."""
    s = summary(run, "supervised", "womac_pain")
    own = s[(s["quantity"] == "study_observed") & (s["visit_months"] == 12.0)].set_index("study_id")
    studies = pd.read_csv(run / "data" / "raw" / "studies.csv", dtype=str).set_index("study_id")
    claims = pd.read_csv(run / "results" / "tables" / "supervised" / "claims_check.csv", dtype=str,
                         keep_default_na=False)
    start = claims.index[claims["Claim"].str.contains("less knee pain")][0]
    verdicts = {}
    for _, row in claims.iloc[start + 1:].iterrows():
        if row["Claim"]:
            break
        verdicts[row["Assessed over"]] = row["Verdict"]
    below_zero = own.index[own["upper"] < 0]
    assert "tanaka2021" in below_zero
    for study_id in below_zero:
        label = f"{studies.loc[study_id, 'first_author'].split()[0]} {studies.loc[study_id, 'year']}"
        assert verdicts[label] == "supported", (label, verdicts[label], own.loc[study_id, ["lower", "upper"]].tolist())
