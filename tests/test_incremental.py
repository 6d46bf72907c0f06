"""Incremental rebuilds in real runs: a change reruns exactly the jobs that read what changed.

The workflow runs on a copy of the project, on two fast outcomes of one study set (SLEDAI and C3 in review_2023,
one study each) with the shortest sampling, and each case asserts the exact set of jobs Snakemake's own output
says it ran ("localrule X:" with its wildcards). The cases share one project, each leaving it up to date, so
their order does not matter.
"""

from __future__ import annotations

import ast
import inspect
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT
from timecourse_meta.core import config as config_mod
from timecourse_meta.core import review
from timecourse_meta.data import incremental
from timecourse_meta.data import linkage
from timecourse_meta.model import model_data
from timecourse_meta.model import fit as models
from timecourse_meta.data import outputs
from timecourse_meta.steps import data as data_steps
from timecourse_meta.steps import model as model_steps
from timecourse_meta.report import tables

SKIP = shutil.ignore_patterns(".git", ".venv", "results", ".snakemake", "__pycache__", "*.egg-info",
                              ".pytest_cache", "tests")
SET = "review_2023"
FITTED = ("sledai", "c3")
TARGETS = [*(f"results/models/{SET}/{o}/diagnostics.csv" for o in FITTED), "results/harmonised/analysis_table.csv",
           "results/validated/report.md"]
# the shortest sampling the schema allows, and a gate that lets such short chains pass
FAST = ("sampling: {chains: 2, draws: 100, tune: 100, progress_bar: false}\n"
        # one time course, not the three of the comparison: a third of the compilation per fit
        "model: {compare_time_courses: false}\n"
        "diagnostics: {max_rhat: 10.0, min_ess_bulk: 1, min_ess_tail: 1, max_divergences: 100000, min_bfmi: 0.0}\n")
JOB = re.compile(r"^(?:local)?rule (\w+):\n(?:(?:    .*\n)*?    wildcards: (.*)\n)?", re.M)


def copy_project(target: Path) -> Path:
    shutil.copytree(ROOT, target, ignore=SKIP)
    (target / "fast.yaml").write_text(FAST, encoding="utf-8")
    return target


def snakemake(project: Path, *args: str, configfiles=("fast.yaml",)) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args, "--configfile", *configfiles],
                          cwd=project, capture_output=True, text=True, timeout=600)


def jobs_run(result: subprocess.CompletedProcess) -> set[str]:
    """The jobs a real run executed, from Snakemake's log ("localrule fit_model:" + "wildcards: ..." lines)."""
    assert result.returncode == 0, result.stderr[-4000:]
    assert "dry-run" not in result.stdout + result.stderr
    text = result.stdout + "\n" + result.stderr
    return {f"{rule}[{wc}]" if wc else rule for rule, wc in JOB.findall(text)}


def sheet(name: str) -> str:
    return f"validated_sheet[sheet={name}]"


def outcome_jobs(outcome: str, *, slice_: bool = False, settings: bool = False) -> set[str]:
    """fit_model and diagnose of one outcome (in SET), with its slice or settings job if they had to run."""
    jobs = {f"fit_model[study_set={SET}, outcome={outcome}]", f"diagnose[study_set={SET}, outcome={outcome}]"}
    if slice_:
        jobs.add(f"outcome_slice[outcome={outcome}]")
    if settings:
        jobs.add(f"model_config[outcome={outcome}]")
    return jobs


def edit_cell(path: Path, key: str, value: str, column: str, new: str) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    rows = frame[key] == value
    assert rows.sum() == 1 and frame.loc[rows, column].iloc[0] != new
    frame.loc[rows, column] = new
    frame.to_csv(path, index=False)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The project copy after a first full run of TARGETS (every job runs once)."""
    target = copy_project(tmp_path_factory.mktemp("incremental") / "project")
    first = jobs_run(snakemake(target, *TARGETS))
    assert first == {"validate", sheet("studies"), sheet("outcomes"), "harmonise", "model_studies",
                     *(j for o in FITTED for j in outcome_jobs(o, slice_=True, settings=True))}
    return target


def summaries(project: Path) -> dict[str, bytes]:
    return {o: (project / f"results/models/{SET}/{o}/summary.csv").read_bytes() for o in FITTED}


def test_no_change_runs_nothing(project):
    result = snakemake(project, *TARGETS)
    assert jobs_run(result) == set()
    assert "Nothing to be done" in result.stdout + result.stderr


def test_one_cell_of_one_outcome_reruns_that_outcome_only(project):
    before = summaries(project)
    edit_cell(project / "data/raw/outcomes.csv", "row_id", "deng2017-026", "sd", "4.5")  # SLEDAI change at 6 months
    assert jobs_run(snakemake(project, *TARGETS)) == {"validate", sheet("outcomes"), "harmonise",
                                                      *outcome_jobs("sledai", slice_=True)}
    after = summaries(project)
    assert after["c3"] == before["c3"] and after["sledai"] != before["sledai"]
    # the slice given to the fit is exactly that outcome's rows of the table the harmonise job wrote
    table = pd.read_csv(project / "results/harmonised/analysis_table.csv")
    for outcome in FITTED:
        written = (project / f"results/harmonised/by_outcome/{outcome}.csv").read_text(encoding="utf-8")
        assert written == outputs.outcome_slice_text(table, outcome)
    assert "4.5" in set(table.loc[table["raw_row_ids"] == "deng2017-026", "sd"].astype(str))
    dry = snakemake(project, "-n", *TARGETS)
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_one_prior_reruns_that_outcome_only(project, tmp_path):
    (project / "prior.yaml").write_text("model: {priors: {c3: {delta_sd: 0.5}}}\n", encoding="utf-8")
    result = snakemake(project, *TARGETS, configfiles=("fast.yaml", "prior.yaml"))
    assert jobs_run(result) == outcome_jobs("c3", settings=True)
    settings = (project / "results/config/models/c3.yaml").read_text(encoding="utf-8")
    assert "delta_sd: 0.5" in settings
    assert jobs_run(snakemake(project, *TARGETS)) == outcome_jobs("c3", settings=True)  # and back


def test_descriptive_study_column_refits_nothing(project):
    edit_cell(project / "data/raw/studies.csv", "study_id", "deng2017", "msc_source", "umbilical cord (edited)")
    assert jobs_run(snakemake(project, *TARGETS)) == {"validate", sheet("studies"), "harmonise"}
    assert "umbilical cord (edited)" in (project / "results/validated/studies.csv").read_text(encoding="utf-8")


def test_study_column_a_fit_reads_refits_the_set(project):
    # the first author labels a report in the linkage rule's records: the fits read it
    edit_cell(project / "data/raw/studies.csv", "study_id", "deng2017", "first_author", "Deng D (edited)")
    assert jobs_run(snakemake(project, *TARGETS)) == {"validate", sheet("studies"), "harmonise", "model_studies",
                                                      *outcome_jobs("sledai"), *outcome_jobs("c3")}
    studies = pd.read_csv(project / "results/validated/studies.csv", dtype=str, keep_default_na=False)
    assert (project / "results/validated/model_studies.csv").read_text(encoding="utf-8") == \
        incremental.model_studies_text(studies, review.load_vocabulary(project / "data/review/vocabulary.yaml")
                                       .study_fields)


# --- the texts computed when the workflow is parsed (no Snakemake run) ---

def shipped_config(tmp_path: Path) -> dict:
    raw = tmp_path / "raw"
    shutil.copytree(ROOT / "data/raw", raw)
    cfg = config_mod.load(ROOT / "config.yaml")
    cfg["data"]["raw_dir"] = str(raw)
    cfg["data"]["outcome_dictionary"] = str(ROOT / cfg["data"]["outcome_dictionary"])
    return cfg


def test_a_changed_row_changes_only_its_outcome_text(tmp_path):
    cfg = shipped_config(tmp_path)
    outcomes = cfg["outcomes"] + cfg["binary_outcomes"]
    before = incremental.compute(cfg, outcomes)
    assert before.error is None and set(before.slices) == set(outcomes)
    edit_cell(Path(cfg["data"]["raw_dir"]) / "outcomes.csv", "row_id", "deng2017-026", "sd", "4.5")
    edit_cell(Path(cfg["data"]["raw_dir"]) / "studies.csv", "study_id", "deng2017", "doi", "10.0/edited")
    after = incremental.compute(cfg, outcomes)
    assert [o for o in outcomes if after.slice(o) != before.slice(o)] == ["sledai"]
    assert after.model_studies == before.model_studies  # a DOI is for readers only


def test_sheets_that_do_not_validate_give_no_text_and_the_job_names_why(tmp_path):
    cfg = shipped_config(tmp_path)
    edit_cell(Path(cfg["data"]["raw_dir"]) / "outcomes.csv", "row_id", "deng2017-026", "sd", "-1")
    result = incremental.compute(cfg, ["sledai"])
    assert result.slice("sledai") is None and result.model_studies is None
    assert "column 'sd': value '-1'" in result.error
    out = tmp_path / "slice.csv"
    with pytest.raises(incremental.InputsUnavailable, match="slice.csv: the outcome's rows could not be computed"):
        data_steps.run_outcome_slice(text=result.slice("sledai"), out=str(out), error=result.error)
    assert not out.exists()


def column_names_read(source: str) -> set[str]:
    """String keys the code reads: `x["col"]`, `x[["a", "b"]]`, `x.get("col")`, `"col" in x`."""
    names = set()
    for node in ast.walk(ast.parse(textwrap.dedent(source))):
        key = node.slice if isinstance(node, ast.Subscript) else (
            node.args[0] if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get" and node.args else
            node.left if isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.In) else None)
        for const in ast.walk(key) if key is not None else ():
            if isinstance(const, ast.Constant) and isinstance(const.value, str):
                names.add(const.value)
    return names


def test_the_fit_code_reads_no_descriptive_study_column():
    """The columns model_studies leaves out must be ones the fit's code never reads, else a fit would miss them."""
    read = set()
    for source in (inspect.getsource(m) for m in (linkage, models, model_data)):
        read |= column_names_read(source)
    for function in (model_steps.run_fit_model, tables.study_labels, tables.study_label):  # the fit's labels of reports
        read |= column_names_read(inspect.getsource(function))
    assert {"study_id", "patient_group", "first_author"} <= read  # the check sees what the fit does read
    assert read.isdisjoint(incremental.DESCRIPTIVE_STUDY_COLUMNS)
    assert read.isdisjoint(review.load_vocabulary(ROOT / "data/review/vocabulary.yaml").study_fields)


def test_sheets_that_do_not_validate_stop_the_fits_naming_the_cell(tmp_path):
    project = copy_project(tmp_path / "project")
    edit_cell(project / "data/raw/outcomes.csv", "row_id", "deng2017-026", "sd", "-1")
    result = snakemake(project, f"results/models/{SET}/sledai/summary.csv")
    assert result.returncode != 0
    assert "outcomes.csv, row 45, column 'sd': value '-1'; expected a number > 0" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / "results/harmonised").exists() and not (project / "results/models").exists()
