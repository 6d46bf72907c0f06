"""The renderer's pre-pass over the manuscript source, in Python so that errors keep file and line numbers.

* `{{< include path >}}` (alone on its line; path relative to the including file) is replaced by the file's text,
  recursively; a missing file or an include cycle is an error.
* every `{{< var key >}}` is looked up in the variables YAML (nested mapping `a: {b: 1}` or flat dotted key
  `a.b: 1`, or a mix; the longest matching key wins). An unknown key, a null, empty, boolean or non-scalar value
  is an error naming the key and the line ("unknown variable 'outcome_a.m6.delta' (line 42 of index.qmd)"). Each
  shortcode becomes a plain-word marker `XVARnnnnnnX` that survives Pandoc's Markdown reader anywhere (tables,
  captions, the YAML title/abstract, code, math, link targets); filters/vars.lua puts the value back. `{{{< ... >}}}`
  is Quarto's escape and gives the literal shortcode. Any other shortcode is an error.

Lineage: `lineage` maps variable keys to where the number came from: a mapping, or a JSON / YAML / CSV file.
Each record may have `results_file` (or `results`/`source`/`file`), `raw_rows` (or `row_ids`/`rows`; a list, or
a string separated by `;` or `,`; or a list of mappings with `row_id`, `source_url`, `locator`), `source_url`
(or `source_urls`/`url`) and `locator` (or `locators`). A CSV needs a `key` column and may repeat a key on
several rows (one raw row each). When a lineage is given, every variable the manuscript uses must have an entry.
The HTML shows it as the hover title of the number: "key — from results/x.csv; raw rows r1, r2; source URL
(locator)".
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from timecourse_meta.core.errors import EngineError
from timecourse_meta.report.format import MINUS

_MARKER_FMT = "XVAR{:06d}X"
_SHORTCODE = re.compile(r"\{\{\{<(?P<escaped>.*?)>\}\}\}|\{\{<(?P<body>.*?)>\}\}")
_INCLUDE_LINE = re.compile(r"^\s*\{\{<\s*include\s+(?P<path>\"[^\"]+\"|'[^']+'|\S+?)\s*>\}\}\s*$")


class RenderError(EngineError, RuntimeError):
    """The manuscript could not be rendered; the message names every problem found."""


@dataclass(frozen=True)
class _Line:
    text: str
    file: Path
    lineno: int
    parent: "_Line | None" = None  # the include shortcode line that brought this line in


def describe_line(line: _Line, root: Path) -> str:
    try:
        name = line.file.relative_to(root).as_posix()
    except ValueError:
        name = line.file.as_posix()
    text = f"line {line.lineno} of {name}"
    if line.parent is not None:
        text += f", included at {describe_line(line.parent, root)}"
    return text


# ---------------------------------------------------------------------------------------------- variables

def _str_keys(obj):
    if isinstance(obj, Mapping):
        return {str(k): _str_keys(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_str_keys(v) for v in obj]
    return obj


def load_variables(path: str | os.PathLike) -> dict:
    """Read the variables YAML (a mapping; nested and/or flat dotted keys)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RenderError(f"variables file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise RenderError(f"variables file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise RenderError(f"variables file {path} must hold a mapping of keys to values")
    return _str_keys(data)


_MISSING = object()


def lookup_variable(variables: Mapping, key: str):
    """Quarto-style lookup: `a.b` reads nested key a -> b, or a flat key "a.b", or a mix (longest key first)."""
    def walk(mapping, parts):
        for i in range(len(parts), 0, -1):
            head = ".".join(parts[:i])
            if head in mapping:
                value = mapping[head]
                if i == len(parts):
                    return value
                if isinstance(value, Mapping):
                    found = walk(value, parts[i:])
                    if found is not _MISSING:
                        return found
        return _MISSING

    return walk(variables, key.split("."))


def format_value(value) -> str:
    """The text for a variable's value. Values should be preformatted strings (see timecourse_meta.report.format);
    ints and floats are printed as they are, with a proper minus sign. Raises ValueError for null, empty,
    boolean, non-finite and non-scalar values."""
    if value is None:
        raise ValueError("is null")
    if isinstance(value, bool):
        raise ValueError(f"is a boolean ({value}); write the text wanted, quoted")
    if isinstance(value, Mapping):
        raise ValueError("is a mapping, not a value (use a longer key)")
    if isinstance(value, (list, tuple)):
        raise ValueError("is a list, not a value")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"is not finite ({value})")
        text = repr(value)
    else:
        text = str(value)
    text = " ".join(text.split())
    if not text:
        raise ValueError("is empty")
    if isinstance(value, (int, float)) and text.startswith("-"):
        text = MINUS + text[1:]
    return text


# ------------------------------------------------------------------------------------------------ lineage

def _as_list(value) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in re.split(r"[;,]", value) if v.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _first(record: Mapping, *names):
    for name in names:
        if name in record and record[name] not in (None, ""):
            return record[name]
    return None


def load_lineage(lineage) -> dict[str, dict] | None:
    """Normalise a lineage mapping or file (JSON, YAML or CSV) to {key: record}."""
    if lineage is None:
        return None
    if isinstance(lineage, Mapping):
        data = lineage
    else:
        path = Path(lineage)
        if not path.exists():
            raise RenderError(f"lineage file not found: {path}")
        suffix = path.suffix.lower()
        if suffix == ".csv":
            data = _lineage_csv(path)
        elif suffix in (".json", ".yml", ".yaml"):
            text = path.read_text(encoding="utf-8")
            try:
                data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
            except (json.JSONDecodeError, yaml.YAMLError) as exc:
                raise RenderError(f"lineage file {path} cannot be read: {exc}") from None
        else:
            raise RenderError(f"lineage file {path}: expected .json, .yml/.yaml or .csv")
    if isinstance(data, Mapping) and "variables" in data and isinstance(data["variables"], (Mapping, list)):
        data = data["variables"]
    if isinstance(data, list):
        records = {}
        for rec in data:
            if not isinstance(rec, Mapping) or "key" not in rec:
                raise RenderError("lineage records must be mappings with a 'key'")
            records[str(rec["key"])] = dict(rec)
        data = records
    if not isinstance(data, Mapping):
        raise RenderError("lineage must map variable keys to records")
    return {str(k): (dict(v) if isinstance(v, Mapping) else {"results_file": v}) for k, v in data.items()}


def _lineage_csv(path: Path) -> dict[str, dict]:
    """A lineage CSV (a `key` column; a key may repeat, one raw row each) as {key: record}."""
    data: dict[str, dict] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if "key" not in (reader.fieldnames or []):
            raise RenderError(f"lineage file {path} needs a 'key' column")
        for row in reader:
            key = (row.get("key") or "").strip()
            if not key:
                continue
            rec = data.setdefault(key, {"raw_rows": []})
            for name, value in row.items():
                if name in ("key", None) or value in (None, ""):
                    continue
                if name in ("raw_rows", "row_ids", "rows", "row_id", "raw_row"):
                    rec["raw_rows"].extend(_as_list(value))
                else:
                    rec.setdefault(name, [])
                    if value not in rec[name]:
                        rec[name].append(value)
    for rec in data.values():
        for name, values in list(rec.items()):
            if name != "raw_rows" and isinstance(values, list) and len(values) == 1:
                rec[name] = values[0]
    return data


def lineage_title(key: str, record: Mapping | None) -> str:
    """One line for the hover title: "key — from results/x.csv; raw rows r1, r2; https://... (Table 2)"."""
    if not record:
        return key
    parts = []
    results = _first(record, "results_file", "results", "source", "file")
    head = f"{key} \u2014 from {', '.join(map(str, _as_list(results)))}" if results else key
    rows = _first(record, "raw_rows", "row_ids", "rows")
    row_ids, sources = [], []
    for row in _as_list(rows):
        if isinstance(row, Mapping):
            rid = _first(row, "row_id", "id", "row")
            if rid is not None:
                row_ids.append(str(rid))
            url, loc = _first(row, "source_url", "url"), _first(row, "locator")
            if url:
                sources.append(f"{url} ({loc})" if loc else str(url))
        else:
            row_ids.append(str(row))
    if row_ids:
        parts.append("raw rows " + ", ".join(row_ids))
    urls = _as_list(_first(record, "source_url", "source_urls", "url"))
    locs = _as_list(_first(record, "locator", "locators"))
    for i, url in enumerate(urls):
        loc = locs[i] if i < len(locs) else (locs[0] if len(locs) == 1 else None)
        text = f"{url} ({loc})" if loc else str(url)
        if text not in sources:
            sources.append(text)
    if not urls and locs:
        sources.append("; ".join(map(str, locs)))
    if sources:
        parts.append("source " + "; ".join(sources))
    return "; ".join([head] + parts)


# ---------------------------------------------------------------------------------------------- pre-pass

def _expand(path: Path, stack: tuple[Path, ...], root: Path, include_from: _Line | None) -> list[_Line]:
    path = path.resolve()
    if path in stack:
        chain = " -> ".join(p.name for p in stack + (path,))
        raise RenderError(f"include cycle: {chain}")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        where = f" ({describe_line(include_from, root)})" if include_from else ""
        raise RenderError(f"include file not found: {path}{where}") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out: list[_Line] = []
    for i, raw in enumerate(text.split("\n"), start=1):
        line = _Line(raw, path, i, include_from)
        m = _INCLUDE_LINE.match(raw)
        if m:
            target = m.group("path").strip("\"'")
            target_path = Path(target) if os.path.isabs(target) else path.parent / target
            out.extend(_expand(target_path, stack + (path,), root, line))
        else:
            out.append(line)
    if out and out[-1].text == "" and len(out) > 1:
        out.pop()  # the file's final newline
    return out


@dataclass
class Prepared:
    text: str
    lines: list[_Line]
    markers: dict[str, dict]
    used_keys: list[str]


def prepare(qmd: Path, variables: Mapping, lineage: Mapping | None, root: Path) -> Prepared:
    """The source with includes expanded and every var shortcode replaced by its marker; RenderError listing
    every problem (with its line) otherwise."""
    lines = _expand(qmd, (), root, None)
    markers: dict[str, dict] = {}
    used: list[str] = []
    errors: list[str] = []
    out_lines = []
    for line in lines:
        new = _SHORTCODE.sub(lambda m: _replace(m, line, variables, lineage, root, markers, used, errors),
                             line.text)
        # a shortcode opener left over means a malformed or line-broken shortcode
        scrubbed = _SHORTCODE.sub("", line.text)
        if "{{<" in scrubbed:
            errors.append(f"unterminated shortcode ({describe_line(line, root)}): {line.text.strip()}")
        out_lines.append(new)
    if errors:
        raise RenderError("\n".join(errors))
    return Prepared("\n".join(out_lines) + "\n", lines, markers, used)


def _replace(m: re.Match, line: _Line, variables: Mapping, lineage: Mapping | None, root: Path,
             markers: dict[str, dict], used: list[str], errors: list[str]) -> str:
    """One shortcode: its marker (recorded in `markers`), or the shortcode unchanged with an error appended."""
    if m.group("escaped") is not None:
        return "{{<" + m.group("escaped") + ">}}"
    body = m.group("body").strip()
    parts = body.split()
    where = describe_line(line, root)
    if not parts:
        errors.append(f"empty shortcode '{m.group(0)}' ({where})")
        return m.group(0)
    name, args = parts[0], parts[1:]
    if name == "include":
        errors.append(f"include shortcode must stand alone on its line: '{m.group(0)}' ({where})")
        return m.group(0)
    if name != "var":
        errors.append(f"unsupported shortcode '{m.group(0)}' ({where}); only var and include")
        return m.group(0)
    if len(args) != 1:
        errors.append(f"var shortcode needs exactly one key: '{m.group(0)}' ({where})")
        return m.group(0)
    key = args[0].strip("\"'")
    value = lookup_variable(variables, key)
    if value is _MISSING:
        errors.append(f"unknown variable '{key}' ({where})")
        return m.group(0)
    try:
        text = format_value(value)
    except ValueError as exc:
        errors.append(f"variable '{key}' {exc} ({where})")
        return m.group(0)
    record = None
    if lineage is not None:
        record = lineage.get(key)
        if record is None:
            errors.append(f"no lineage for variable '{key}' ({where})")
    marker = _MARKER_FMT.format(len(markers) + 1)
    markers[marker] = {"key": key, "value": text, "title": lineage_title(key, record), "where": where}
    if key not in used:
        used.append(key)
    return marker


def front_matter(qmd: Path) -> dict:
    text = qmd.read_text(encoding="utf-8")
    m = re.match(r"^---\s*\n(.*?)\n(?:---|\.\.\.)\s*(?:\n|$)", text, flags=re.S)
    if not m:
        return {}
    try:
        data = yaml.safe_load(m.group(1))
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}

