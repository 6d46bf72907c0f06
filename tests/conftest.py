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
