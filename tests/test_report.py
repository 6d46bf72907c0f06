"""Snakemake's report after a small run, and the rule hygiene behind it.

The workflow runs on a copy of the project (test_incremental's fast settings) for a handful of reader-facing
outputs of one outcome in one study set, then `snakemake --report` builds the HTML report from that run. The
report must list exactly the outputs the rules mark with report(), under their categories, each with its
caption rendered for its own wildcards.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import ROOT
from test_incremental import copy_project, jobs_run, snakemake
from test_input_cli import edit_cell

SET = "review_2023"
OUTCOME = "sledai"  # one study in this set: its fit is a single-study summary, no sampling
TARGETS = ["results/validated/report.md", f"results/figures/{SET}/forest/{OUTCOME}.png",
           f"results/figures/{SET}/model/{OUTCOME}_prior_posterior.png", "results/figures/appraisal_traffic_light.png",
           f"results/tables/{SET}/characteristics.csv"]
CAPTION = re.compile(r'caption="\.\./report/(\w+)\.rst"')


def report_data(html: str, name: str):
    """A JSON object the report embeds as `<script id="name"> var name = {...};`."""
    match = re.search(rf'<script id="{name}">\s*var {name} = (.*?);\s*</script>', html, re.S)
    assert match, f"no {name} in the report"
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The project copy after a run of TARGETS, and the report built from it (with its build time)."""
    project = copy_project(tmp_path_factory.mktemp("report") / "project")
    jobs_run(snakemake(project, *TARGETS))
    html = project.parent / "report.html"
    result = snakemake(project, "--report", str(html), *TARGETS)
    assert result.returncode == 0, result.stderr[-3000:]
    return project, html.read_text(encoding="utf-8")


def test_the_report_lists_every_marked_output_under_its_category(run):
    project, html = run
    by_visit = sorted(f"results/figures/{SET}/forest/by_visit/{OUTCOME}/{p.name}"
                      for p in (project / f"results/figures/{SET}/forest/by_visit/{OUTCOME}").glob("*.png"))
    assert by_visit  # the outcome has a visit with data: the directory's figures are in the report
    categories = {cat: {sub: sorted(files) for sub, files in subs.items()}
                  for cat, subs in report_data(html, "categories").items()}
    assert categories == {
        "Data": {"Validation": ["results/validated/report.md"]},
        "Figures": {SET: sorted([f"results/figures/{SET}/forest/{OUTCOME}.png", *by_visit]),
                    "appraisal": ["results/figures/appraisal_summary.png",
                                  "results/figures/appraisal_traffic_light.png"]},
        "Tables": {SET: [f"results/tables/{SET}/characteristics.csv"], "appraisal": ["results/tables/appraisal.csv"]},
        "Model checks": {SET: [f"results/figures/{SET}/model/{OUTCOME}_{kind}.png"
                               for kind in ("ppc", "prior_posterior", "rank")]},
    }
    assert "A Bayesian time-course meta-analysis rebuilt from the raw extraction sheets" in html  # workflow.rst


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


def test_lint_reports_nothing(run):
    project, _ = run
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
