"""Shared fixtures: a small valid set of extraction sheets and its outcome dictionary."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

from timecourse_meta.data import dictionary

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


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
