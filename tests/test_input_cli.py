"""Input errors through the command line, as a user meets them: `snakemake` on a copy of the project whose data or
config has one defect. The output names the file, row and column, holds no Python traceback, and nothing under
results/ but the step's log is written. Validation runs in a job, so these run the validate target (not -n)."""

from __future__ import annotations

import csv
import shutil

import pytest
import yaml

from conftest import ROOT
from timecourse_meta.data import sheets as sheets_mod
from test_workflow import SKIP, snakemake

VALIDATE = "results/validated/report.md"


@pytest.fixture
def project(tmp_path):
    target = tmp_path / "project"
    shutil.copytree(ROOT, target, ignore=SKIP)
    return target


def written(project) -> list[str]:
    results = project / "results"
    return sorted(str(p.relative_to(results)) for p in results.rglob("*") if p.is_file()) if results.exists() else []


def edit_cell(project, sheet: str, column: str, value: str, where=lambda row: True) -> int:
    """Set `column` of the first data row matching `where` in data/raw/<sheet>.csv; return its spreadsheet row."""
    path = project / "data" / "raw" / f"{sheet}.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    index = next(i for i, r in enumerate(rows[1:], start=1) if where(dict(zip(header, r))))
    rows[index][header.index(column)] = value
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return index + 1


def output(result) -> str:
    return result.stdout + result.stderr


def assert_clean_failure(result, project, *expected: str, logs_only=True):
    text = output(result)
    assert result.returncode != 0, text[-2000:]
    assert "Traceback" not in text, text[-4000:]
    for part in expected:
        assert part in text, text[-4000:]
    if logs_only:
        assert all(p.startswith("logs/") for p in written(project)), written(project)


def test_thousands_separator_through_the_cli(project):
    row = edit_cell(project, "outcomes", "sd", "1,300", lambda r: r["statistic"] == "mean_sd")
    result = snakemake(project, VALIDATE)
    assert_clean_failure(result, project, f"data/raw/outcomes.csv, row {row}, column 'sd': value '1,300'",
                         "write 1.300 or 1300")
    assert "column 'sd'" in (project / "results/logs/data/validate.log").read_text()


def test_visit_n_above_enrolled_through_the_cli(project):
    studies = {r["study_id"]: r for r in csv.DictReader((project / "data/raw/studies.csv").open(encoding="utf-8"))}
    outcomes = list(csv.DictReader((project / "data/raw/outcomes.csv").open(encoding="utf-8")))
    target = next(r for r in outcomes if r["arm"] == "MSCT" and r["n"])
    enrolled = int(studies[target["study_id"]]["n_msct"])
    row = edit_cell(project, "outcomes", "n", str(enrolled + 5), lambda r: r["row_id"] == target["row_id"])
    result = snakemake(project, VALIDATE)
    assert_clean_failure(result, project, f"data/raw/outcomes.csv, row {row}, column 'n': value '{enrolled + 5}'",
                         f"at most the {enrolled} patients enrolled in the MSCT arm")


def test_xlsx_renamed_to_csv_through_the_cli(project):
    frames = {name: __import__("pandas").read_csv(project / f"data/raw/{name}.csv", dtype=str, keep_default_na=False)
              for name in sheets_mod.SHEETS}
    sheets_mod.write_workbook(frames, project / "book.xlsx")
    shutil.move(project / "book.xlsx", project / "data/raw/studies.csv")
    result = snakemake(project, VALIDATE)
    assert_clean_failure(result, project, "data/raw/studies.csv: this is an Excel workbook (.xlsx) with a .csv name")


def test_tab_in_config_yaml_names_line_and_column(project):
    text = (project / "config.yaml").read_text().replace("  chains: 4", "\tchains: 4")
    (project / "config.yaml").write_text(text)
    line = text.splitlines().index("\tchains: 4") + 1
    result = snakemake(project, "-n", VALIDATE)
    assert_clean_failure(result, project, f"config.yaml: line {line}, column 1: a tab character")


def test_missing_data_folder_and_unknown_outcome_are_named_before_any_job(project):
    cfg = yaml.safe_load((project / "config.yaml").read_text())
    cfg["data"]["raw_dir"] = "data/raw_v2"
    cfg["outcomes"] = [*cfg["outcomes"], "proteinuria"]
    (project / "other.yaml").write_text(yaml.safe_dump(cfg))
    result = snakemake(project, VALIDATE, "--configfile", "other.yaml")
    assert_clean_failure(result, project, "config.yaml + other.yaml: key 'data.raw_dir' = \"data/raw_v2\": folder "
                                          "not found", "key 'outcomes' item \"proteinuria\": not in the outcome "
                                          "dictionary")
    assert written(project) == []
