"""Render the manuscript (Quarto-flavoured Pandoc Markdown) to self-contained HTML, DOCX and PDF, offline.

Quarto itself is not available, so this module drives the engines Quarto uses: Pandoc (from the
`pypandoc-binary` wheel) with Lua filters, and the `typst` wheel for the PDF. Call `render_manuscript` (the
Snakemake rule does); there is no command line.

Pipeline
--------
1. The Python pre-pass over the source text (`timecourse_meta.manuscript.prepass`: includes, `{{< var >}}`
   shortcodes checked and replaced by markers, the lineage of each variable), keeping file/line numbers for
   error messages.
2. Pandoc reads the result with five filters, in this order:
   * `filters/vars.lua` puts each value in place of its marker (in HTML wrapped in
     `<span class="var" data-key=KEY title=LINEAGE>`), reading them from the JSON file named by the environment
     variable TIMECOURSE_META_RENDER_VARS (`RENDER_VARS_ENV`); a marker it cannot place fails the render;
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
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from timecourse_meta.manuscript.prepass import (Prepared, RenderError, describe_line, format_value,  # noqa: F401
                                                front_matter, lineage_title, load_lineage, load_variables,
                                                lookup_variable, prepare)

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

#: The environment variable that tells filters/vars.lua where the markers' values are.
RENDER_VARS_ENV = "TIMECOURSE_META_RENDER_VARS"

_RENDER_ERROR = re.compile(r"RENDER-ERROR\[(?P<kind>[\w-]+) (?P<id>[^\]]*)\]: (?P<msg>[^\n]*)")
_CITEPROC_MISSING = re.compile(r"\[WARNING\] Citeproc: citation (?P<id>\S+) not found")
_RESOURCE_MISSING = re.compile(r"\[WARNING\] (?:Could not fetch resource|Could not find image|"
                               r"Could not fetch) '?(?P<what>[^'\n]*)'?(?P<rest>[^\n]*)")


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


def _locate(prepared: Prepared, kind: str, ident: str, root: Path) -> str:
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
                return f" ({describe_line(line, root)})"
    return ""


def _run_pandoc(pandoc: str, args: list[str], cwd: Path, env: dict, prepared: Prepared, root: Path,
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
    `bibliography:`, relative to the .qmd). `lineage`: optional mapping or JSON/YAML/CSV file (see
    timecourse_meta.manuscript.prepass). `csl`: CSL style file (None: the front matter's `csl:`, else Pandoc's
    default Chicago author-date). `resource_path`: folders searched for figures, after the .qmd's own folder.
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
    front = front_matter(qmd)
    bib, csl_path = _bibliography_and_style(root, front, bibliography, csl)
    prepared = prepare(qmd, load_variables(variables_yml), load_lineage(lineage), root)
    resources = [root] + [Path(p).resolve() for p in (resource_path or ())]
    pandoc = _pandoc_path()
    _check_pandoc(pandoc)

    with tempfile.TemporaryDirectory(prefix="manuscript-render-") as tmp:
        work = Path(tmp)
        common, env = _pandoc_inputs(work, prepared, resources, bib, csl_path, front, qmd.stem)
        built = _build(formats, pandoc, common, env, work, prepared, root, qmd.stem, font_paths)
        published = _publish(built, Path(out_dir))
        if keep_intermediates is not None:
            keep = Path(keep_intermediates)
            if keep.exists():
                shutil.rmtree(keep)
            shutil.copytree(work, keep, ignore=shutil.ignore_patterns(*(p.name for p in built.values())))
        return published


def _bibliography_and_style(root: Path, front: dict, bibliography, csl) -> tuple[Path | None, Path | None]:
    """The .bib and .csl files (arguments first, else the front matter's, relative to the .qmd), checked."""
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
    return bib, csl_path


def _pandoc_inputs(work: Path, prepared: Prepared, resources: list[Path], bib: Path | None, csl_path: Path | None,
                   front: dict, stem: str) -> tuple[list[str], dict]:
    """Write the pre-processed source, the markers' values and the HTML style into `work`; return the Pandoc
    arguments every format shares and the environment that names the values for filters/vars.lua."""
    src = work / "source.md"
    src.write_text(prepared.text, encoding="utf-8")
    vars_json = work / "vars.json"
    vars_json.write_text(json.dumps(prepared.markers, ensure_ascii=False), encoding="utf-8")
    (work / "style.html").write_text(HTML_STYLE, encoding="utf-8")
    env = dict(os.environ, **{RENDER_VARS_ENV: str(vars_json)})
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
    return common, env


def _build(formats: Sequence[str], pandoc: str, common: list[str], env: dict, work: Path, prepared: Prepared,
           root: Path, stem: str, font_paths: Sequence) -> dict[str, Path]:
    """Each requested format inside `work`: {format: path}."""
    built: dict[str, Path] = {}
    if "html" in formats:
        out = work / f"{stem}.html"
        _run_pandoc(pandoc, common + ["--to", "html5", "--embed-resources", "--mathml",
                                      "--include-in-header", str(work / "style.html"), "--output", str(out)],
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
    return built


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
