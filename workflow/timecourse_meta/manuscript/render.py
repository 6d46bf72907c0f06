"""Render the manuscript (Quarto-flavoured Pandoc Markdown) to self-contained HTML, DOCX and PDF, offline.

Quarto itself is not available, so this module drives the engines Quarto uses: Pandoc (from the
`pypandoc-binary` wheel) with Lua filters, and the `typst` wheel for the PDF. Call `render_manuscript` (the
Snakemake rule does); there is no command line.

Pipeline
--------
1. Python pre-pass over the source text (keeps file/line numbers for error messages):
   * `{{< include path >}}` (alone on its line; path relative to the including file) is replaced by the file's
     text, recursively; a missing file or an include cycle is an error.
   * every `{{< var key >}}` is looked up in the variables YAML (nested mapping `a: {b: 1}` or flat dotted key
     `a.b: 1`, or a mix; the longest matching key wins). An unknown key, a null, empty, boolean or non-scalar
     value is an error naming the key and the line ("unknown variable 'sledai.m6.delta' (line 42 of
     index.qmd)"). Each shortcode becomes a plain-word marker `XVARnnnnnnX` that survives Pandoc's Markdown
     reader anywhere (tables, captions, the YAML title/abstract, code, math, link targets). `{{{< ... >}}}`
     is Quarto's escape and gives the literal shortcode. Any other shortcode is an error.
2. Pandoc reads the result with five filters, in this order:
   * `filters/vars.lua` puts each value in place of its marker (in HTML wrapped in
     `<span class="var" data-key=KEY title=LINEAGE>`); a marker it cannot place fails the render;
   * `filters/crossref.lua` numbers `#fig-`/`#tbl-` figures and tables, labels their captions and resolves
     `@fig-`/`@tbl-` references ("Figure 1", "Table 1"); an unknown reference fails;
   * `filters/checks.lua` fails on a citation key missing from the bibliography and on remote images, and maps
     Quarto's `authors:` to `author:`;
   * `filters/widths.lua` re-sizes tables that have relative widths so that each column holds its longest word
     (the writers would otherwise overprint or break words letter by letter in narrow columns);
   * `--citeproc` with the bibliography and the CSL style (Pandoc's default Chicago author-date if none).
   Pandoc warnings that mean a lost citation or a missing resource are turned into errors too.
3. Writers: HTML (`--embed-resources --standalone --mathml`: images as data: URIs, no script or stylesheet
   fetched), DOCX (images embedded; a reference document with 8-pt table text, see DOCX_TABLE_TEXT_HALF_POINTS),
   and Typst (the table and code rules of TYPST_STYLE at the start of the body; `--extract-media` copies the
   figures next to the .typ file) compiled to PDF by the `typst` wheel with `root=` that folder and only the fonts embedded in the wheel
   (`font_paths` adds more), so the PDF does not depend on the machine's fonts.

Everything is built in a temporary folder; only when every requested format has succeeded are the files moved
into `out_dir` (temporary name in `out_dir`, then `os.replace`), so a failed render leaves no new or
half-written output. Existing outputs from an earlier successful render are left untouched on failure.

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
import logging
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from timecourse_meta.report.format import MINUS
from timecourse_meta.core.errors import EngineError

log = logging.getLogger(__name__)

FILTER_DIR = Path(__file__).resolve().parent / "filters"
FILTERS = ("vars.lua", "crossref.lua", "checks.lua", "widths.lua")  # order matters: see module docstring
FORMATS = ("html", "docx", "pdf")
MIN_PANDOC = (3, 1, 1)  # Figure blocks, typst writer, pandoc.json, pandoc.utils.references

# PDF page layout (Typst rules, placed at the start of the body so that they override the template's own
# `#set table(...)`): tables (inside figures) may break across pages instead of running off the page, and their
# caption (above the table) sticks to the table's first rows instead of being left alone at the foot of a page;
# table text is smaller, ragged right and hyphenated, with narrow padding, so that a long header word
# ("P(improvement)") wraps inside its column (filters/widths.lua leaves each column room for its longest word);
# inline code longer than 24 characters (SHA-256 hashes, git commits, paths) may break after any character instead
# of running into the margin.
TYPST_STYLE = """#show figure.where(kind: table): set block(breakable: true)
#show figure.where(kind: table): set figure.caption(position: top)
#show figure.caption.where(kind: table): it => block(sticky: true, it)
#set table(inset: (x: 3pt, y: 3pt))
#show table: set par(justify: false)
#show table: set text(size: 8pt, hyphenate: true)
#show raw.where(block: false): it => if it.text.len() > 24 { it.text.clusters().join("\\u{200B}") } else { it }
"""

HTML_STYLE = """<style>
body { max-width: 60em; }
table { font-size: 0.85em; }
span.var { border-bottom: 1px dotted currentColor; cursor: help; }
td code { overflow-wrap: anywhere; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; }
figcaption, table caption { font-size: 0.9em; text-align: left; }
</style>
"""

# DOCX: Pandoc's own reference document with a smaller table text (8 pt, from the table style, so that body text
# keeps its size) and narrower cell margins; with filters/widths.lua the columns then hold their longest words
# instead of Word breaking them letter by letter. Built at render time from the Pandoc in use (no binary file in
# the repository); the caption style already keeps a table caption with its table.
DOCX_TABLE_TEXT_HALF_POINTS = 16
DOCX_CELL_MARGIN_TWIPS = 57

_MARKER_FMT = "XVAR{:06d}X"
_SHORTCODE = re.compile(r"\{\{\{<(?P<escaped>.*?)>\}\}\}|\{\{<(?P<body>.*?)>\}\}")
_INCLUDE_LINE = re.compile(r"^\s*\{\{<\s*include\s+(?P<path>\"[^\"]+\"|'[^']+'|\S+?)\s*>\}\}\s*$")
_RENDER_ERROR = re.compile(r"RENDER-ERROR\[(?P<kind>[\w-]+) (?P<id>[^\]]*)\]: (?P<msg>[^\n]*)")
_CITEPROC_MISSING = re.compile(r"\[WARNING\] Citeproc: citation (?P<id>\S+) not found")
_RESOURCE_MISSING = re.compile(r"\[WARNING\] (?:Could not fetch resource|Could not find image|"
                               r"Could not fetch) '?(?P<what>[^'\n]*)'?(?P<rest>[^\n]*)")


class RenderError(EngineError, RuntimeError):
    """The manuscript could not be rendered; the message names every problem found."""


@dataclass(frozen=True)
class _Line:
    text: str
    file: Path
    lineno: int
    parent: "_Line | None" = None  # the include shortcode line that brought this line in


def _where(line: _Line, root: Path) -> str:
    try:
        name = line.file.relative_to(root).as_posix()
    except ValueError:
        name = line.file.as_posix()
    text = f"line {line.lineno} of {name}"
    if line.parent is not None:
        text += f", included at {_where(line.parent, root)}"
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
    """The text for a variable's value. Values should be preformatted strings (see timecourse_meta.report.numbers);
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
            data = {}
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
        where = f" ({_where(include_from, root)})" if include_from else ""
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
class _Prepared:
    text: str
    lines: list[_Line]
    markers: dict[str, dict]
    used_keys: list[str]


def _prepare(qmd: Path, variables: Mapping, lineage: Mapping | None, root: Path) -> _Prepared:
    lines = _expand(qmd, (), root, None)
    markers: dict[str, dict] = {}
    used: list[str] = []
    errors: list[str] = []
    out_lines = []

    for line in lines:
        def replace(m: re.Match) -> str:
            if m.group("escaped") is not None:
                return "{{<" + m.group("escaped") + ">}}"
            body = m.group("body").strip()
            parts = body.split()
            where = _where(line, root)
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

        new = _SHORTCODE.sub(replace, line.text)
        # a shortcode opener left over means a malformed or line-broken shortcode
        scrubbed = _SHORTCODE.sub("", line.text)
        if "{{<" in scrubbed:
            errors.append(f"unterminated shortcode ({_where(line, root)}): {line.text.strip()}")
        out_lines.append(new)

    if errors:
        raise RenderError("\n".join(errors))
    return _Prepared("\n".join(out_lines) + "\n", lines, markers, used)


def _front_matter(qmd: Path) -> dict:
    text = qmd.read_text(encoding="utf-8")
    m = re.match(r"^---\s*\n(.*?)\n(?:---|\.\.\.)\s*(?:\n|$)", text, flags=re.S)
    if not m:
        return {}
    try:
        data = yaml.safe_load(m.group(1))
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


# ------------------------------------------------------------------------------------------------ pandoc

def _pandoc_path() -> str:
    try:
        import pypandoc

        path = pypandoc.get_pandoc_path()
    except Exception:  # noqa: BLE001 - fall back to a pandoc on PATH
        path = shutil.which("pandoc")
    if not path:
        raise RenderError("pandoc not found (install pypandoc-binary)")
    return path


def _check_pandoc(pandoc: str) -> None:
    out = subprocess.run([pandoc, "--version"], capture_output=True, text=True, check=False).stdout
    m = re.search(r"pandoc\S*\s+(\d+)\.(\d+)(?:\.(\d+))?", out)
    if not m:
        raise RenderError(f"cannot read pandoc version from {pandoc}")
    version = tuple(int(x or 0) for x in m.groups())
    if version < MIN_PANDOC:
        raise RenderError(f"pandoc {'.'.join(map(str, version))} is too old; need >= "
                          f"{'.'.join(map(str, MIN_PANDOC))}")


_KEY_TAIL = r"(?![\w:.#$%&+?<>~/-]*\w)"  # the key does not continue (Pandoc citation-key characters)


def _locate(prepared: _Prepared, kind: str, ident: str, root: Path) -> str:
    """" (line N of file)" for the source line an error from the filters is about, or ""."""
    if kind.startswith(("xref-duplicate", "xref-table")):
        pattern, nth = re.compile(r"#" + re.escape(ident) + _KEY_TAIL), (2 if kind == "xref-duplicate" else 1)
    elif kind.startswith(("xref", "cite")):
        pattern, nth = re.compile(r"(?<![\w@])@" + re.escape(ident) + _KEY_TAIL), 1
    elif ident:
        pattern, nth = re.compile(re.escape(ident)), 1
    else:
        return ""
    count = 0
    for line in prepared.lines:
        if pattern.search(line.text):
            count += 1
            if count == nth:
                return f" ({_where(line, root)})"
    return ""


def _run_pandoc(pandoc: str, args: list[str], cwd: Path, env: dict, prepared: _Prepared, root: Path,
                label: str) -> None:
    proc = subprocess.run([pandoc, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    stderr = proc.stderr or ""
    errors: list[str] = []
    for m in _RENDER_ERROR.finditer(stderr):
        kind, ident, msg = m.group("kind"), m.group("id"), m.group("msg")
        where = _locate(prepared, kind, ident, root) if not kind.startswith(("internal", "var")) else ""
        if msg + where not in errors:
            errors.append(msg + where)
    for m in _CITEPROC_MISSING.finditer(stderr):
        msg = f"citation key '{m.group('id')}' not in the bibliography" + _locate(prepared, "cite", m.group("id"), root)
        if not any(f"'{m.group('id')}'" in e for e in errors):
            errors.append(msg)
    for m in _RESOURCE_MISSING.finditer(stderr):
        what = m.group("what").strip()
        resource = re.split(r"[:\s]", what, maxsplit=1)[0]
        errors.append(f"resource not found: {what}{m.group('rest')}".rstrip()
                      + _locate(prepared, "resource", resource, root))
    if errors:
        raise RenderError("\n".join(errors))
    if proc.returncode != 0:
        raise RenderError(f"pandoc failed writing {label} (exit {proc.returncode}):\n{stderr.strip()}")
    for line in stderr.splitlines():
        if line.strip():
            log.warning("pandoc (%s): %s", label, line.strip())


_REMOTE_IN_HTML = re.compile(
    r"<(?:script|img|iframe|audio|video|source|embed)\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//"
    r"|<link\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//[^>]*>"
    r"|@import\s+(?:url\()?[\"']?(?:https?:)?//",
    re.I,
)


def _check_html_offline(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for m in _REMOTE_IN_HTML.finditer(text):
        tag = m.group(0)
        if tag.lower().startswith("<link") and not re.search(r"rel\s*=\s*[\"']?(stylesheet|preload|icon)", tag, re.I):
            continue
        raise RenderError(f"HTML would fetch a remote resource when opened: {tag[:120]}")


# ------------------------------------------------------------------------------------------------- main

def render_manuscript(
    qmd_path: str | os.PathLike,
    variables_yml: str | os.PathLike,
    bibliography: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    formats: Sequence[str] = FORMATS,
    lineage=None,
    csl: str | os.PathLike | None = None,
    resource_path: Sequence[str | os.PathLike] | None = None,
    font_paths: Sequence[str | os.PathLike] = (),
    keep_intermediates: str | os.PathLike | None = None,
) -> dict[str, Path]:
    """Render `qmd_path` to `out_dir/<stem>.html|.docx|.pdf`; return {format: path}.

    `variables_yml`: the generated variables file. `bibliography`: the .bib file (None: the front matter's
    `bibliography:`, relative to the .qmd). `lineage`: optional mapping or JSON/YAML/CSV file (see module
    docstring). `csl`: CSL style file (None: the front matter's `csl:`, else Pandoc's default Chicago
    author-date). `resource_path`: folders searched for figures, after the .qmd's own folder.
    `font_paths`: extra font folders for the PDF (the typst wheel's embedded fonts are always there).
    `keep_intermediates`: a folder to copy the intermediate files into after a successful render (the
    pre-processed Markdown, the values JSON, the Typst source and its media), for inspection.
    Raises RenderError (nothing written) if anything cannot be resolved.
    """
    qmd = Path(qmd_path).resolve()
    if not qmd.is_file():
        raise RenderError(f"manuscript not found: {qmd}")
    formats = tuple(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise RenderError(f"unknown output format(s) {unknown or formats}; choose from {FORMATS}")
    root = qmd.parent
    out_dir = Path(out_dir)
    front = _front_matter(qmd)

    if bibliography is None and front.get("bibliography"):
        bib_value = front["bibliography"]
        bibliography = (root / (bib_value[0] if isinstance(bib_value, list) else bib_value))
    bib = Path(bibliography).resolve() if bibliography is not None else None
    if bib is not None and not bib.is_file():
        raise RenderError(f"bibliography not found: {bib}")
    if csl is None and front.get("csl"):
        csl = root / str(front["csl"])
    csl_path = Path(csl).resolve() if csl is not None else None
    if csl_path is not None and not csl_path.is_file():
        raise RenderError(f"CSL style not found: {csl_path}")

    variables = load_variables(variables_yml)
    lineage_map = load_lineage(lineage)
    prepared = _prepare(qmd, variables, lineage_map, root)

    resources = [root] + [Path(p).resolve() for p in (resource_path or ())]
    pandoc = _pandoc_path()
    _check_pandoc(pandoc)
    stem = qmd.stem

    with tempfile.TemporaryDirectory(prefix="msct-render-") as tmp:
        work = Path(tmp)
        src = work / "source.md"
        src.write_text(prepared.text, encoding="utf-8")
        vars_json = work / "vars.json"
        vars_json.write_text(json.dumps(prepared.markers, ensure_ascii=False), encoding="utf-8")
        style = work / "style.html"
        style.write_text(HTML_STYLE, encoding="utf-8")

        env = dict(os.environ, MSCT_RENDER_VARS=str(vars_json))
        common = [str(src), "--from", "markdown", "--standalone",
                  "--resource-path", os.pathsep.join(str(p) for p in resources)]
        for name in FILTERS:
            common += ["--lua-filter", str(FILTER_DIR / name)]
        common.append("--citeproc")
        if bib is not None:
            common += ["--bibliography", str(bib)]
        if csl_path is not None:
            common += ["--csl", str(csl_path)]
        if not front.get("title") and not front.get("pagetitle"):
            common += ["--metadata", f"pagetitle={stem}"]  # else Pandoc names the page after source.md

        built: dict[str, Path] = {}
        if "html" in formats:
            out = work / f"{stem}.html"
            _run_pandoc(pandoc, common + ["--to", "html5", "--embed-resources", "--mathml",
                                          "--include-in-header", str(style), "--output", str(out)],
                        work, env, prepared, root, "HTML")
            _check_html_offline(out)
            built["html"] = out
        if "docx" in formats:
            out = work / f"{stem}.docx"
            reference = _reference_docx(pandoc, work / "reference.docx")
            _run_pandoc(pandoc, common + ["--to", "docx", "--reference-doc", str(reference), "--output", str(out)],
                        work, env, prepared, root, "DOCX")
            built["docx"] = out
        if "pdf" in formats:
            typ_dir = work / "typst"
            typ_dir.mkdir()
            typ = typ_dir / f"{stem}.typ"
            typ_style = work / "style.typ"
            typ_style.write_text(TYPST_STYLE, encoding="utf-8")
            # --include-before-body, not --include-in-header: that would replace the header-includes the filters
            # set, and rules before the template's would be overridden by its `#set table(...)`
            _run_pandoc(pandoc, common + ["--to", "typst", "--extract-media", "media", "--include-before-body",
                                          str(typ_style), "--output", str(typ)],
                        typ_dir, env, prepared, root, "Typst")
            out = work / f"{stem}.pdf"
            _compile_typst(typ, out, typ_dir, font_paths)
            built["pdf"] = out

        published = _publish(built, out_dir)
        if keep_intermediates is not None:
            keep = Path(keep_intermediates)
            if keep.exists():
                shutil.rmtree(keep)
            shutil.copytree(work, keep, ignore=shutil.ignore_patterns(*(p.name for p in built.values())))
        return published


def _reference_docx(pandoc: str, dest: Path) -> Path:
    """Pandoc's default reference.docx with the table style's text at DOCX_TABLE_TEXT_HALF_POINTS, cell
    margins of DOCX_CELL_MARGIN_TWIPS (see the constants) and automatic hyphenation on."""
    import zipfile

    plain = dest.with_name("pandoc-reference.docx")
    proc = subprocess.run([pandoc, "--output", str(plain), "--print-default-data-file", "reference.docx"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not plain.is_file():
        raise RenderError(f"pandoc could not write its reference.docx: {proc.stderr.strip()}")
    with zipfile.ZipFile(plain) as src:
        entries = [(info, src.read(info)) for info in src.infolist()]
    styled = False
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as out:
        for info, data in entries:
            if info.filename == "word/styles.xml":
                data, styled = _table_style(data.decode("utf-8"))
                data = data.encode("utf-8")
            elif info.filename == "word/settings.xml" and b"autoHyphenation" not in data:
                # Word hyphenates (narrow table columns wrap at syllables, not letter by letter)
                # (schema order: right after defaultTabStop)
                data = re.sub(rb"(<w:defaultTabStop[^>]*/>)", rb"\1<w:autoHyphenation />", data, count=1)
            out.writestr(info, data)
    if not styled:
        raise RenderError("pandoc's reference.docx has no table style 'Table' to set the table text size in")
    return dest


def _table_style(styles: str) -> tuple[str, bool]:
    m = re.search(r'(<w:style w:type="table"[^>]*w:styleId="Table"[^>]*>)(.*?)(</w:style>)', styles, flags=re.S)
    if not m:
        return styles, False
    body = re.sub(r'(<w:(?:left|right) w:w=")\d+(" w:type="dxa" />)', rf"\g<1>{DOCX_CELL_MARGIN_TWIPS}\g<2>",
                  m.group(2))
    size = (f'<w:rPr><w:sz w:val="{DOCX_TABLE_TEXT_HALF_POINTS}" /><w:szCs w:val="{DOCX_TABLE_TEXT_HALF_POINTS}" />'
            "</w:rPr>")
    body = re.sub(r"(<w:tblPr>)", size + r"\1", body, count=1) if "<w:rPr>" not in body else body
    return styles[:m.start()] + m.group(1) + body + m.group(3) + styles[m.end():], True


def _compile_typst(typ: Path, out: Path, root: Path, font_paths: Sequence) -> None:
    try:
        import typst
    except ImportError:  # pragma: no cover - the environment pins the wheel
        raise RenderError("the typst Python package is needed for the PDF") from None
    kwargs = {"root": str(root), "font_paths": [str(Path(p).resolve()) for p in font_paths],
              "ignore_system_fonts": True}
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit():
        kwargs["timestamp"] = int(epoch)
    try:
        _, warnings = typst.compile_with_warnings(str(typ), output=str(out), **kwargs)
    except typst.TypstError as exc:
        raise RenderError(f"typst could not compile the PDF: {exc.message}\n{exc.diagnostic}") from None
    except RuntimeError as exc:
        raise RenderError(f"typst could not compile the PDF: {exc}") from None
    for w in warnings or ():
        log.warning("typst: %s", getattr(w, "message", w))
    if not out.is_file() or out.stat().st_size == 0:
        raise RenderError("typst produced no PDF")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish(built: dict[str, Path], out_dir: Path) -> dict[str, Path]:
    """Move finished files into out_dir: copy each to a temporary name there, then os.replace all."""
    out_dir.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[Path, Path]] = []
    try:
        for fmt, path in built.items():
            fd, tmp_name = tempfile.mkstemp(dir=out_dir, prefix=f".{path.name}.", suffix=".tmp")
            os.close(fd)
            shutil.copyfile(path, tmp_name)
            os.chmod(tmp_name, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
            staged.append((Path(tmp_name), out_dir / path.name))
        for tmp_path, final in staged:
            os.replace(tmp_path, final)
    finally:
        for tmp_path, _ in staged:
            if tmp_path.exists():
                tmp_path.unlink()
    return {fmt: out_dir / path.name for fmt, path in built.items()}
