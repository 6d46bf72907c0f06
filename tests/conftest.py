"""Shared fixtures: a small valid set of extraction sheets and its outcome dictionary."""

import re
import shutil
import sys
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from timecourse_meta.data import dictionary

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLE = Path(__file__).parent / "examples" / "second_review"


@pytest.fixture
def fixture_dictionary():
    return dictionary.load(FIXTURES / "outcome_dictionary.yaml")


@pytest.fixture
def sheet_dir(tmp_path):
    """A writable copy of the valid fixture sheets."""
    target = tmp_path / "raw"
    shutil.copytree(FIXTURES / "sheets", target)
    return target


def read_fixture(name: str) -> pd.DataFrame:
    return pd.read_csv(FIXTURES / "sheets" / f"{name}.csv", dtype=str, keep_default_na=False)


# The review the fixture sheets belong to: its arms, study sets and vocabulary (the shipped one).
FIXTURE_REVIEW = {
    "arms": {"intervention": {"id": "MSCT", "label": "cell therapy", "short": "MSCT", "arm_name": "cell arm",
                              "n_column": "n_msct"},
             "comparator": {"id": "control", "label": "control", "short": "control", "arm_name": "control arm",
                            "n_column": "n_control"}},
    "study_sets": {"review_2023": {"name": "the earlier review's studies"},
                   "all_candidates": {"name": "all candidate studies"}},
}


def review_config(**extra) -> dict:
    """A resolved config for the fixture sheets (extra top-level keys replace the defaults given here)."""
    from timecourse_meta.core import config as config_mod

    raw = {"data": {"outcome_dictionary": str(FIXTURES / "outcome_dictionary.yaml"),
                    "vocabulary": str(ROOT / "data/review/vocabulary.yaml")},
           "review": FIXTURE_REVIEW, "study_sets": ["review_2023", "all_candidates"],
           "main_study_set": "review_2023"}
    for key, value in extra.items():
        raw[key] = {**raw[key], **value} if isinstance(raw.get(key), dict) and isinstance(value, dict) else value
    return config_mod.resolve(raw)


@pytest.fixture
def fixture_config():
    return review_config()


@pytest.fixture(scope="session")
def second_review_run(tmp_path_factory):
    """The second review (tests/examples/second_review) after a complete run of the workflow with the repository's
    Snakefile from its own folder; one run serves test_second_review and test_report."""
    project = tmp_path_factory.mktemp("second") / "review"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("results", ".snakemake", "__pycache__"))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(project),
         "--cores", "2"],
        cwd=project, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:  # the failing steps' own logs say why; Snakemake's output only names them
        logs = dict.fromkeys(re.findall(r"log: (\S+) \(check log file", result.stderr))
        tails = [f"--- {log}:\n{(project / log).read_text(errors='replace')[-1500:]}" for log in logs
                 if (project / log).is_file()]
        pytest.fail("the workflow failed on the second review:\n" + "\n".join(tails or [result.stderr[-6000:]]))
    return project
