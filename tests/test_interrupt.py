"""A run killed during a fit finishes on the next plain run, with the results of an uninterrupted run.

Every output is written atomically (timecourse_meta.core.atomic): a job killed while it works leaves its outputs absent,
never half written, so Snakemake reruns it as a job with missing output. A job killed after writing its outputs
but before Snakemake recorded it leaves complete files marked incomplete: the workflow profile
(profiles/default/config.yaml) sets rerun-incomplete, so the next plain `snakemake` reruns it instead of stopping.
After SIGTERM Snakemake removes its lock; after SIGKILL it cannot, and the next run stops asking for
`snakemake --unlock` (once) first. Two clean runs give byte-identical results.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_incremental import copy_project, jobs_run, snakemake

# a pooled model, so that the fit samples (it compiles for several seconds after logging "sampling"): the kill
# lands inside the fit, not after an instant single-study summary has already been written
SET = "updated_review"
OUTCOME = "sledai"
SUMMARY = f"results/models/{SET}/{OUTCOME}/summary.csv"
TARGETS = [f"results/models/{SET}/{OUTCOME}/diagnostics.csv", "results/harmonised/analysis_table.csv"]
FIT_LOG = f"results/logs/models/fit_model_{SET}_{OUTCOME}.log"
RESULTS = (SUMMARY, f"results/models/{SET}/{OUTCOME}/dropped_reports.csv", "results/harmonised/analysis_table.csv",
           f"results/harmonised/by_outcome/{OUTCOME}.csv", f"results/config/models/{OUTCOME}.yaml",
           "results/validated/studies.csv", "results/validated/outcomes.csv")


def results(project: Path) -> dict[str, bytes]:
    return {name: (project / name).read_bytes() for name in RESULTS}


def differences(got: dict[str, bytes], expected: dict[str, bytes]) -> str:
    """The lines that differ between two runs' files (an assertion message that shows what moved)."""
    import difflib
    out = []
    for name in expected:
        if got.get(name) != expected[name]:
            a = expected[name].decode("utf-8", "replace").splitlines()
            b = got.get(name, b"").decode("utf-8", "replace").splitlines()
            out += [name, *difflib.unified_diff(a, b, lineterm="", n=0)]
    return "\n".join(out)


def kill_during_fit(project: Path, sig: int) -> None:
    """Start a run in its own process group; once the fit job has started (its log exists and names what it
    fits) send `sig` to the whole group, as an interrupted terminal or a batch system would."""
    process = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "2", *TARGETS, "--configfile",
                                "fast.yaml"], cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    log = project / FIT_LOG
    deadline = time.monotonic() + 300
    try:
        while not (log.exists() and "sampling" in log.read_text(encoding="utf-8")):
            assert process.poll() is None, "the run ended before its fit started"
            assert time.monotonic() < deadline, "the fit did not start within 5 minutes"
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, sig)
        process.wait(timeout=60)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """Results of an uninterrupted run."""
    project = copy_project(tmp_path_factory.mktemp("clean") / "project")
    jobs_run(snakemake(project, *TARGETS))
    return results(project)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_run_killed_during_a_fit_finishes_on_a_plain_rerun_with_identical_results(tmp_path, clean, sig):
    project = copy_project(tmp_path / "project")
    kill_during_fit(project, sig)
    assert not (project / SUMMARY).exists()  # killed during the fit: nothing of it is in place
    assert not (project / f"results/models/{SET}/{OUTCOME}/idata.nc").exists()
    if sig == signal.SIGKILL:  # Snakemake still holds the fit's outputs for incomplete: none of them exists
        assert any(p.is_file() for p in (project / ".snakemake/incomplete").rglob("*"))
    rerun = snakemake(project, *TARGETS)  # the README's plain command
    if sig == signal.SIGKILL:  # a killed Snakemake cannot remove its lock: the next run says how to lift it
        assert rerun.returncode != 0 and "--unlock" in rerun.stderr
        assert subprocess.run([sys.executable, "-m", "snakemake", "--unlock"], cwd=project, capture_output=True,
                              timeout=120).returncode == 0
        rerun = snakemake(project, *TARGETS)
    assert "IncompleteFilesException" not in rerun.stdout + rerun.stderr
    ran = jobs_run(rerun)
    assert f"fit_model[study_set={SET}, outcome={OUTCOME}]" in ran
    assert results(project) == clean, differences(results(project), clean)
    assert not [p.name for p in (project / f"results/models/{SET}/{OUTCOME}").iterdir() if p.name.startswith(".")]


def test_two_clean_runs_give_byte_identical_results(tmp_path, clean):
    project = copy_project(tmp_path / "project")
    jobs_run(snakemake(project, *TARGETS))
    assert results(project) == clean, differences(results(project), clean)
