"""Read the raw extraction sheets from CSV files or one Excel workbook, keeping where each row came from.

Every input goes through this module, so every file-level surprise is caught in one place and explained in one
sentence: the file type by its first bytes (an .xlsx renamed to .csv and the reverse), the text encoding
(UTF-16, Latin-1 instead of UTF-8), the delimiter (';' from Excel in a European locale), title rows above the
header, and Excel cells whose shown value is not their stored value (percent formats, formulas without a saved
result). Every cell is read as text (empty = not reported) so that validation, not the reader, decides what a
value means; each row keeps the row number a spreadsheet user sees (first line = row 1) for error messages.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from timecourse_meta.core.errors import EngineError

SHEETS = ("studies", "outcomes", "appraisal")
ROW = "_row"  # column holding the spreadsheet row number of each record
XLSX_MAGIC = b"PK\x03\x04"  # an .xlsx is a zip archive
XLS_MAGIC = b"\xd0\xcf\x11\xe0"  # the pre-2007 binary Excel format
SAVE_AS_CSV = "save it from Excel as 'CSV UTF-8 (Comma delimited) (*.csv)'"
TITLE_ROWS_SEARCHED = 10  # how far down a header is looked for below title rows


@dataclass(frozen=True)
class CellIssue:
    """A cell whose stored value is not what the spreadsheet shows; validation reports it as a problem."""

    row: int
    column: str
    value: str
    expected: str


@dataclass(frozen=True)
class Sheet:
    """One raw table and where it was read from."""

    name: str
    file: str
    sheet: str | None  # the workbook sheet name; None for CSV
    data: pd.DataFrame  # all columns as text, plus ROW
    header_row: int = 1  # the spreadsheet row holding the column names
    issues: tuple[CellIssue, ...] = ()  # cells read but not trustworthy (percent format, formula without value)
    notes: tuple[str, ...] = field(default=())  # what the reader did that the user should know (skipped rows)

    def where(self) -> str:
        return f"{self.file}, sheet '{self.sheet}'" if self.sheet else self.file


class SheetReadError(EngineError, ValueError):
    """A sheet is missing or cannot be read at all."""


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    return str(value).strip()


def _find_header(rows: list[tuple[int, list]], where: str) -> int:
    """Index of the header among `rows`: the first row holding at least half as many filled cells as the fullest
    of the first rows. Rows above it are blank or titles (a merged title cell leaves one filled cell)."""
    filled = [sum(1 for v in values if _cell_text(v)) for _, values in rows[:TITLE_ROWS_SEARCHED]]
    if not filled or max(filled) == 0:
        raise SheetReadError(f"{where}: no column names in the first {TITLE_ROWS_SEARCHED} rows; expected the "
                             "column names on row 1")
    threshold = max(2, (max(filled) + 1) // 2)
    return next((i for i, count in enumerate(filled) if count >= threshold), 0)


def _frame(rows: list[tuple[int, list]], where: str) -> tuple[pd.DataFrame, int, tuple[str, ...]]:
    """Table from (spreadsheet row, values) pairs; returns it with the header's row and notes on skipped rows."""
    start = _find_header(rows, where)
    header_row, header = rows[start]
    notes = ()
    if start:
        above = [_cell_text(v) for _, values in rows[:start] for v in values if _cell_text(v)]
        shown = f" ('{above[0][:60]}')" if above else ""
        notes = (f"{where}: rows 1-{header_row - 1} above the column names on row {header_row} were skipped as a "
                 f"title{shown}; delete them to silence this note",)
    columns = [_cell_text(h) for h in header]
    while columns and columns[-1] == "":
        columns.pop()
    hrow = f"row {header_row}"
    blank = [i + 1 for i, c in enumerate(columns) if c == ""]
    if blank:
        raise SheetReadError(f"{where}: {hrow}, column number(s) {blank}: empty column name; expected a name")
    dup = sorted({c for c in columns if columns.count(c) > 1})
    if dup:
        raise SheetReadError(f"{where}: {hrow}: column name(s) {dup} appear more than once; expected unique names")
    records = []
    for number, values in rows[start + 1:]:
        cells = [_cell_text(v) for v in values]
        if not any(cells):
            continue  # blank spreadsheet rows are ignored, numbering is kept
        extra = [c for c in cells[len(columns):] if c]
        if extra:
            raise SheetReadError(
                f"{where}: row {number}: {len(cells)} values but only {len(columns)} named columns; "
                "expected every value under a named column"
            )
        cells = (cells + [""] * len(columns))[: len(columns)]
        records.append([*cells, number])
    frame = pd.DataFrame(records, columns=[*columns, ROW], dtype=object)
    frame[ROW] = frame[ROW].astype(int)
    return frame, header_row, notes


def _decode(raw: bytes, path: Path) -> str:
    """The text of a CSV file, or a SheetReadError saying what the file really is and how to save it."""
    if raw.startswith(XLSX_MAGIC):
        raise SheetReadError(f"{path}: this is an Excel workbook (.xlsx) with a .csv name; {SAVE_AS_CSV}, or "
                             "rename it to .xlsx and set data.workbook in the config to it")
    if raw.startswith(XLS_MAGIC):
        raise SheetReadError(f"{path}: this is an old-style Excel workbook (.xls), not CSV text; {SAVE_AS_CSV}")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(raw) > 1 and raw[:200].count(b"\x00") > len(raw[:200]) // 4):
        raise SheetReadError(f"{path}: the file is UTF-16 text (Excel's 'Unicode Text'), not UTF-8; {SAVE_AS_CSV}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        snippet = raw[max(0, exc.start - 15): exc.start + 15].decode("latin-1").replace("\n", " ").strip()
        raise SheetReadError(
            f"{path}: line {line}: byte 0x{raw[exc.start]:02X} near '{snippet}' is not UTF-8 (the file looks saved "
            f"as Latin-1/Windows-1252, e.g. 'µmol/L'); {SAVE_AS_CSV}"
        ) from None


def read_csv_sheet(path: str | Path, name: str) -> Sheet:
    path = Path(path)
    if not path.exists():
        raise SheetReadError(f"{path}: file not found; expected the '{name}' sheet as CSV")
    text = _decode(path.read_bytes(), path)
    if not text.strip():
        raise SheetReadError(f"{path}: the file is empty; expected a header row")
    first = text.splitlines()[0]
    if first.count(";") > first.count(",") or (first.count("\t") > first.count(",")):
        sep = "';'" if first.count(";") >= first.count("\t") else "a tab"
        raise SheetReadError(f"{path}: line 1: the columns are separated by {sep}, not commas (Excel in a European "
                             f"locale does this); {SAVE_AS_CSV} with ',' as list separator")
    # A record's row is its position among records, as a spreadsheet shows it: a quoted cell spanning several
    # lines is still one row, so the reader's line count (reader.line_num) would be off after it.
    rows: list[tuple[int, list]] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for number, values in enumerate(reader, start=1):
            rows.append((number, values))
    except csv.Error as exc:
        raise SheetReadError(
            f"{path}: row {len(rows) + 1} (line {reader.line_num}): {exc}; expected each quoted cell to end with "
            "a closing quote (\") followed by a comma or the end of the line - check the quotes in this row"
        ) from None
    frame, header_row, notes = _frame(rows, str(path))
    return Sheet(name, str(path), None, frame, header_row, (), notes)


def _column_letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(index + 1)


def read_workbook_sheet(path: str | Path, name: str) -> Sheet:
    from openpyxl import load_workbook

    path = Path(path)
    if not path.exists():
        raise SheetReadError(f"{path}: file not found; expected an .xlsx workbook")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic == XLS_MAGIC:
        raise SheetReadError(f"{path}: this is an old-style Excel workbook (.xls); save it from Excel as "
                             "'Excel Workbook (*.xlsx)'")
    if magic != XLSX_MAGIC:
        raise SheetReadError(f"{path}: this is not an Excel workbook (it looks like a text/CSV file); save it from "
                             "Excel as 'Excel Workbook (*.xlsx)', or put the sheets as CSV files in data.raw_dir and "
                             "set data.workbook to null")
    where = f"{path}, sheet '{name}'"
    # Two loads: data_only gives the values Excel last saved (None for a formula never calculated), the other the
    # formulas themselves, so that a formula without a saved result is told apart from an empty cell.
    try:
        values = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # a damaged zip, a password-protected or non-Excel zip: openpyxl raises many kinds
        raise SheetReadError(f"{path}: cannot be opened as an Excel workbook ({type(exc).__name__}: {exc}); open it "
                             "in Excel and save it again as 'Excel Workbook (*.xlsx)' without a password") from None
    try:
        if name not in values.sheetnames:
            raise SheetReadError(
                f"{path}: no sheet named '{name}' (sheets: {values.sheetnames}); expected sheets {list(SHEETS)}"
            )
        cells = [[(c.value, getattr(c, "number_format", None)) for c in r] for r in values[name].iter_rows()]
    finally:
        values.close()
    formulas = load_workbook(path, read_only=True, data_only=False)
    try:
        raw = [list(r) for r in formulas[name].iter_rows(values_only=True)]
    finally:
        formulas.close()
    if not cells:
        raise SheetReadError(f"{where}: the sheet is empty; expected a header row")
    rows = [(i + 1, [v for v, _ in r]) for i, r in enumerate(cells)]
    frame, header_row, notes = _frame(rows, where)
    columns = [c for c in frame.columns if c != ROW]
    issues = []
    for i, r in enumerate(cells):
        number = i + 1
        if number <= header_row:
            continue
        for j, (value, fmt) in enumerate(r[: len(columns)]):
            cell = f"{_column_letter(j)}{number}"
            formula = raw[i][j] if i < len(raw) and j < len(raw[i]) else None
            if value is None and isinstance(formula, str) and formula.startswith("="):
                issues.append(CellIssue(number, columns[j], formula,
                                        f"a value, not a formula without a saved result (cell {cell}; the file was "
                                        "written by a program that does not calculate formulas): open and save it "
                                        "in Excel or LibreOffice, or type the number"))
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and fmt and "%" in fmt:
                issues.append(CellIssue(number, columns[j], f"{value * 100:g}% (stored as {_cell_text(value)})",
                                        f"a plain number (cell {cell} is formatted as a percentage, so Excel stores "
                                        f"{value * 100:g}% as {_cell_text(value)}): format the cell as Number and "
                                        "type the value as the paper reports it"))
    return Sheet(name, str(path), name, frame, header_row, tuple(issues), notes)


def read_sheets(raw_dir: str | Path = "data/raw", workbook: str | Path | None = None) -> dict[str, Sheet]:
    """All three sheets, from the workbook when given, else from `raw_dir`/<name>.csv."""
    if workbook:
        return {name: read_workbook_sheet(workbook, name) for name in SHEETS}
    if not Path(raw_dir).is_dir():
        raise SheetReadError(f"{raw_dir}: folder not found; expected the folder holding "
                             f"{', '.join(f'{n}.csv' for n in SHEETS)} (config key data.raw_dir)")
    return {name: read_csv_sheet(Path(raw_dir) / f"{name}.csv", name) for name in SHEETS}


def input_files(raw_dir: str | Path = "data/raw", workbook: str | Path | None = None) -> list[str]:
    """The files `read_sheets` reads, for Snakemake inputs."""
    if workbook:
        return [str(workbook)]
    return [str(Path(raw_dir) / f"{name}.csv") for name in SHEETS]


def write_workbook(sheets: dict[str, pd.DataFrame], path: str | Path) -> None:
    """Write tables as one workbook, one sheet per table (used to give review authors an Excel copy)."""
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            frame.drop(columns=[ROW], errors="ignore").to_excel(writer, sheet_name=name, index=False)
