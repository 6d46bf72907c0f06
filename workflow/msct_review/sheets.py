"""Read the raw extraction sheets from CSV files or one Excel workbook, keeping where each row came from.

Every cell is read as text (empty = not reported) so that validation, not the reader, decides what a value
means; each row keeps the row number a spreadsheet user sees (header = row 1) for error messages.
"""

from __future__ import annotations

import csv
import datetime as _dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

SHEETS = ("studies", "outcomes", "appraisal")
ROW = "_row"  # column holding the spreadsheet row number of each record


@dataclass(frozen=True)
class Sheet:
    """One raw table and where it was read from."""

    name: str
    file: str
    sheet: str | None  # the workbook sheet name; None for CSV
    data: pd.DataFrame  # all columns as text, plus ROW

    def where(self) -> str:
        return f"{self.file}, sheet '{self.sheet}'" if self.sheet else self.file


class SheetReadError(ValueError):
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


def _frame(header: list, rows: list[tuple[int, list]], where: str) -> pd.DataFrame:
    columns = [_cell_text(h) for h in header]
    while columns and columns[-1] == "":
        columns.pop()
    if not columns:
        raise SheetReadError(f"{where}: the first row must hold the column names, but it is empty")
    blank = [i + 1 for i, c in enumerate(columns) if c == ""]
    if blank:
        raise SheetReadError(f"{where}: row 1, column number(s) {blank}: empty column name; expected a name")
    dup = sorted({c for c in columns if columns.count(c) > 1})
    if dup:
        raise SheetReadError(f"{where}: row 1: column name(s) {dup} appear more than once; expected unique names")
    records = []
    for number, values in rows:
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
    return frame


def read_csv_sheet(path: str | Path, name: str) -> Sheet:
    path = Path(path)
    if not path.exists():
        raise SheetReadError(f"{path}: file not found; expected the '{name}' sheet as CSV")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise SheetReadError(f"{path}: the file is empty; expected a header row") from None
        rows = []
        for values in reader:
            rows.append((reader.line_num, values))
    return Sheet(name, str(path), None, _frame(header, rows, str(path)))


def read_workbook_sheet(path: str | Path, name: str) -> Sheet:
    from openpyxl import load_workbook

    path = Path(path)
    if not path.exists():
        raise SheetReadError(f"{path}: file not found; expected an .xlsx workbook")
    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        if name not in workbook.sheetnames:
            raise SheetReadError(
                f"{path}: no sheet named '{name}' (sheets: {workbook.sheetnames}); expected sheets {list(SHEETS)}"
            )
        sheet = workbook[name]
        rows = list(sheet.iter_rows(values_only=True))
    finally:
        workbook.close()
    if not rows:
        raise SheetReadError(f"{path}, sheet '{name}': the sheet is empty; expected a header row")
    body = [(i + 2, list(r)) for i, r in enumerate(rows[1:])]
    return Sheet(name, str(path), name, _frame(list(rows[0]), body, f"{path}, sheet '{name}'"))


def read_sheets(raw_dir: str | Path = "data/raw", workbook: str | Path | None = None) -> dict[str, Sheet]:
    """All three sheets, from the workbook when given, else from `raw_dir`/<name>.csv."""
    if workbook:
        return {name: read_workbook_sheet(workbook, name) for name in SHEETS}
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
