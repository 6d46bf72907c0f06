"""Snakemake's report after a run, and the rule hygiene behind it.

The report is built from the second review's complete run (conftest.second_review_run: the whole DAG,
manuscript included, from the review's own folder), so this file adds no run of its own. The report must list
the outputs the rules mark with report(), under their categories, each with its caption rendered for its own
wildcards.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from conftest import ROOT
from test_incremental import copy_project, snakemake
from test_input_cli import edit_cell

SET = "supervised"      # the second review's main study set
OUTCOME = "womac_pain"  # one of its continuous outcomes
CAPTION = re.compile(r'caption="\.\./report/(\w+)\.rst"')


def report_data(html: str, name: str):
    """A JSON object the report embeds as `<script id="name"> var name = {...};`."""
    match = re.search(rf'<script id="{name}">\s*var {name} = (.*?);\s*</script>', html, re.S)
    assert match, f"no {name} in the report"
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def run(second_review_run, tmp_path_factory):
    """The second review after its run, and the report built from it."""
    project = second_review_run
    html = tmp_path_factory.mktemp("report") / "report.html"
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
                             str(project), "--report", str(html)], cwd=project, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return project, html.read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_report_lists_every_marked_output_under_its_category(run):
    project, html = run
    categories = report_data(html, "categories")
    assert set(categories) == {"Data", "Figures", "Tables", "Model checks", "Sensitivity", "Update", "Manuscript"}
    assert categories["Data"] == {"Validation": ["results/validated/report.md"]}
    assert {SET, "all_eligible", "appraisal"} <= set(categories["Figures"])
    figures = set(categories["Figures"][SET])
    by_visit = {f"results/figures/{SET}/forest/by_visit/{OUTCOME}/{p.name}"
                for p in (project / f"results/figures/{SET}/forest/by_visit/{OUTCOME}").glob("*.png")}
    assert by_visit and by_visit <= figures  # a directory's figures are in the report, one by one
    assert {f"results/figures/{SET}/forest/{OUTCOME}.png", f"results/figures/{SET}/trajectories.png"} <= figures
    assert f"results/tables/{SET}/summary_of_findings.csv" in categories["Tables"][SET]
    assert f"results/figures/{SET}/model/{OUTCOME}_prior_posterior.png" in categories["Model checks"][SET]
    assert f"results/tables/{SET}/sensitivity_verdicts.csv" in categories["Sensitivity"][SET]
    assert {"results/update/what_changed.md", "results/update/what_changed.csv"} <= {
        f for files in categories["Update"].values() for f in files}
    manuscript = {f for files in categories["Manuscript"].values() for f in files}
    assert {f"results/manuscript/index.{ext}" for ext in ("html", "docx", "pdf")} <= manuscript
    assert "A Bayesian time-course meta-analysis rebuilt from the raw extraction sheets" in html  # workflow.rst


@pytest.mark.slow
def test_each_output_carries_its_caption_for_its_own_wildcards(run):
    _, html = run
    results = report_data(html, "results")
    forest = results[f"results/figures/{SET}/forest/{OUTCOME}.png"]
    assert forest["caption"].startswith(f"<p>Forest plot of {OUTCOME} (study set {SET}) at its key visit:")
    assert forest["job_properties"]["rule"] == "forest"
    visit = next(r for path, r in results.items() if "/by_visit/" in path)
    month = re.search(r"_([0-9.]+)m\.png$", visit["filename"]).group(1)
    assert f"at month {month}, one of the visits with data" in visit["caption"]
    assert results["results/validated/report.md"]["caption"].startswith("<p>Validation report of the raw")
    for path, record in results.items():
        assert record["caption"].strip() and "{{" not in record["caption"], path


def test_every_caption_a_rule_names_exists_and_every_caption_file_is_used():
    named = {m for smk in (ROOT / "workflow/rules").glob("*.smk") for m in CAPTION.findall(smk.read_text())}
    files = {p.stem for p in (ROOT / "workflow/report").glob("*.rst")}
    assert named and named <= files
    assert files - named == {"workflow"}  # the report's description (Snakefile `report:`)


def test_lint_reports_nothing(tmp_path):
    project = copy_project(tmp_path / "project")
    result = snakemake(project, "--lint")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_an_engine_error_in_a_step_reaches_its_log_and_the_terminal_without_a_traceback(tmp_path):
    """A step other than validate: the typed copy of a sheet that does not validate (InputsUnavailable)."""
    project = copy_project(tmp_path / "project")
    row = edit_cell(project, "outcomes", "sd", "-1", lambda r: r["statistic"] == "mean_sd")
    result = snakemake(project, "results/validated/studies.csv")
    expected = f"outcomes.csv, row {row}, column 'sd': value '-1'; expected a number > 0"
    assert result.returncode != 0
    assert expected in result.stderr and "Traceback" not in result.stderr
    log = (project / "results/logs/data/validated_sheet_studies.log").read_text(encoding="utf-8")
    assert expected in log and "Traceback" not in log
    assert not (project / "results/validated/studies.csv").exists()
