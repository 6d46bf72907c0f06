"""Shared fixtures: a small valid set of extraction sheets and its outcome dictionary."""

import json
import os
import re
import shutil
import sys
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from filelock import FileLock

from timecourse_meta.data import dictionary

ROOT = Path(__file__).resolve().parents[1]


def _worker_compiledir() -> None:
    """One PyTensor compile directory per pytest-xdist worker (inherited by the Snakemake runs it starts): PyTensor
    locks its whole compile directory while it compiles, so two workers sharing one would wait on each other."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if worker and "compiledir" not in flags:
        compiledir = Path.home() / ".pytensor" / f"pytest-{worker}"
        os.environ["PYTENSOR_FLAGS"] = ",".join(f for f in (flags, f"compiledir={compiledir}") if f)


_worker_compiledir()
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
    Snakefile from its own folder. One run serves test_second_review, test_report and test_what_changed, whichever
    pytest-xdist worker (if any) asks first: the others wait on a lock and read the same folder (the tests only read it)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    project, status = shared / "second_review" / "review", shared / "second_review" / "status.json"
    with FileLock(str(shared / "second_review.lock")):
        if not status.exists():
            status.write_text(json.dumps(_run_second_review(project)))
    failure = json.loads(status.read_text())["failure"]
    if failure:
        pytest.fail(failure)
    return project


def _run_second_review(project: Path) -> dict:
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("results", ".snakemake", "__pycache__"))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(project),
         "--cores", "2"],
        cwd=project, capture_output=True, text=True, timeout=900)
    if result.returncode == 0:
        return {"failure": None}
    # the failing steps' own logs say why; Snakemake's output only names them
    logs = dict.fromkeys(re.findall(r"log: (\S+) \(check log file", result.stderr))
    tails = [f"--- {log}:\n{(project / log).read_text(errors='replace')[-1500:]}" for log in logs
             if (project / log).is_file()]
    return {"failure": "the workflow failed on the second review:\n" + "\n".join(tails or [result.stderr[-6000:]])}
