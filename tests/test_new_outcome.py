"""A new outcome for the shipped review is added by editing review files only: its entry (with priors and their
rationale) in the outcome dictionary, its rows in the outcomes sheet, its name in config.yaml's outcome list.
No Python changes; the real workflow fits it.

The added rows are test rows of a made-up outcome in a temporary copy of the project (never in data/raw):
Deng 2017's MSC arm with a mean of 2.0 at baseline and 1.2 at 6 months, so the study's own change is -0.8.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT

SKIP = shutil.ignore_patterns(".git", ".venv", "results", ".snakemake", "__pycache__", "*.egg-info",
                              ".pytest_cache", "tests")
FAST = ("sampling: {chains: 2, draws: 100, tune: 100, progress_bar: false}\n"
        # one time course, not the three of the comparison: a third of the compilation per fit
        "model: {compare_time_courses: false}\n"
        "diagnostics: {max_rhat: 10.0, min_ess_bulk: 1, min_ess_tail: 1, max_divergences: 100000, min_bfmi: 0.0}\n")
ENTRY = '''
  urine_pcr:
    label: "Urine protein-to-creatinine ratio"
    kind: continuous
    canonical_unit: "mg/mg"
    units: {"mg/mg": 1.0, "mg/g": 0.001}
    direction_of_benefit: decrease
    analysis_scale: identity
    scale_reason: "identity: a test outcome read as an absolute change."
    priors:
      identity: {delta_sd: 3.0, tau_scale: 1.0, step_sd: 1.5, baseline_sd: 5.0,
        rationale: "ratios of 0-10 mg/mg: a change beyond 6 is implausible (test entry)"}
    plausible_range: [0, 30]
    description: "Test outcome added by tests/test_new_outcome.py."
'''


def _row(row_id, months, mean, sd):
    return {"row_id": row_id, "study_id": "deng2017", "arm": "MSCT", "arm_label": "hUC-MSC", "outcome": "urine_pcr",
            "outcome_reported": "urine protein/creatinine", "measure": "absolute", "cohort": "all",
            "time_value": months, "time_unit": "months", "n": 12, "statistic": "mean_sd", "mean": mean, "sd": sd,
            "unit": "mg/mg", "usable": "yes", "source_url": "https://example.org/test-row",
            "locator": "test row (tests/test_new_outcome.py)", "notes": "not data: a test of the review files"}


@pytest.mark.slow
def test_a_new_outcome_needs_review_files_only(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=SKIP)
    (project / "fast.yaml").write_text(FAST, encoding="utf-8")
    dictionary = project / "data/review/outcomes.yaml"
    text = dictionary.read_text(encoding="utf-8")
    dictionary.write_text(text.replace("\noutcomes:\n", "\noutcomes:\n" + ENTRY, 1), encoding="utf-8")
    sheet = project / "data/raw/outcomes.csv"
    rows = pd.read_csv(sheet, dtype=str, keep_default_na=False)
    added = pd.DataFrame([_row("deng2017-901", 0, 2.0, 0.8), _row("deng2017-902", 6, 1.2, 0.6)]).astype(str)
    pd.concat([rows, added], ignore_index=True).fillna("").to_csv(sheet, index=False)
    config = project / "config.yaml"
    text = config.read_text(encoding="utf-8")
    assert "outcomes: [proteinuria_24h," in text
    config.write_text(text.replace("outcomes: [proteinuria_24h,", "outcomes: [urine_pcr, proteinuria_24h,", 1),
                      encoding="utf-8")
    target = "results/models/review_2023/urine_pcr/diagnostics.csv"
    result = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", target, "--configfile", "fast.yaml"],
                            cwd=project, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    summary = pd.read_csv(project / "results/models/review_2023/urine_pcr/summary.csv")
    own = summary[(summary["quantity"] == "study_observed") & (summary["visit_months"] == 6)]
    assert len(own) == 1
    assert own["median"].iloc[0] == pytest.approx(-0.8)
    assert own["evidence"].iloc[0] == "study_estimate"
    assert "Deng 2017" in own["label"].iloc[0]
    assert "fit_model" in result.stdout + result.stderr
