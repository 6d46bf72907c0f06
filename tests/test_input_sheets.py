"""Realistic input mistakes, one per kind, in CSV and (where it applies) xlsx: each stops with a message naming
the file, sheet, row, column and expectation, and nothing is written under results/; plausible oddities become
warnings listed in the report and in warnings.csv.

Each case runs the validation step's own function (steps.data.run_validate) on a temporary copy of the valid
fixture with one defect, so it is fast and covers exactly what the workflow job runs.
"""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest
from openpyxl import Workbook

from conftest import FIXTURE_REVIEW, read_fixture, review_config
from timecourse_meta.steps import data as data_steps
from timecourse_meta.data import sheets as sheets_mod
from timecourse_meta.data.sheets import SheetReadError
from timecourse_meta.data.validation import ValidationError

INPUT_ERRORS = (SheetReadError, ValidationError)


def _excel_value(text: str):
    try:
        number = float(text)
    except ValueError:
        return text if text != "" else None
    return int(number) if number.is_integer() and "." not in text else number


def frames() -> dict[str, pd.DataFrame]:
    return {name: read_fixture(name) for name in sheets_mod.SHEETS}


def csv_text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, lineterminator="\n")


def write_csv(tables: dict, folder, text_hook=None):
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        text = csv_text(frame)
        if text_hook and name in text_hook:
            text = text_hook[name](text)
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    return {"raw_dir": str(folder), "workbook": None}


def write_xlsx(tables: dict, path, cell_hook=None, title: dict | None = None):
    """A workbook as an author leaves it: numbers as numbers. cell_hook(sheet_name, ws) edits cells after writing;
    title = {sheet: text} puts a merged title row above the header."""
    book = Workbook()
    book.remove(book.active)
    for name, frame in tables.items():
        ws = book.create_sheet(name)
        if title and name in title:
            ws.append([title[name]])
            ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(frame.columns))
        ws.append(list(frame.columns))
        for values in frame.itertuples(index=False):
            ws.append([_excel_value(v) for v in values])
        if cell_hook:
            cell_hook(name, ws)
    book.save(path)
    return {"raw_dir": str(path.parent), "workbook": str(path)}


def settings(location: dict, **extra) -> dict:
    return review_config(**{"data": location, "outcomes": ["proteinuria_24h", "sledai"],
                            "binary_outcomes": ["renal_remission"], **extra})


def run(tmp_path, location: dict, **extra):
    """Run the validation step into tmp_path/results; return (error or None, results folder)."""
    results = tmp_path / "results"
    validated = results / "validated"
    try:
        data_steps.run_validate(settings=settings(location, **extra), report=str(validated / "report.md"),
                                warnings=str(validated / "warnings.csv"), tables_dir=str(validated))
    except INPUT_ERRORS as exc:
        return exc, results
    return None, results


def written(results) -> list[str]:
    return sorted(str(p.relative_to(results)) for p in results.rglob("*") if p.is_file()) if results.exists() else []


def assert_stops(tmp_path, location, file: str, sheet: str | None, row: int | None, column: str | None,
                 expected: str, **extra) -> str:
    """The run fails with an input error naming file, sheet, row, column and expectation; nothing is written."""
    error, results = run(tmp_path, location, **extra)
    assert error is not None, "the defect got through silently"
    text = str(error)
    where = f"{file}, sheet '{sheet}'" if sheet else file
    if column is not None:
        row_text = "header" if row == 0 else f"row {row}"
        assert f"{where}, {row_text}, column '{column}'" in text, text
    elif row is not None:
        assert f"{where}: line {row}" in text or f"{where}: row {row}" in text, text
    else:
        assert where in text, text
    assert expected in text, text
    assert written(results) == [], written(results)
    return text


def set_cell(tables, sheet, row, column, value):
    tables[sheet] = tables[sheet].copy()
    tables[sheet].loc[row, column] = value
    return tables


def place(tmp_path, tables, fmt):
    """Write the tables as CSV files or one workbook; return (location, the file named in messages, sheet)."""
    if fmt == "csv":
        loc = write_csv(tables, tmp_path / "raw")
        return loc, lambda name: str(tmp_path / "raw" / f"{name}.csv"), lambda name: None
    loc = write_xlsx(tables, tmp_path / "extraction.xlsx")
    return loc, lambda name: str(tmp_path / "extraction.xlsx"), lambda name: name


FORMATS = ["csv", "xlsx"]


# --- locale artefacts: a comma or a separator in a number is an error with the exact cell, never reread ---

@pytest.mark.parametrize("fmt", FORMATS)
def test_decimal_comma_is_an_error_naming_both_readings(tmp_path, fmt):
    loc, file, sheet = place(tmp_path, set_cell(frames(), "outcomes", 1, "sd", "2,5"), fmt)
    text = assert_stops(tmp_path, loc, file("outcomes"), sheet("outcomes"), 3, "sd", "no thousands separator")
    assert "write 2.5 or 25" in text


@pytest.mark.parametrize("fmt", FORMATS)
def test_thousands_separator_is_not_reinterpreted(tmp_path, fmt):
    # '1,300' used to be read silently as 1300; in a decimal-comma locale it means 1.3
    loc, file, sheet = place(tmp_path, set_cell(frames(), "outcomes", 0, "sd", "1,300"), fmt)
    text = assert_stops(tmp_path, loc, file("outcomes"), sheet("outcomes"), 2, "sd", "'1,300' reads as a different")
    assert "1.300 or 1300" in text


def test_space_as_thousands_separator_is_an_error(tmp_path):
    loc, file, sheet = place(tmp_path, set_cell(frames(), "outcomes", 0, "mean", "2 500"), "csv")
    assert_stops(tmp_path, loc, file("outcomes"), None, 2, "mean", "write 2500")


@pytest.mark.parametrize("fmt", FORMATS)
def test_percent_sign_typed_into_a_number_cell(tmp_path, fmt):
    loc, file, sheet = place(tmp_path, set_cell(frames(), "outcomes", 4, "percent", "45%"), fmt)
    assert_stops(tmp_path, loc, file("outcomes"), sheet("outcomes"), 6, "percent", "without the % sign (write 45)")


def _outcomes_cell(ws, row: int, column: str):
    header = [c.value for c in ws[1]]
    return ws.cell(row=row, column=header.index(column) + 1)


def test_percent_formatted_xlsx_cell_is_an_error_not_a_fraction(tmp_path):
    def hook(name, ws):
        if name == "outcomes":
            cell = _outcomes_cell(ws, 6, "percent")
            cell.value, cell.number_format = 0.45, "0%"  # the author typed 45% into a percent-formatted cell
    loc = write_xlsx(frames(), tmp_path / "extraction.xlsx", hook)
    text = assert_stops(tmp_path, loc, loc["workbook"], "outcomes", 6, "percent", "formatted as a percentage")
    assert "stores 45% as 0.45" in text and "cell Z6" in text


def test_xlsx_formula_without_a_saved_result_is_named_with_its_cell(tmp_path):
    def hook(name, ws):
        if name == "outcomes":
            _outcomes_cell(ws, 3, "mean").value = "=M2*0.36"  # openpyxl saves formulas without calculating them
    loc = write_xlsx(frames(), tmp_path / "extraction.xlsx", hook)
    text = assert_stops(tmp_path, loc, loc["workbook"], "outcomes", 3, "mean", "formula without a saved result")
    assert "cell M3" in text and "=M2*0.36" in text


# --- title rows and row numbers as the spreadsheet shows them ---

@pytest.mark.parametrize("fmt", FORMATS)
def test_title_row_above_header_is_skipped_and_rows_keep_spreadsheet_numbers(tmp_path, fmt):
    tables = set_cell(frames(), "outcomes", 1, "sd", "-5")  # second data row: spreadsheet row 4 below a title
    if fmt == "csv":
        loc = write_csv(tables, tmp_path / "raw", {"outcomes": lambda t: "Outcome extraction, MSCT review,,\n" + t})
        file, sheet = loc["raw_dir"] + "/outcomes.csv", None
    else:
        loc = write_xlsx(tables, tmp_path / "extraction.xlsx", title={"outcomes": "Outcome extraction"})
        file, sheet = loc["workbook"], "outcomes"
    assert_stops(tmp_path, loc, file, sheet, 4, "sd", "a number > 0")
    read = sheets_mod.read_sheets(loc["raw_dir"], loc["workbook"])["outcomes"]
    assert read.header_row == 2 and "rows 1-1 above the column names on row 2 were skipped" in read.notes[0]


def test_row_after_a_multiline_quoted_cell_is_the_spreadsheet_row(tmp_path):
    tables = set_cell(frames(), "outcomes", 0, "notes", "first line\nsecond line\nthird line")
    tables = set_cell(tables, "outcomes", 1, "sd", "-5")  # spreadsheet row 3, file line 5
    loc = write_csv(tables, tmp_path / "raw")
    assert_stops(tmp_path, loc, loc["raw_dir"] + "/outcomes.csv", None, 3, "sd", "a number > 0")


def test_blank_first_line_is_skipped_and_numbering_kept(tmp_path):
    tables = set_cell(frames(), "studies", 1, "design", "trial")
    loc = write_csv(tables, tmp_path / "raw", {"studies": lambda t: "\n" + t})
    assert_stops(tmp_path, loc, loc["raw_dir"] + "/studies.csv", None, 4, "design", "one of rct, single_arm")


# --- encodings, delimiters and file types: one sentence saying what the file is and how to save it ---

def test_utf16_csv_says_what_it_is_and_how_to_save_it(tmp_path):
    loc = write_csv(frames(), tmp_path / "raw")
    path = tmp_path / "raw" / "outcomes.csv"
    path.write_bytes(path.read_text(encoding="utf-8").encode("utf-16"))
    assert_stops(tmp_path, loc, str(path), None, None, None, "UTF-16 text (Excel's 'Unicode Text'), not UTF-8; "
                 "save it from Excel as 'CSV UTF-8")


def test_latin1_csv_names_the_line_of_the_first_non_utf8_byte(tmp_path):
    loc = write_csv(frames(), tmp_path / "raw")
    path = tmp_path / "raw" / "outcomes.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace("abstract,", "abstract,µmol/L in the paper")  # third line of the file
    assert "µmol/L" in lines[2]
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    text = assert_stops(tmp_path, loc, str(path), None, 3, None, "Latin-1/Windows-1252")
    assert "byte 0xB5" in text and "CSV UTF-8" in text


def test_semicolon_csv_from_european_excel(tmp_path):
    loc = write_csv(frames(), tmp_path / "raw")
    path = tmp_path / "raw" / "studies.csv"
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";", lineterminator="\n").writerows(csv.reader(io.StringIO(path.read_text())))
    path.write_text(buffer.getvalue())
    assert_stops(tmp_path, loc, str(path), None, 1, None, "separated by ';', not commas")


def test_xlsx_renamed_to_csv(tmp_path):
    loc = write_csv(frames(), tmp_path / "raw")
    write_xlsx(frames(), tmp_path / "book.xlsx")
    (tmp_path / "raw" / "appraisal.csv").write_bytes((tmp_path / "book.xlsx").read_bytes())
    assert_stops(tmp_path, loc, str(tmp_path / "raw" / "appraisal.csv"), None, None, None,
                 "this is an Excel workbook (.xlsx) with a .csv name")


def test_csv_renamed_to_xlsx(tmp_path):
    loc = {"raw_dir": str(tmp_path), "workbook": str(tmp_path / "extraction.xlsx")}
    (tmp_path / "extraction.xlsx").write_text(csv_text(read_fixture("studies")))
    assert_stops(tmp_path, loc, loc["workbook"], None, None, None, "not an Excel workbook (it looks like a text/CSV")


# --- plausibility across sheets ---

@pytest.mark.parametrize("fmt", FORMATS)
def test_visit_n_above_enrolled_msct_arm(tmp_path, fmt):
    loc, file, sheet = place(tmp_path, set_cell(frames(), "outcomes", 0, "n", "25"), fmt)
    assert_stops(tmp_path, loc, file("outcomes"), sheet("outcomes"), 2, "n",
                 "at most the 20 patients enrolled in the MSCT arm (n_msct of alpha2020 in the studies sheet, row 2)")


@pytest.mark.parametrize("fmt", FORMATS)
def test_visit_n_above_enrolled_control_arm(tmp_path, fmt):
    loc, file, sheet = place(tmp_path, set_cell(frames(), "outcomes", 6, "n", "9"), fmt)
    assert_stops(tmp_path, loc, file("outcomes"), sheet("outcomes"), 8, "n",
                 "at most the 6 patients enrolled in the control arm (n_control of beta2021")


def test_event_total_above_enrolled(tmp_path):
    tables = set_cell(frames(), "outcomes", 4, "total", "25")
    tables = set_cell(tables, "outcomes", 4, "percent", "36")
    loc, file, sheet = place(tmp_path, tables, "csv")
    assert_stops(tmp_path, loc, file("outcomes"), None, 6, "total", "at most the 20 patients enrolled")


@pytest.mark.parametrize("fmt", FORMATS)
def test_visit_after_follow_up_is_a_warning_in_report_and_warnings_csv(tmp_path, fmt):
    loc, file, sheet = place(tmp_path, set_cell(frames(), "outcomes", 5, "time_value", "12"), fmt)
    error, results = run(tmp_path, loc)
    assert error is None, error
    warnings = pd.read_csv(results / "validated" / "warnings.csv", dtype=str, keep_default_na=False)
    assert list(warnings.columns) == ["file", "sheet", "row", "column", "value", "message"]
    hit = warnings[warnings["column"] == "time_value"]
    assert hit[["file", "sheet", "row", "value"]].values.tolist() == [[file("outcomes"), sheet("outcomes") or "",
                                                                      "7", "12"]]
    assert "after the follow-up of 6 months stated for beta2021" in hit["message"].iloc[0]
    assert "after the follow-up of 6 months" in (results / "validated" / "report.md").read_text()


@pytest.mark.parametrize("fmt", FORMATS)
def test_study_set_typo_is_an_error_with_the_likely_name(tmp_path, fmt):
    loc, file, sheet = place(tmp_path, set_cell(frames(), "studies", 0, "study_sets", "reveiw_2023;all_candidates"),
                             fmt)
    assert_stops(tmp_path, loc, file("studies"), sheet("studies"), 2, "study_sets",
                 "'reveiw_2023' looks like a typo of 'review_2023'")


def test_study_set_the_config_does_not_define_is_an_error(tmp_path):
    loc, file, sheet = place(tmp_path, set_cell(frames(), "studies", 1, "study_sets", "pilot_only"), "csv")
    assert_stops(tmp_path, loc, file("studies"), None, 3, "study_sets",
                 "set ids defined in config review.study_sets (review_2023, all_candidates); 'pilot_only' is not "
                 "defined there")


def test_study_in_no_analysed_set_is_a_warning(tmp_path):
    loc, file, sheet = place(tmp_path, set_cell(frames(), "studies", 1, "study_sets", "pilot_only"), "csv")
    defined = {"study_sets": {**FIXTURE_REVIEW["study_sets"], "pilot_only": {"name": "the pilot studies"}}}
    error, results = run(tmp_path, loc, review=defined)
    assert error is None, error
    warnings = pd.read_csv(results / "validated" / "warnings.csv", dtype=str, keep_default_na=False)
    hit = warnings[warnings["column"] == "study_sets"]
    assert hit[["file", "row", "value"]].values.tolist() == [[file("studies"), "3", "pilot_only"]]
    assert "study beta2021 is in no analysed study set" in hit["message"].iloc[0]


# --- empty inputs ---

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", ["studies", "outcomes"])
def test_sheet_with_only_its_header(tmp_path, fmt, name):
    tables = frames()
    tables[name] = tables[name].iloc[0:0]
    loc, file, sheet = place(tmp_path, tables, fmt)
    assert_stops(tmp_path, loc, file(name), sheet(name), 0, "(all)", "the sheet has only its header")


def test_configured_outcome_without_rows_is_a_warning_naming_it(tmp_path):
    loc, _, _ = place(tmp_path, frames(), "csv")
    error, results = run(tmp_path, loc, outcomes=["proteinuria_24h", "sledai", "serum_creatinine"])
    assert error is None, error
    warnings = pd.read_csv(results / "validated" / "warnings.csv", dtype=str, keep_default_na=False)
    hit = warnings[warnings["value"] == "serum_creatinine"]
    assert hit[["file", "column"]].values.tolist() == [["config", "outcomes"]]
    assert "no row of" in hit["message"].iloc[0] and "'no data'" in hit["message"].iloc[0]


def test_valid_fixture_writes_outputs_and_no_warnings(tmp_path):
    loc, _, _ = place(tmp_path, frames(), "csv")
    error, results = run(tmp_path, loc)
    assert error is None, error
    assert written(results) == ["validated/appraisal.csv", "validated/outcomes.csv", "validated/report.md",
                                "validated/studies.csv", "validated/warnings.csv"]
    assert pd.read_csv(results / "validated" / "warnings.csv").empty
    assert "## Warnings\n\nPlausible but worth a second look; not errors (also in warnings.csv).\n\nNone." in (
        results / "validated" / "report.md").read_text()


def test_unclosed_quote_names_the_row(tmp_path):
    loc = write_csv(frames(), tmp_path / "raw")
    path = tmp_path / "raw" / "appraisal.csv"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(",randomised,", ',"randomised,', 1)  # an opening quote never closed
    assert '"randomised' in lines[2]
    path.write_text("\n".join(lines) + "\n")
    assert_stops(tmp_path, loc, str(path), None, 3, None, "expected each quoted cell to end with a closing quote")


def test_damaged_workbook_is_a_message_not_a_traceback(tmp_path):
    write_xlsx(frames(), tmp_path / "good.xlsx")
    (tmp_path / "extraction.xlsx").write_bytes((tmp_path / "good.xlsx").read_bytes()[:2000])  # truncated copy
    loc = {"raw_dir": str(tmp_path), "workbook": str(tmp_path / "extraction.xlsx")}
    assert_stops(tmp_path, loc, loc["workbook"], None, None, None, "cannot be opened as an Excel workbook")


def test_number_turned_into_a_date_by_excel(tmp_path):
    def hook(name, ws):
        if name == "outcomes":
            import datetime
            _outcomes_cell(ws, 2, "time_value").value = datetime.datetime(2026, 3, 6)
    loc = write_xlsx(frames(), tmp_path / "extraction.xlsx", hook)
    assert_stops(tmp_path, loc, loc["workbook"], "outcomes", 2, "time_value", "turned what was typed into a date")
