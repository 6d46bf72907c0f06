"""Validate the raw extraction sheets and report every problem at once.

Each problem names the file (and sheet for a workbook), the row as a spreadsheet user sees it, the column, the
bad value and what was expected, so a review author can fix the sheet without reading code. Column-level rules
(types, allowed values, ranges, required, unique) are pandera schemas; rules that span columns or sheets
(statistic completeness, ordering of quantiles, referential integrity, duplicates) are checked row by row here.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa

from timecourse_meta.data import linkage
from timecourse_meta.data.columns import (STATISTICS, TIME_UNITS, VALUE_COLUMNS, Col, number_problem,
                                          parse_number, sheet_columns)
from timecourse_meta.data.dictionary import UNIT_NOT_REPORTED, Outcome
from timecourse_meta.data.sheets import ROW, Sheet
from timecourse_meta.core.errors import EngineError
from timecourse_meta.core import review
from timecourse_meta.core.review import Arms


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with one cell (or row) of one sheet."""

    where: str  # file, or file + sheet
    row: int  # spreadsheet row (header = 1); 0 for the whole sheet
    column: str
    value: str
    expected: str

    def __str__(self) -> str:
        row = f"row {self.row}" if self.row else "header"
        value = f"value {self.value!r}" if self.value != "" else "empty cell"
        return f"{self.where}, {row}, column '{self.column}': {value}; expected {self.expected}"


class ValidationError(EngineError, ValueError):
    """The sheets have problems; `problems` holds all of them."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        lines = "\n  - ".join(str(p) for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the extraction sheets:\n  - {lines}")


@dataclass
class Checked:
    """Parsed sheets (typed columns) and the problems found."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def _pandera_schema(columns: dict[str, Col]) -> pa.DataFrameSchema:
    spec = {}
    for name, col in columns.items():
        checks = []
        if col.allowed:
            checks.append(pa.Check.isin(list(col.allowed), error=col.expected()))
        if col.pattern:
            checks.append(pa.Check.str_matches(col.pattern, error=col.expected()))
        if col.minimum is not None:
            check = pa.Check.gt if col.exclusive_minimum else pa.Check.ge
            checks.append(check(col.minimum, error=col.expected()))
        if col.maximum is not None:
            checks.append(pa.Check.le(col.maximum, error=col.expected()))
        dtype = "float64" if col.kind in ("number", "integer") else None
        spec[name] = pa.Column(dtype, checks=checks, nullable=not col.required, unique=col.unique, required=False)
    return pa.DataFrameSchema(spec)


def check_columns(sheet: Sheet, columns: dict[str, Col],
                  unknown_hint: str = "") -> tuple[pd.DataFrame, list[Problem]]:
    """Header, types, allowed values, ranges, required cells and unique ids of one sheet (`columns`: its entry
    of `sheet_columns`). The typed table keeps the sheet's column order; a column that may be left out of the
    header (`in_header` false) is added, empty, at the end."""
    raw = sheet.data
    where = sheet.where()
    problems = []
    present = [c for c in raw.columns if c != ROW]
    for name, col in columns.items():
        if name not in present and col.in_header:
            problems.append(Problem(where, 0, name, "", "this column in the header (see docs/extraction_sheets.md)"))
    for name in present:
        if name not in columns:
            problems.append(Problem(where, 0, name, name, unknown_hint or f"only the columns {', '.join(columns)}"))
    order = [c for c in present if c in columns] + [c for c in columns if c not in present]
    flagged = {(i.row, i.column) for i in sheet.issues}
    problems += [Problem(where, i.row, i.column, i.value, i.expected) for i in sheet.issues]
    if raw.empty:
        problems.append(Problem(where, 0, "(all)", "", f"at least one data row below the column names on row "
                                                      f"{sheet.header_row}; the sheet has only its header"))
    parsed = pd.DataFrame({ROW: raw[ROW].to_numpy()}, index=raw.index)
    for name in order:
        col = columns[name]
        if name not in raw:
            if not col.in_header:
                parsed[name] = (pd.Series([None] * len(raw), index=raw.index, dtype=object) if col.kind == "text"
                                else pd.array([np.nan] * len(raw), dtype="float64"))
            continue
        text = raw[name].astype(str)
        if col.kind == "text":
            parsed[name] = pd.Series([t if t != "" else None for t in text], index=raw.index, dtype=object)
            continue
        values = [parse_number(t, col.kind) for t in text]
        for idx, (t, v) in enumerate(zip(text, values)):
            row = int(raw[ROW].iloc[idx])
            if (row, name) in flagged:
                values[idx] = math.nan  # a cell the reader distrusts is reported once and never used
            elif v is not None and math.isnan(v):
                problems.append(Problem(where, row, name, t, number_problem(t, col) or col.expected()))
        parsed[name] = pd.array([np.nan if v is None or math.isnan(v) else v for v in values], dtype="float64")
    bad_type = {(p.row, p.column) for p in problems}
    try:
        _pandera_schema({k: v for k, v in columns.items() if k in parsed}).validate(parsed, lazy=True)
    except pa.errors.SchemaErrors as exc:
        for case in exc.failure_cases.itertuples():
            if case.index is None or (isinstance(case.index, float) and math.isnan(case.index)):
                continue
            row = int(parsed.loc[case.index, ROW])
            col = columns[case.column]
            if (row, case.column) in bad_type or (row, case.column) in flagged:
                continue  # already reported as not a number
            if case.check == "not_nullable":
                expected = f"a value ({col.expected()}); this column is required"
            elif case.check == "field_uniqueness":
                expected = "a value not used in any other row (it must be unique)"
            else:
                expected = col.expected()
            problems.append(Problem(where, row, case.column, str(raw.loc[case.index, case.column]), expected))
    return parsed, problems


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_outcome_rows(sheet: Sheet, table: pd.DataFrame, studies: pd.DataFrame,
                       dictionary: dict[str, Outcome], reported: set | None = None) -> list[Problem]:
    """Rules that span columns or sheets: statistic completeness, order of quantiles, references, duplicates."""
    where = sheet.where()
    reported = reported or set()
    problems: list[Problem] = []
    study_ids = set(studies["study_id"].dropna()) if "study_id" in studies else set()
    has = lambda r, c: c in r and r[c] is not None and not (isinstance(r[c], float) and math.isnan(r[c]))  # noqa: E731
    seen: dict[tuple, int] = {}
    for _, r in table.iterrows():
        row = int(r[ROW])
        def add(column, expected, row=row, r=r):
            if (row, column) not in reported:  # a cell already reported (e.g. not a number) is not reported twice
                problems.append(Problem(where, row, column, _fmt(r.get(column)), expected))
        if has(r, "study_id") and study_ids and r["study_id"] not in study_ids:
            add("study_id", "a study_id listed in the studies sheet")
        outcome = dictionary.get(r["outcome"]) if has(r, "outcome") else None
        if has(r, "outcome") and outcome is None:
            add("outcome", "an outcome name from the outcome dictionary (data/review/outcomes.yaml)")
        if outcome is not None and has(r, "unit") and r["unit"] != UNIT_NOT_REPORTED and r["unit"] not in outcome.units:
            add("unit", f"a unit the dictionary allows for '{outcome.name}': {', '.join(outcome.units)} "
                        f"(or '{UNIT_NOT_REPORTED}')")
        statistic = r["statistic"] if has(r, "statistic") else None
        if statistic in STATISTICS:
            required, optional = STATISTICS[statistic]
            for column in required:
                if not has(r, column):
                    add(column, f"a value: statistic '{statistic}' needs {', '.join(required)}")
            if statistic.startswith("estimate_") and has(r, "n"):
                add("n", f"an empty cell: statistic '{statistic}' does not use 'n' (an estimate reported with its n "
                         f"is mean_se, or mean_sd with its SD)")
            for column in VALUE_COLUMNS:
                if has(r, column) and column not in required and column not in optional:
                    add(column, f"an empty cell: statistic '{statistic}' does not use '{column}' "
                                f"(it uses {', '.join(required + optional)})")
        ordered = [c for c in ("min", "q1", "median", "q3", "max") if has(r, c)]
        for lo, hi in zip(ordered, ordered[1:]):
            if r[lo] > r[hi]:
                add(hi, f"a value >= {lo} ({_fmt(r[lo])}): min <= q1 <= median <= q3 <= max")
        if has(r, "ci_lower") and has(r, "ci_upper"):
            if r["ci_lower"] > r["ci_upper"]:
                add("ci_upper", f"a value >= ci_lower ({_fmt(r['ci_lower'])})")
            elif has(r, "mean") and not r["ci_lower"] <= r["mean"] <= r["ci_upper"]:
                add("mean", f"a mean inside its confidence interval [{_fmt(r['ci_lower'])}, {_fmt(r['ci_upper'])}]")
        if has(r, "events") and has(r, "total") and r["events"] > r["total"]:
            add("events", f"0 <= events <= total ({_fmt(r['total'])})")
        if has(r, "events") and has(r, "total") and has(r, "percent") and r["total"] > 0:
            implied = 100 * r["events"] / r["total"]
            if abs(implied - r["percent"]) > 1.0:
                add("percent", f"about {implied:.1f} (= 100 x events / total), within 1 percentage point")
        if has(r, "time_value") != has(r, "time_unit"):
            add("time_unit" if has(r, "time_value") else "time_value",
                "time_value and time_unit both given or both empty")
        if r.get("usable") == "no" and not has(r, "not_usable_reason"):
            add("not_usable_reason", "a reason, because usable is 'no'")
        if r.get("measure") == "change_from_baseline" and has(r, "time_value") and r["time_value"] == 0:
            add("time_value", "a follow-up time > 0 for a change from baseline")
        if (outcome is not None and outcome.kind == "continuous" and outcome.plausible_range
                and r.get("measure") == "absolute" and has(r, "unit") and outcome.factor(r["unit"])):
            lo, hi = outcome.plausible_range
            for column in ("mean", "median"):
                if has(r, column) and not lo <= r[column] * outcome.factor(r["unit"]) <= hi:
                    add(column, f"a plausible {outcome.label} between {lo:g} and {hi:g} {outcome.canonical_unit} "
                                f"(after converting from {r['unit']}); is the unit right?")
        if r.get("usable") == "yes" and all(has(r, c) for c in ("study_id", "outcome", "measure", "cohort")):
            key = (r["study_id"], r.get("arm"), r["outcome"], r["measure"], r["cohort"],
                   _fmt(r.get("time_value")), r.get("time_unit"), r.get("statistic"))
            if key in seen:
                add("row_id", f"no second usable row for the same study, arm, outcome, measure, cohort, time and "
                              f"statistic (duplicate of row {seen[key]}); mark one usable = no with a reason")
            else:
                seen[key] = row
    return problems


def check_references(sheet: Sheet, table: pd.DataFrame, studies: pd.DataFrame) -> list[Problem]:
    """Appraisal rows must point at known studies, one judgement per study and item."""
    where = sheet.where()
    study_ids = set(studies["study_id"].dropna()) if "study_id" in studies else set()
    problems, seen = [], {}
    for _, r in table.iterrows():
        row = int(r[ROW])
        if r.get("study_id") is not None and study_ids and r["study_id"] not in study_ids:
            problems.append(Problem(where, row, "study_id", r["study_id"], "a study_id listed in the studies sheet"))
        key = (r.get("study_id"), r.get("item_id"))
        if None not in key:
            if key in seen:
                problems.append(Problem(where, row, "item_id", r["item_id"],
                                        f"one judgement per study and item (duplicate of row {seen[key]})"))
            seen.setdefault(key, row)
    return problems


@dataclass(frozen=True, order=True)
class Notice:
    """Something plausible but worth a second look (a real study can legitimately differ); listed in the report
    and in warnings.csv, never an error."""

    file: str
    sheet: str  # workbook sheet name; empty for CSV
    row: int  # spreadsheet row; 0 for the whole sheet or the config
    column: str
    value: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}, sheet '{self.sheet}'" if self.sheet else self.file
        row = f", row {self.row}" if self.row else ""
        column = f", column '{self.column}'" if self.column else ""
        value = f": value {self.value!r}" if self.value != "" else ""
        return f"{where}{row}{column}{value}: {self.message}"


WARNING_COLUMNS = ("file", "sheet", "row", "column", "value", "message")


def warnings_frame(notices: list[Notice]) -> pd.DataFrame:
    """warnings.csv: one row per notice, in a stable order."""
    return pd.DataFrame([[getattr(n, c) for c in WARNING_COLUMNS] for n in sorted(notices)],
                        columns=list(WARNING_COLUMNS))


def _notice(sheet: Sheet, row: int, column: str, value, message: str) -> Notice:
    return Notice(sheet.file, sheet.sheet or "", row, column, _fmt(value), message)


def check_study_sets(sheet: Sheet, studies: pd.DataFrame, config: dict) -> tuple[list[Problem], list[Notice]]:
    """Each id of a `study_sets` cell must be defined in config review.study_sets (when the config defines any;
    otherwise a near-miss of an analysed set is taken for a typo); a study in no analysed set is a warning."""
    problems: list[Problem] = []
    notices: list[Notice] = []
    analysed = list(config.get("study_sets") or [])
    defined = list((config.get("review") or {}).get("study_sets") or {})
    for _, r in studies.iterrows():
        sets = [x for x in (r.get("study_sets") or "").split(";") if x]
        if not sets:
            continue
        row = int(r[ROW])
        if defined:
            for name in (x for x in sets if x not in defined):
                close = difflib.get_close_matches(name, defined, n=1, cutoff=0.8)
                hint = f"; '{name}' looks like a typo of '{close[0]}'" if close else ""
                problems.append(Problem(sheet.where(), row, "study_sets", r["study_sets"],
                                        f"set ids defined in config review.study_sets ({', '.join(defined)}); "
                                        f"'{name}' is not defined there{hint}"))
            if any(x not in defined for x in sets):
                continue
            typos = []
        else:
            typos = [(x, difflib.get_close_matches(x, analysed, n=1, cutoff=0.8)) for x in sets if x not in analysed]
            for name, close in typos:
                if close:
                    problems.append(Problem(sheet.where(), row, "study_sets", r["study_sets"],
                                            f"set names from the config's study_sets ({', '.join(analysed)}); "
                                            f"'{name}' looks like a typo of '{close[0]}'"))
        if not any(x in analysed for x in sets) and not any(close for _, close in typos):
            notices.append(_notice(sheet, row, "study_sets", r["study_sets"],
                                   f"study {r.get('study_id')} is in no analysed study set (config study_sets: "
                                   f"{', '.join(analysed)}), so no model uses it"))
    return problems, notices


def check_searches(sheet: Sheet, studies: pd.DataFrame, config: dict, *,
                   n_columns: tuple[str, ...] = ()) -> tuple[list[Problem], list[Notice]]:
    """A `search` cell must name a search of config review.searches; an analysed study (no exclusion_reason)
    without its patient counts is a warning: its patients cannot be counted."""
    problems: list[Problem] = []
    notices: list[Notice] = []
    defined = list((config.get("review") or {}).get("searches") or {})
    for _, r in studies.iterrows():
        row, search = int(r[ROW]), r.get("search")
        if isinstance(search, str) and search and search not in defined:
            problems.append(Problem(sheet.where(), row, "search", search,
                                    f"a search defined in config review.searches ({', '.join(defined) or 'none defined'})"))
        excluded = isinstance(r.get("exclusion_reason"), str) and bool(r.get("exclusion_reason"))
        empty = [c for c in n_columns if c in r and pd.isna(r[c])]
        if not excluded and empty:
            notices.append(_notice(sheet, row, empty[0], "",
                                   f"study {r.get('study_id')} is analysed but its patient count "
                                   f"({', '.join(empty)}) is not reported, so its patients are not counted"))
    return problems, notices


def check_plausibility(sheets: dict[str, Sheet], tables: dict[str, pd.DataFrame], config: dict, reported: set,
                       *, arms: Arms) -> tuple[list[Problem], list[Notice]]:
    """Rules across sheets and against the config: a visit's n or an event total above its arm's enrolled n
    (an error: no visit sees more patients than were treated), a visit after the stated follow-up (a warning: a
    long-term report may extend it), study-set ids the config does not define (an error) or does not analyse
    (a warning), and analysed outcomes without data."""
    problems: list[Problem] = []
    notices: list[Notice] = []
    studies, outcomes = tables["studies"], tables["outcomes"]
    s_sheet, o_sheet = sheets["studies"], sheets["outcomes"]
    by_id = {r["study_id"]: r for _, r in studies.iterrows() if r.get("study_id") is not None}
    number = lambda v: v is not None and not (isinstance(v, float) and math.isnan(v))  # noqa: E731
    for _, r in outcomes.iterrows():
        study = by_id.get(r.get("study_id"))
        if study is None:
            continue
        row = int(r[ROW])
        arm = {a.id: a for a in (arms.intervention, arms.comparator)}.get(r.get("arm"))
        enrolled_column = arm.n_column if arm else None
        enrolled = study.get(enrolled_column) if enrolled_column else None
        if number(enrolled):
            for column in ("n", "total"):
                value = r.get(column)
                if number(value) and value > enrolled and (row, column) not in reported:
                    problems.append(Problem(o_sheet.where(), row, column, _fmt(value),
                                            f"at most the {enrolled:g} patients enrolled in the {r['arm']} arm "
                                            f"({enrolled_column} of {r['study_id']} in the studies sheet, row "
                                            f"{int(study[ROW])})"))
        follow_up = study.get("follow_up_months")
        time_value, unit = r.get("time_value"), r.get("time_unit")
        if number(follow_up) and number(time_value) and unit in TIME_UNITS:
            months = time_value * TIME_UNITS[unit]
            if months > follow_up + 1e-9:
                notices.append(_notice(o_sheet, row, "time_value", time_value,
                                       f"visit at {months:g} months is after the follow-up of {follow_up:g} months "
                                       f"stated for {r['study_id']} (studies sheet, row {int(study[ROW])}); "
                                       "check the time or follow_up_months"))
    set_problems, set_notices = check_study_sets(s_sheet, studies, config)
    problems += set_problems
    notices += set_notices
    review_arms = (config.get("review") or {}).get("arms") or {}
    n_columns = tuple(a["n_column"] for a in review_arms.values() if isinstance(a, dict) and "n_column" in a)
    search_problems, search_notices = check_searches(s_sheet, studies, config, n_columns=n_columns)
    problems += search_problems
    notices += search_notices
    named = set(outcomes["outcome"].dropna()) if "outcome" in outcomes else set()
    for key in ("outcomes", "binary_outcomes"):
        for name in config.get(key) or []:
            if name not in named:
                notices.append(Notice("config", "", 0, key, name,
                                      f"outcome '{name}' is analysed (config {key}) but no row of "
                                      f"{o_sheet.where()} reports it; its results will say 'no data'"))
    return problems, notices


def validate(sheets: dict[str, Sheet], dictionary: dict[str, Outcome], config: dict,
             warnings: list[Notice] | None = None) -> dict[str, pd.DataFrame]:
    """Check all sheets; return the typed tables, or raise ValidationError listing every problem.

    `config` is the resolved config: its review section gives the arms and study sets, its `data.vocabulary`
    the coded values; cross-sheet plausibility is checked against it too. Plausible-but-odd findings are
    appended to `warnings` when a list is given.
    """
    arms = review.arms(config)
    vocabulary = review.vocabulary(config)
    columns = sheet_columns(arms, vocabulary)
    checked = Checked()
    notices: list[Notice] = []
    for name, sheet in sheets.items():
        hint = (f"a column the engine reads (see docs/extraction_sheets.md) or one listed under study_fields in "
                f"{vocabulary.source or 'the vocabulary file'}; known columns: {', '.join(columns[name])}"
                if name == "studies" else "")
        table, problems = check_columns(sheet, columns[name], hint)
        checked.tables[name] = table
        checked.problems += problems
        notices += [Notice(sheet.file, sheet.sheet or "", 1, "", "", note) for note in sheet.notes]
    studies = checked.tables["studies"]
    checked.problems += linkage.check_studies(sheets["studies"], studies)
    reported = {(p.row, p.column) for p in checked.problems if p.where == sheets["outcomes"].where()}
    checked.problems += check_outcome_rows(sheets["outcomes"], checked.tables["outcomes"], studies, dictionary,
                                           reported)
    checked.problems += check_references(sheets["appraisal"], checked.tables["appraisal"], studies)
    reported = {(p.row, p.column) for p in checked.problems if p.where == sheets["outcomes"].where()}
    problems, plausibility = check_plausibility(sheets, checked.tables, config, reported, arms=arms)
    checked.problems += problems
    notices += plausibility
    if warnings is not None:
        warnings += notices
    if checked.problems:
        raise ValidationError(checked.problems)
    return checked.tables


def report(tables: dict[str, pd.DataFrame], sheets: dict[str, Sheet], dictionary: dict[str, Outcome],
           warnings: list[Notice] | None = None) -> str:
    """A short human-readable account of what was validated, with every warning (also in warnings.csv)."""
    outcomes = tables["outcomes"]
    usable = outcomes[outcomes["usable"] == "yes"]
    lines = [
        "# Validation report",
        "",
        "All sheets passed validation.",
        "",
        "| sheet | read from | rows |",
        "|---|---|---|",
        *[f"| {name} | {sheets[name].where()} | {len(tables[name])} |" for name in tables],
        "",
        f"Outcome rows usable in a synthesis: {len(usable)} of {len(outcomes)}; "
        f"studies: {tables['studies']['study_id'].nunique()}; "
        f"outcomes named: {outcomes['outcome'].nunique()} (dictionary has {len(dictionary)}).",
        "",
        "## Rows not usable, and why",
        "",
        "| row_id | study | outcome | reason |",
        "|---|---|---|---|",
    ]
    for _, r in outcomes[outcomes["usable"] == "no"].iterrows():
        lines.append(f"| {r['row_id']} | {r['study_id']} | {r['outcome']} | {r['not_usable_reason']} |")
    lines += ["", "## Warnings", "",
              "Plausible but worth a second look; not errors (also in warnings.csv).", ""]
    lines += [f"- {n}" for n in sorted(warnings or [])] or ["None."]
    return "\n".join(lines) + "\n"
