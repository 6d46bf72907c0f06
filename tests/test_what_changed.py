"""The what-changed report: snapshots built from constructed sheets and model summaries (one run, then the same
run with one added study whose data move an estimate and its conclusion), the Monte Carlo rule on known numbers,
and an unchanged rerun reporting no change."""

import json
import math
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from conftest import EXAMPLE, ROOT

from timecourse_meta.report import snapshot, what_changed
from timecourse_meta.steps.update import run_what_changed

STUDIES = [{"study_id": "ames2014", "year": "2014", "study_sets": "all"},
           {"study_id": "berg2018", "year": "2018", "study_sets": "all"}]
ROWS = [{"row_id": "ames2014-001", "study_id": "ames2014", "outcome": "score", "mean": "10", "usable": "yes"},
        {"row_id": "berg2018-001", "study_id": "berg2018", "outcome": "score", "mean": "12", "usable": "yes"}]


def _summary(median, lower, upper, p, n_studies):
    return pd.DataFrame([
        {"outcome": "score", "study_set": "all", "quantity": "delta", "visit_months": 6, "study_id": None,
         "median": median, "lower": lower, "upper": upper, "p_improvement": p, "n_studies": n_studies,
         "n_patients": 10 * n_studies, "evidence": "pooled"},
        {"outcome": "score", "study_set": "all", "quantity": "tau", "visit_months": None, "study_id": None,
         "median": 1.0, "lower": 0.1, "upper": 2.0, "p_improvement": None, "n_studies": n_studies,
         "n_patients": 10 * n_studies, "evidence": "pooled"},   # not a key result: not in the snapshot
        {"outcome": "score", "study_set": "all", "quantity": "study_observed", "visit_months": 6,
         "study_id": "ames2014", "median": -2.0, "lower": -4.0, "upper": 0.0, "p_improvement": None,
         "n_studies": 1, "n_patients": 10, "evidence": "study_estimate"},
    ])


DIAGNOSTICS = pd.DataFrame([{"kind": "parameter", "parameter": "delta[6]", "ess_bulk": 400.0},
                            {"kind": "parameter", "parameter": "tau", "ess_bulk": 900.0},
                            {"kind": "sampler", "parameter": "divergences", "ess_bulk": None}])


def _snapshot(tmp_path, name, studies, rows, summary):
    d = tmp_path / name / "raw"
    d.mkdir(parents=True)
    pd.DataFrame(studies).to_csv(d / "studies.csv", index=False)
    pd.DataFrame(rows).to_csv(d / "outcomes.csv", index=False)
    summary.to_csv(d.parent / "summary.csv", index=False)
    DIAGNOSTICS.to_csv(d.parent / "diagnostics.csv", index=False)
    (d.parent / "resolved_config.yaml").write_text("study_sets: [all]\n")
    snap = snapshot.build_snapshot(
        files=[str(d / "studies.csv"), str(d / "outcomes.csv")], config=str(d.parent / "resolved_config.yaml"),
        studies=str(d / "studies.csv"), outcomes=str(d / "outcomes.csv"),
        results={("all", "score"): (str(d.parent / "summary.csv"), str(d.parent / "diagnostics.csv"))})
    path = d.parent / "snapshot.json"
    path.write_text(snapshot.dumps(snap))
    return snap, path


@pytest.fixture
def before_after(tmp_path):
    # before: one study at 6 months (no pooled change: n_studies 1); after: a second study pools it, and the
    # change moves from -1.0 to -3.0 (95% CrI width 4: sd 1.02, MCSE 1.02/sqrt(400) = 0.051)
    before = _snapshot(tmp_path, "before", STUDIES, ROWS, _summary(-1.0, -3.0, 1.0, 0.80, 1))
    studies = STUDIES + [{"study_id": "chen2024", "year": "2024", "study_sets": "all"}]
    rows = ROWS + [{"row_id": "chen2024-001", "study_id": "chen2024", "outcome": "score", "mean": "8",
                    "usable": "yes"}]
    after = _snapshot(tmp_path, "after", studies, rows, _summary(-3.0, -5.0, -1.0, 0.99, 2))
    return before, after


def test_mcse_and_the_monte_carlo_rule_on_known_numbers():
    assert snapshot.mcse_from_interval(-1.959964, 1.959964, 100.0) == pytest.approx(0.1)   # sd 1, ESS 100
    assert snapshot.mcse_from_interval(0.0, 1.0, math.nan) == 0.0                   # not sampled
    assert snapshot.min_ess_bulk(DIAGNOSTICS) == 400.0
    # threshold 2 x sqrt(0.3^2 + 0.4^2) = 1.0
    assert what_changed.moved_beyond_mc_error(0.0, 1.01, 0.3, 0.4)
    assert not what_changed.moved_beyond_mc_error(0.0, 0.99, 0.3, 0.4)
    assert what_changed.moved_beyond_mc_error(2.0, 2.001, 0.0, 0.0)                 # exact: any difference
    assert not what_changed.moved_beyond_mc_error(2.0, 2.0, 0.0, 0.0)


def test_snapshot_holds_the_key_results(before_after):
    (snap, _), _ = before_after
    pooled = snap["estimates"]["score|all|6|delta|"]
    assert pooled["estimate"] == -1.0 and pooled["n_studies"] == 1 and pooled["p_improvement"] == 0.8
    assert pooled["mcse"] == pytest.approx(4 / 3.919928 / 20, rel=1e-5)
    assert snap["estimates"]["score|all|6|study_observed|ames2014"]["mcse"] == 0.0
    assert not any("|tau|" in k for k in snap["estimates"])
    assert sorted(snap["studies"]) == ["ames2014", "berg2018"] and sorted(snap["rows"]) == ["ames2014-001",
                                                                                          "berg2018-001"]


def test_report_names_the_added_study_and_the_moved_estimate(before_after, tmp_path):
    (a, pa), (b, pb) = before_after
    changes = what_changed.compare(a, b)
    kinds = dict(zip(changes["item"], changes["kind"]))
    assert kinds["chen2024"] == "study_added" and kinds["chen2024-001"] == "row_added"
    moved = changes[changes["kind"] == "estimate_moved"]
    assert list(moved["item"]) == ["score|all|6|delta|"]
    assert changes.loc[changes["kind"] == "conclusion_changed", "after"].tolist() == ["clear improvement"]
    assert changes.loc[changes["kind"] == "became_poolable", "item"].tolist() == ["score|all|6"]
    assert "ames2014" not in set(changes["item"])                     # unchanged study, unchanged own estimate
    run_what_changed(current=str(pb), compare_with=str(pa), md=str(tmp_path / "w.md"), csv=str(tmp_path / "w.csv"))
    text = (tmp_path / "w.md").read_text()
    assert "study added: `chen2024`" in text and "moved beyond Monte Carlo error: `score|all|6|delta|`" in text
    assert "2 x sqrt(MCSE_before^2 + MCSE_after^2)" in text
    assert pd.read_csv(tmp_path / "w.csv")["kind"].tolist() == changes["kind"].tolist()


def test_identical_snapshots_report_no_change(before_after, tmp_path):
    (a, pa), _ = before_after
    again = json.loads(snapshot.dumps(a))
    assert snapshot.dumps(again) == pa.read_text()                   # deterministic text
    assert what_changed.compare(a, again).empty
    run_what_changed(current=str(pa), compare_with=str(pa), md=str(tmp_path / "w.md"), csv=str(tmp_path / "w.csv"))
    assert (tmp_path / "w.md").read_text().startswith("No change")


def test_nothing_to_compare_with(before_after, tmp_path):
    (_, pa), _ = before_after
    run_what_changed(current=str(pa), compare_with=None, md=str(tmp_path / "w.md"), csv=str(tmp_path / "w.csv"))
    assert "no earlier snapshot to compare with" in (tmp_path / "w.md").read_text()
    assert what_changed.summary_sentence(what_changed.empty(), compared=False).startswith("there is no earlier")


def test_recorded_names_and_latest(tmp_path):
    assert snapshot.latest(tmp_path) is None
    for name in ("2026-01-05_aaa.json", "2026-11-30_bbb.json", "2025-12-31_ccc.json"):
        (tmp_path / name).write_text("{}")
    assert snapshot.latest(tmp_path).name == "2026-11-30_bbb.json"
    assert snapshot.recorded_name({"sheets": "0123456789abcdef"}, "2026-12-02") == "2026-12-02_0123456789ab.json"
    with pytest.raises(snapshot.SnapshotError, match="snapshot without the key"):
        snapshot.load(tmp_path / "2026-01-05_aaa.json")


# ------------------------------------------------------------------------------------ the rules, in a workflow

def _snakemake(project, *args):
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
                           str(project), "--cores", "1", *args], cwd=project, capture_output=True, text=True,
                          timeout=600)


def test_dry_run_compares_with_the_latest_recorded_snapshot(tmp_path):
    """`snakemake -n`: the what_changed job reads the latest snapshot of update.snapshots_dir (none: no input)."""
    project = tmp_path / "review"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("results", ".snakemake", "__pycache__"))
    target = "results/update/what_changed.md"
    first = _snakemake(project, "-n", "-p", target)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "rule snapshot:" in first.stdout and "rule what_changed:" in first.stdout
    (project / "data" / "snapshots").mkdir()
    for name in ("2026-01-05_aaaaaaaaaaaa.json", "2026-03-01_bbbbbbbbbbbb.json"):
        (project / "data" / "snapshots" / name).write_text("{}")
    second = _snakemake(project, "-n", "-p", target)
    assert second.returncode == 0, second.stderr[-3000:]
    job = second.stdout[second.stdout.index("rule what_changed:"):]
    assert "data/snapshots/2026-03-01_bbbbbbbbbbbb.json" in job.split("output:")[0]


def test_second_review_run_records_and_an_unchanged_rerun_reports_no_change(second_review_run, tmp_path):
    """The second review after its run: nothing to compare with; record the snapshot with the script; the rerun
    of what_changed (the only job that reruns) reports no change."""
    project = tmp_path / "review"
    shutil.copytree(second_review_run, project, symlinks=True)
    md = project / "results" / "update" / "what_changed.md"
    assert md.read_text().startswith(what_changed.NOTHING_TO_COMPARE)
    snap = snapshot.load(project / "results" / "snapshot" / "snapshot.json")
    studies = pd.read_csv(project / "data" / "raw" / "studies.csv", dtype=str)
    assert sorted(snap["studies"]) == sorted(studies["study_id"])
    assert any(e["evidence"] == "pooled" and e["mcse"] > 0 for e in snap["estimates"].values())
    for s in yaml.safe_load((project / "config.yaml").read_text())["study_sets"]:
        counts = pd.read_csv(project / "results" / "tables" / s / "prisma_counts.csv")
        assert (project / "results" / "figures" / s / "prisma.svg").is_file()
        boxes = dict(zip(counts["box"], counts["count"]))
        assert boxes["original.records"] == len(studies)
    recorded = subprocess.run([sys.executable, str(ROOT / "workflow" / "scripts" / "record_snapshot.py"),
                               "--date", "2026-01-01"], cwd=project, capture_output=True, text=True)
    assert recorded.returncode == 0 and "recorded" in recorded.stdout, recorded.stderr
    assert len(list((project / "data" / "snapshots").glob("2026-01-01_*.json"))) == 1
    rerun = _snakemake(project, "results/update/what_changed.md")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "rule fit_model" not in rerun.stderr and "rule snapshot" not in rerun.stderr
    assert md.read_text().startswith("No change")
