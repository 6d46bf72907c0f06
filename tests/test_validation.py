"""Malformed extraction sheets give errors naming the file, sheet, row, column and what was expected.

Each case breaks one cell (or the header) of the valid fixture, as CSV and as an Excel workbook, and asserts the
exact location and expectation of the reported problem.
"""

from __future__ import annotations

import pandas as pd
import pytest
from openpyxl import Workbook

from conftest import FIXTURE_REVIEW, ROOT, read_fixture, review_config
from timecourse_meta.data import sheets as sheets_mod
from timecourse_meta.data import validation
from timecourse_meta.data.validation import ValidationError


def _as_excel_value(text: str):
    """Numbers as numbers, as an author typing into Excel would leave them."""
    try:
        number = float(text)
    except ValueError:
        return text if text != "" else None
    return int(number) if number.is_integer() and "." not in text else number


def write(frames: dict, tmp_path, fmt: str):
    """Write the three tables as CSV files or one workbook; return read_sheets kwargs."""
    if fmt == "csv":
        for name, frame in frames.items():
            frame.to_csv(tmp_path / f"{name}.csv", index=False)
        return {"raw_dir": tmp_path}
    book = Workbook()
    book.remove(book.active)
    for name, frame in frames.items():
        ws = book.create_sheet(name)
        ws.append(list(frame.columns))
        for values in frame.itertuples(index=False):
            ws.append([_as_excel_value(v) for v in values])
    path = tmp_path / "extraction.xlsx"
    book.save(path)
    return {"workbook": path}


def fixture_frames():
    return {name: read_fixture(name) for name in sheets_mod.SHEETS}


def set_cell(sheet, row, column, value):
    """Mutation: data row `row` (0-based) of `sheet` gets `value` in `column`."""
    def mutate(frames):
        frames[sheet].loc[row, column] = value
    return mutate


def drop_column(sheet, column):
    def mutate(frames):
        frames[sheet] = frames[sheet].drop(columns=[column])
    return mutate


def add_column(sheet, column):
    def mutate(frames):
        frames[sheet][column] = ""
    return mutate


def copy_row(sheet, row, **changes):
    def mutate(frames):
        frame = frames[sheet]
        new = frame.iloc[[row]].copy()
        for k, v in changes.items():
            new[k] = v
        frames[sheet] = pd.concat([frame, new], ignore_index=True)
    return mutate


# (id, mutation, sheet, spreadsheet row (0 = header), column, text expected in the message)
CASES = [
    ("sd_negative", set_cell("outcomes", 0, "sd", "-1300"), "outcomes", 2, "sd", "a number > 0"),
    ("sd_zero", set_cell("outcomes", 1, "sd", "0"), "outcomes", 3, "sd", "a number > 0"),
    ("n_zero", set_cell("outcomes", 0, "n", "0"), "outcomes", 2, "n", "a whole number >= 1"),
    ("n_fraction", set_cell("outcomes", 1, "n", "2.5"), "outcomes", 3, "n", "a whole number"),
    ("mean_text", set_cell("outcomes", 1, "mean", "about 900"), "outcomes", 3, "mean", "a number"),
    ("events_over_total", set_cell("outcomes", 4, "events", "25"), "outcomes", 6, "events", "events <= total"),
    ("q1_above_median", set_cell("outcomes", 2, "q1", "15"), "outcomes", 4, "median", "min <= q1 <= median"),
    ("min_above_median", set_cell("outcomes", 3, "min", "7"), "outcomes", 5, "median", "a value >= min"),
    ("time_negative", set_cell("outcomes", 1, "time_value", "-3"), "outcomes", 3, "time_value", ">= 0"),
    ("time_unit_unknown", set_cell("outcomes", 1, "time_unit", "years"), "outcomes", 3, "time_unit",
     "one of months, weeks, days"),
    ("study_unknown", set_cell("outcomes", 0, "study_id", "gamma2022"), "outcomes", 2, "study_id",
     "listed in the studies sheet"),
    ("outcome_unknown", set_cell("outcomes", 0, "outcome", "proteinuria"), "outcomes", 2, "outcome",
     "outcome dictionary"),
    ("unit_not_allowed", set_cell("outcomes", 0, "unit", "g/L"), "outcomes", 2, "unit", "mg/24 h"),
    ("statistic_unknown", set_cell("outcomes", 0, "statistic", "mean_sem"), "outcomes", 2, "statistic",
     "one of mean_sd"),
    ("statistic_missing_value", set_cell("outcomes", 0, "sd", ""), "outcomes", 2, "sd",
     "statistic 'mean_sd' needs mean, sd"),
    ("statistic_extra_value", set_cell("outcomes", 0, "median", "2400"), "outcomes", 2, "median",
     "does not use 'median'"),
    ("row_id_duplicate", set_cell("outcomes", 1, "row_id", "alpha2020-001"), "outcomes", 3, "row_id", "unique"),
    ("usable_duplicate", copy_row("outcomes", 0, row_id="alpha2020-099"), "outcomes", 10, "row_id",
     "duplicate of row 2"),
    ("missing_column", drop_column("outcomes", "cohort"), "outcomes", 0, "cohort", "this column in the header"),
    ("unknown_column", add_column("outcomes", "comment"), "outcomes", 0, "comment", "only the columns"),
    ("reason_missing", set_cell("outcomes", 7, "not_usable_reason", ""), "outcomes", 9, "not_usable_reason",
     "a reason"),
    ("arm_unknown", set_cell("outcomes", 6, "arm", "placebo"), "outcomes", 8, "arm", "one of MSCT, control"),
    ("percent_over_100", set_cell("outcomes", 4, "percent", "145"), "outcomes", 6, "percent", "<= 100"),
    ("percent_inconsistent", set_cell("outcomes", 4, "percent", "55"), "outcomes", 6, "percent", "about 45.0"),
    ("ci_reversed", set_cell("outcomes", 5, "ci_upper", "-4"), "outcomes", 7, "ci_upper", ">= ci_lower"),
    ("implausible_unit", set_cell("outcomes", 0, "unit", "g/24 h"), "outcomes", 2, "mean", "is the unit right?"),
    ("source_not_url", set_cell("outcomes", 2, "source_url", "see paper"), "outcomes", 4, "source_url",
     "matching ^https?://"),
    ("required_empty", set_cell("outcomes", 3, "locator", ""), "outcomes", 5, "locator", "this column is required"),
    ("design_unknown", set_cell("studies", 1, "design", "RCT"), "studies", 3, "design", "one of rct, single_arm"),
    ("n_msct_not_a_count", set_cell("studies", 0, "n_msct", "0"), "studies", 2, "n_msct", ">= 1"),
    ("study_id_duplicate", set_cell("studies", 1, "study_id", "alpha2020"), "studies", 3, "study_id", "unique"),
    ("judgement_unknown", set_cell("appraisal", 0, "judgement", "probably"), "appraisal", 2, "judgement",
     "one of yes, no, unclear, not_reported"),
    ("appraisal_unknown_study", set_cell("appraisal", 1, "study_id", "delta2019"), "appraisal", 3, "study_id",
     "listed in the studies sheet"),
    ("change_at_baseline", set_cell("outcomes", 5, "time_value", "0"), "outcomes", 7, "time_value",
     "follow-up time > 0"),
    # linkage columns of the studies sheet (which reports describe the same patients)
    ("overlap_unknown", set_cell("studies", 0, "overlap", "duplicate"), "studies", 2, "overlap",
     "one of none, same_patients, subset, later_follow_up, partial, unclear"),
    ("overlap_basis_unknown", set_cell("studies", 1, "overlap_basis", "guess"), "studies", 3, "overlap_basis",
     "one of stated, judgement"),
    ("patient_group_empty", set_cell("studies", 1, "patient_group", ""), "studies", 3, "patient_group",
     "this column is required"),
    ("patient_group_not_an_id", set_cell("studies", 0, "patient_group", "Nanjing group"), "studies", 2,
     "patient_group", "matching ^[a-z0-9_]+$"),
    ("judgement_without_reason", set_cell("studies", 0, "overlap_reason", ""), "studies", 2, "overlap_reason",
     "because overlap_basis is 'judgement'"),
    ("none_in_shared_group", set_cell("studies", 1, "patient_group", "alpha2020"), "studies", 3, "overlap",
     "an overlap other than 'none': reports alpha2020 share patient group 'alpha2020'"),
    ("lone_report_other_group_id", set_cell("studies", 1, "patient_group", "trial_x"), "studies", 3,
     "patient_group", "'beta2021' (a report alone in its patient group uses its own study_id)"),
    ("subset_of_nobody", set_cell("studies", 1, "overlap", "subset"), "studies", 3, "overlap",
     "'none' or 'unclear': no other report is in patient group 'beta2021'"),
    ("overlap_without_source", set_cell("studies", 1, "overlap", "unclear"), "studies", 3, "overlap_source",
     "the URL of the source the overlap 'unclear' rests on"),
    ("overlap_source_not_url", set_cell("studies", 0, "overlap_source", "the paper"), "studies", 2,
     "overlap_source", "matching ^https?://"),
]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_malformed_sheet_names_location(case, fmt, tmp_path, fixture_dictionary):
    _, mutate, sheet, row, column, expected = case
    frames = fixture_frames()
    mutate(frames)
    location = write(frames, tmp_path, fmt)
    with pytest.raises(ValidationError) as info:
        validation.validate(sheets_mod.read_sheets(**location), fixture_dictionary, review_config())
    matching = [p for p in info.value.problems
                if p.row == row and p.column == column and (sheet in p.where)]
    assert matching, f"no problem at row {row}, column {column}:\n{info.value}"
    problem = matching[0]
    assert expected in problem.expected
    text = str(info.value)
    if fmt == "csv":
        assert f"{sheet}.csv" in problem.where
    else:
        assert problem.where.endswith(f"extraction.xlsx, sheet '{sheet}'")
    where = "header" if row == 0 else f"row {row}"
    assert f"{problem.where}, {where}, column '{column}'" in text


def test_valid_fixture_passes_as_csv_and_xlsx(tmp_path, fixture_dictionary):
    csv_tables = validation.validate(sheets_mod.read_sheets(**write(fixture_frames(), tmp_path, "csv")),
                                     fixture_dictionary, review_config())
    xlsx_dir = tmp_path / "x"
    xlsx_dir.mkdir()
    xlsx_tables = validation.validate(sheets_mod.read_sheets(**write(fixture_frames(), xlsx_dir, "xlsx")),
                                      fixture_dictionary, review_config())
    for name in sheets_mod.SHEETS:
        assert csv_tables[name].equals(xlsx_tables[name]), name
    assert csv_tables["outcomes"]["sd"].iloc[0] == 1300.0


def test_all_problems_reported_together(tmp_path, fixture_dictionary):
    frames = fixture_frames()
    for mutate in (set_cell("outcomes", 0, "sd", "-1"), set_cell("outcomes", 4, "events", "30"),
                   set_cell("studies", 1, "design", "trial"), set_cell("appraisal", 0, "judgement", "maybe")):
        mutate(frames)
    with pytest.raises(ValidationError) as info:
        validation.validate(sheets_mod.read_sheets(**write(frames, tmp_path, "csv")), fixture_dictionary,
                            review_config())
    located = {(p.row, p.column) for p in info.value.problems}
    assert {(2, "sd"), (6, "events"), (3, "design"), (2, "judgement")} <= located
    assert str(info.value).startswith(f"{len(info.value.problems)} problem(s)")


def test_missing_sheet_in_workbook_is_named(tmp_path, fixture_dictionary):
    frames = fixture_frames()
    del frames["appraisal"]
    location = write(frames, tmp_path, "xlsx")
    with pytest.raises(sheets_mod.SheetReadError, match="no sheet named 'appraisal'"):
        sheets_mod.read_sheets(**location)


def test_blank_rows_keep_spreadsheet_numbering(tmp_path, fixture_dictionary):
    path = tmp_path / "outcomes.csv"
    lines = (read_fixture("outcomes").to_csv(index=False)).splitlines()
    lines.insert(2, "")  # a blank line after the first data row
    path.write_text("\n".join(lines) + "\n")
    sheet = sheets_mod.read_csv_sheet(path, "outcomes")
    assert list(sheet.data[sheets_mod.ROW][:3]) == [2, 4, 5]


# ------------------------------------------------------------------ what the review's files decide

def _problems(tmp_path, frames, config, dictionary) -> list:
    with pytest.raises(ValidationError) as info:
        validation.validate(sheets_mod.read_sheets(**write(frames, tmp_path, "csv")), dictionary, config)
    return info.value.problems


def _vocabulary_without(tmp_path, design: str) -> str:
    import yaml
    doc = yaml.safe_load((ROOT / "data/review/vocabulary.yaml").read_text(encoding="utf-8"))
    del doc["designs"][design]
    path = tmp_path / "vocabulary.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return str(path)


def test_design_the_vocabulary_lacks_names_the_studies_file_and_the_vocabulary(tmp_path, fixture_dictionary):
    vocabulary = _vocabulary_without(tmp_path, "rct")
    config = review_config(data={"vocabulary": vocabulary})
    (tmp_path / "sheets").mkdir()
    problems = _problems(tmp_path / "sheets", fixture_frames(), config, fixture_dictionary)
    assert [str(p) for p in problems if p.column == "design"] == [
        f"{tmp_path / 'sheets' / 'studies.csv'}, row 3, column 'design': value 'rct'; expected one of single_arm, "
        f"case_series, cohort, nonrandomised_trial, controlled_trial (the designs of {vocabulary})"]


def test_arm_ids_and_patient_columns_come_from_the_config(tmp_path, fixture_dictionary):
    frames = fixture_frames()
    frames["studies"] = frames["studies"].rename(columns={"n_msct": "n_treated"})
    arms = {"intervention": {"id": "treated", "n_column": "n_treated"}}
    problems = _problems(tmp_path, frames, review_config(review={**FIXTURE_REVIEW, "arms": {
        **FIXTURE_REVIEW["arms"], **arms}}), fixture_dictionary)
    arm = [p for p in problems if p.column == "arm"]
    assert arm and all(p.value == "MSCT" and p.expected == "one of treated, control (the arm ids of config "
                       "review.arms)" for p in arm)
    assert not [p for p in problems if p.column in ("n_treated", "n_msct")]  # the renamed count column is known


def test_unknown_studies_column_is_named_with_where_to_declare_it(tmp_path, fixture_dictionary):
    frames = fixture_frames()
    frames["studies"]["funding"] = ""
    problems = _problems(tmp_path, frames, review_config(), fixture_dictionary)
    (problem,) = [p for p in problems if p.column == "funding"]
    assert problem.row == 0 and "or one listed under study_fields in" in problem.expected
    assert str(ROOT / "data/review/vocabulary.yaml") in problem.expected


def test_review_study_fields_take_required_and_allowed_from_the_vocabulary(tmp_path, fixture_dictionary):
    frames = fixture_frames()
    frames["studies"].loc[0, "review_inclusion"] = "maybe"
    frames["studies"].loc[1, "review_inclusion_confidence"] = ""
    problems = {(p.row, p.column): p for p in _problems(tmp_path, frames, review_config(), fixture_dictionary)}
    assert problems[(2, "review_inclusion")].expected.startswith(
        "one of likely_included, possibly_included, candidate, not_applicable (study_fields of")
    assert "this column is required" in problems[(3, "review_inclusion_confidence")].expected


def test_estimate_statistics_take_no_n_and_need_their_spread(tmp_path, fixture_dictionary):
    frames = fixture_frames()
    frames["outcomes"].loc[0, ["statistic", "sd"]] = ["estimate_se", ""]  # n = 20 kept: that is mean_se
    frames["outcomes"].loc[1, ["statistic", "sd", "n"]] = ["estimate_variance", "", ""]
    problems = {(p.row, p.column): p.expected for p in _problems(tmp_path, frames, review_config(),
                                                                  fixture_dictionary)}
    assert problems[(2, "se")] == "a value: statistic 'estimate_se' needs mean, se"
    assert problems[(2, "n")].startswith("an empty cell: statistic 'estimate_se' does not use 'n'")
    assert problems[(3, "variance")] == "a value: statistic 'estimate_variance' needs mean, variance"


def test_enrolled_n_check_reads_the_arm_column_the_config_names(tmp_path, fixture_dictionary):
    frames = fixture_frames()
    frames["studies"] = frames["studies"].rename(columns={"n_msct": "n_treated"})
    frames["studies"].loc[0, "n_treated"] = "19"  # alpha2020 reports n = 20 at its visits
    frames["outcomes"]["arm"] = frames["outcomes"]["arm"].replace({"MSCT": "treated"})
    arms = {**FIXTURE_REVIEW["arms"], "intervention": {"id": "treated", "n_column": "n_treated"}}
    problems = _problems(tmp_path, frames, review_config(review={**FIXTURE_REVIEW, "arms": arms}),
                         fixture_dictionary)
    assert (4, "n", "at most the 19 patients enrolled in the treated arm (n_treated of alpha2020 in the studies "
                    "sheet, row 2)") in {(p.row, p.column, p.expected) for p in problems}


def test_an_analysed_study_without_its_patient_count_is_a_warning_an_excluded_one_is_not(tmp_path,
                                                                                          fixture_dictionary):
    """A patient count may be unreported (a registry record, a trial known from a table): a warning when the study
    is analysed, nothing when it is listed with an exclusion_reason; a search the config does not define is an
    error."""
    frames = fixture_frames()
    frames["studies"].loc[0, "n_msct"] = ""
    frames["studies"].loc[1, "n_msct"] = ""
    frames["studies"]["exclusion_reason"] = ["", "registry_no_results"] + [""] * (len(frames["studies"]) - 2)
    frames["studies"]["search"] = ["original", "later"] + [""] * (len(frames["studies"]) - 2)
    config = review_config(review={**FIXTURE_REVIEW, "searches": {"original": {"description": "first"}}})
    notices = []
    with pytest.raises(ValidationError) as info:
        validation.validate(sheets_mod.read_sheets(**write(frames, tmp_path, "csv")), fixture_dictionary, config,
                            warnings=notices)
    problems = info.value.problems
    assert [(p.row, p.column, p.value) for p in problems if p.column == "search"] == [(3, "search", "later")]
    assert [(n.row, n.column) for n in notices if "patient count" in n.message] == [(2, "n_msct")]
    frames["studies"].loc[1, "search"] = "original"
    notices = []
    validation.validate(sheets_mod.read_sheets(**write(frames, tmp_path, "csv")), fixture_dictionary, config,
                        warnings=notices)
    assert [(n.row, n.column) for n in notices if "patient count" in n.message] == [(2, "n_msct")]
