"""The Snakemake workflow end to end on the data steps: raw data untouched, reruns, failures leave nothing."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT
from timecourse_meta.data import sheets as sheets_mod

DATA_TARGETS = ["results/validated/report.md", "results/harmonised/analysis_table.csv",
                "results/harmonised/coverage.csv"]
SKIP = shutil.ignore_patterns(".git", ".venv", "results", ".snakemake", "__pycache__", "*.egg-info",
                              ".pytest_cache", "tests")


@pytest.fixture
def project(tmp_path):
    """A copy of the project (code, config, data) to run the workflow in."""
    target = tmp_path / "project"
    shutil.copytree(ROOT, target, ignore=SKIP)
    return target


def snakemake(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=project,
                          capture_output=True, text=True, timeout=600)


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_run_leaves_raw_data_identical_and_second_run_does_nothing(project):
    before = digest(project / "data" / "raw")
    first = snakemake(project, *DATA_TARGETS)
    assert first.returncode == 0, first.stderr[-3000:]
    assert digest(project / "data" / "raw") == before
    table = pd.read_csv(project / "results/harmonised/analysis_table.csv")
    raw = pd.read_csv(project / "data/raw/outcomes.csv")
    reported = set(table.loc[table["origin"] == "reported", "raw_row_ids"])
    assert reported == set(raw["row_id"])  # every raw number reaches the table, usable or not
    again = snakemake(project, "-n", *DATA_TARGETS)
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr


def test_failed_validation_writes_nothing_and_names_the_cell(project):
    outcomes = pd.read_csv(project / "data/raw/outcomes.csv", dtype=str, keep_default_na=False)
    index = outcomes.index[outcomes["statistic"] == "mean_sd"][0]
    outcomes.loc[index, "sd"] = "-1"
    outcomes.to_csv(project / "data/raw/outcomes.csv", index=False)
    result = snakemake(project, *DATA_TARGETS)
    assert result.returncode != 0
    assert f"outcomes.csv, row {index + 2}, column 'sd': value '-1'; expected a number > 0" in result.stderr
    assert not (project / "results" / "validated").exists() or not any((project / "results/validated").iterdir())
    assert not (project / "results" / "harmonised").exists()


def test_unknown_config_key_stops_the_workflow_with_its_name(project):
    cfg = yaml.safe_load((project / "config.yaml").read_text())
    cfg["sampling"]["n_chains"] = 4
    (project / "config.yaml").write_text(yaml.safe_dump(cfg))
    result = snakemake(project, "-n")
    assert result.returncode != 0
    assert "unknown key 'sampling.n_chains'" in result.stderr + result.stdout


def test_workbook_input_gives_the_same_table(project):
    assert snakemake(project, *DATA_TARGETS).returncode == 0
    csv_table = pd.read_csv(project / "results/harmonised/analysis_table.csv")
    frames = {name: pd.read_csv(project / f"data/raw/{name}.csv", dtype=str, keep_default_na=False)
              for name in sheets_mod.SHEETS}
    sheets_mod.write_workbook(frames, project / "data" / "extraction.xlsx")
    cfg = yaml.safe_load((project / "config.yaml").read_text())
    cfg["data"]["workbook"] = "data/extraction.xlsx"
    (project / "config.yaml").write_text(yaml.safe_dump(cfg))
    shutil.rmtree(project / "results")
    result = snakemake(project, *DATA_TARGETS)
    assert result.returncode == 0, result.stderr[-3000:]
    pd.testing.assert_frame_equal(pd.read_csv(project / "results/harmonised/analysis_table.csv"), csv_table)


RESOLVED = "results/config/resolved_config.yaml"


def test_configfile_and_config_reach_the_resolved_config_and_rerun_only_on_change(project):
    """`--configfile` (a file changing two numbers) and `--config key=value` are merged over config.yaml; the
    resolved config is rewritten only when its content changes."""
    (project / "other.yaml").write_text("harmonisation:\n  within_person_correlation: 0.3\nsampling:\n  draws: 321\n")
    first = snakemake(project, RESOLVED, "--configfile", "other.yaml")
    assert first.returncode == 0, first.stderr[-3000:]
    resolved = yaml.safe_load((project / RESOLVED).read_text())
    assert resolved["harmonisation"]["within_person_correlation"] == 0.3
    assert resolved["sampling"]["draws"] == 321
    assert resolved["sampling"]["chains"] == 4  # keys other.yaml leaves out keep config.yaml's values
    mtime = (project / RESOLVED).stat().st_mtime_ns
    again = snakemake(project, RESOLVED, "--configfile", "other.yaml")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    assert (project / RESOLVED).stat().st_mtime_ns == mtime  # same content: not rewritten
    override = snakemake(project, RESOLVED, "--configfile", "other.yaml", "--config", "main_study_set=review_2023")
    assert override.returncode == 0, override.stderr[-3000:]
    resolved = yaml.safe_load((project / RESOLVED).read_text())
    assert resolved["main_study_set"] == "review_2023" and resolved["sampling"]["draws"] == 321
    shipped = snakemake(project, RESOLVED)
    assert shipped.returncode == 0
    assert yaml.safe_load((project / RESOLVED).read_text())["sampling"]["draws"] == 2000
