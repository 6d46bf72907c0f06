"""Find numbers typed by hand in the manuscript where every number should come from `{{< var >}}`.

`lint_qmd(path)` reads a .qmd and returns a `Finding` (line, column, the number, section, the line's text) for
each digit run in the checked sections (default: the YAML `abstract` and the "Results" section) that is not
inside a shortcode and not on the short allowlist. `check_qmd` raises `LintError` listing them.

What is not a hand-typed number:
* anything inside `{{< var ... >}}` / `{{< include ... >}}` (and `{{{< ... >}}}`), inline code, HTML comments
  and tags, fenced code blocks, citations and cross-references (`@key`, `[-@fig-x]`), attribute blocks
  (`{#fig-x width=50%}`), link and image targets (`](figures/forest.png)`), bare URLs, footnote markers
  (`[^1]`), ordered-list markers at the start of a line, and sub/superscript indices (`x_0`, `\\tau^2`, `m^2^`);
* digits that are part of a name: glued to letters on the left (C3, C4, CD4, Th17) or joined to a word by a
  hyphen (EQ-5D, IL-6, PHQ-9); ordinals (1st, 2nd, 3rd, 4th);
* the allowlist: years 1900-2100; visit times followed (or preceded) by month(s)/week(s) when every number of
  the list is a scheduled visit ("at 1, 3, 6 and 12 months", "month 6", "12-month follow-up"; visit months
  1, 3, 6, 9, 12, 18, 24, 36, 48, 60 and visit weeks 2, 4, 8, 12, 16, 24, 48, 52 by default); "90/95/99%" before
  "credible/confidence/prediction interval", "CrI", "CI", "PI", "HDI"; "24-h"/"24 h"/"24-hour"; "1.73 m2";
* `allow`: extra regular expressions, matched against the raw line; a digit run inside a match passes (the
  manuscript step passes the review's own, `lint.allow` of its vocabulary file);
* a line holding `<!-- lint: allow -->` (or `nolint`) is skipped.

Section names are matched case-insensitively against ATX headings ("# Results", "## Results {#sec-results}":
the section runs to the next heading of the same or a higher level) and against top-level front-matter keys
("abstract", "title").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from timecourse_meta.core.errors import EngineError

__all__ = ["Finding", "LintError", "DEFAULT_SECTIONS", "lint_text", "lint_qmd", "check_qmd", "format_findings"]

DEFAULT_SECTIONS = ("abstract", "Results")
VISIT_MONTHS = frozenset({1, 3, 6, 9, 12, 18, 24, 36, 48, 60})
VISIT_WEEKS = frozenset({2, 4, 8, 12, 16, 24, 48, 52})


@dataclass(frozen=True)
class Finding:
    line: int       # 1-based line in the file
    column: int     # 1-based column of the number
    number: str     # the number as typed
    section: str    # the checked section it is in
    context: str    # the line, stripped

    def __str__(self) -> str:
        return (f"line {self.line}, column {self.column} ({self.section}): hand-typed number "
                f"'{self.number}': {self.context}")


class LintError(EngineError, ValueError):
    """Hand-typed numbers were found."""


# ------------------------------------------------------------------------------------------------ masking

_MASKS = [
    re.compile(r"\{\{\{<.*?>\}\}\}"),                       # escaped shortcode
    re.compile(r"\{\{<.*?>\}\}"),                           # shortcode
    re.compile(r"<!--.*?-->"),                              # HTML comment on one line
    re.compile(r"`+[^`]*`+"),                               # inline code
    re.compile(r"\[\^[^\]]*\]"),                            # footnote marker
    re.compile(r"\[[^\[\]]*-?@\w[^\[\]]*\]"),                 # bracketed citation with locator
    re.compile(r"-?@[\w][\w:.#$%&+?<>~/-]*"),               # citation / cross-reference key
    re.compile(r"\{\s*[#.][^{}]*\}"),                       # attribute block {#id .class ...}
    re.compile(r"\{[^{}]*=[^{}]*\}"),                       # attribute block {key=value}
    re.compile(r"\]\([^)]*\)"),                             # link / image target
    re.compile(r"<[a-zA-Z][a-zA-Z0-9+.-]*:[^>\s]*>"),      # autolink
    re.compile(r"\b(?:https?|ftp)://\S+"),                 # bare URL
    re.compile(r"</?[a-zA-Z][^>]*>"),                       # HTML tag
    re.compile(r"^\s*\d+[.)](?=\s)"),                       # ordered-list marker
    re.compile(r"[_^]\{[^{}]*\}|[_^]\d+\^?"),                 # sub/superscript index: x_0, tau^2, m^2^
]

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_ORDINAL = re.compile(r"(?:1st|2nd|3rd|\d+th)\b", re.I)


def _mask(text: str) -> str:
    for pattern in _MASKS:
        text = pattern.sub(lambda m: " " * len(m.group(0)), text)
    return text


def _visit_list_ok(numbers_text: str, allowed: frozenset[int]) -> bool:
    values = re.findall(r"\d+(?:\.\d+)?", numbers_text)
    return bool(values) and all("." not in v and int(v) in allowed for v in values)


_LIST = r"\d+(?:\.\d+)?(?:\s*(?:,|and|or|to|&|–|—|-)\s*\d+(?:\.\d+)?)*"


def _allowed_spans(text: str, raw: str, months: frozenset[int], weeks: frozenset[int],
                   extra: Sequence[re.Pattern]) -> list[tuple[int, int]]:
    """Allowed character spans: built-in rules on the masked line, `extra` patterns on the raw line (masking
    keeps columns, so the spans line up)."""
    spans: list[tuple[int, int]] = []

    def add(m: re.Match, group: int | str = 0) -> None:
        spans.append(m.span(group))

    for m in re.finditer(r"(?<![\d.,])(?:19\d{2}|20\d{2}|2100)(?![\d%]|[.,]\d)", text):
        add(m)
    for unit, allowed in ((r"months?|mo", months), (r"weeks?|wks?", weeks)):
        # "1, 3, 6 and 12 months", "6-month", "12 months'"
        for m in re.finditer(rf"(?<![\d.,])(?P<list>{_LIST})[\s-]*(?:{unit})\b", text, re.I):
            if _visit_list_ok(m.group("list"), allowed):
                add(m, "list")
        # "month 6", "months 3 and 6", "at week 24"
        for m in re.finditer(rf"\b(?:{unit})\s+(?P<list>{_LIST})(?![\d.,]*\d)", text, re.I):
            if _visit_list_ok(m.group("list"), allowed):
                add(m, "list")
    for m in re.finditer(r"\b(?:90|95|99)\s*%(?=\s*(?:credible|confidence|prediction|posterior|highest|"
                         r"uncertainty|compatibility|interval|CrI|CI|PI|HDI|HPD|UI)\b)", text, re.I):
        add(m)
    for m in re.finditer(r"\b24[\s-]*(?:h|hr|hrs|hours?)\b", text, re.I):
        add(m)
    for m in re.finditer(r"\b1\.73\s*m(?:2|²|\^2\^)?", text):
        add(m)
    for pattern in extra:
        for m in pattern.finditer(raw):
            add(m)
    return spans


def _is_name_part(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else ""
    if before.isalpha() or before == "_":
        return True  # C3, CD4, Th17, fig_1
    if before == "-" and start > 1 and (text[start - 2].isalpha()):
        return True  # EQ-5D, IL-6, PHQ-9
    if _ORDINAL.match(text, start):
        return True  # 1st, 2nd, 3rd, 12th
    return False


# ----------------------------------------------------------------------------------------------- sections

_HEADING = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<title>.*?)\s*$")
_FENCE = re.compile(r"^\s*(?P<fence>`{3,}|~{3,})")


def _heading_title(raw: str) -> str:
    title = re.sub(r"\s*\{[^{}]*\}\s*$", "", raw)  # attributes
    title = re.sub(r"\s+#+\s*$", "", title)        # closing hashes
    return title.strip().strip("*_").strip().lower()


def _section_lines(lines: list[str], sections: Iterable[str]) -> dict[int, str]:
    """Map 0-based line index -> section name for every line to check."""
    wanted = {s.strip().lower(): s for s in sections}
    selected: dict[int, str] = {}

    # front matter
    start = 0
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
        if end is not None:
            start = end + 1
            current = None
            for i in range(1, end):
                line = lines[i]
                m = re.match(r"^(?P<key>[A-Za-z_][\w-]*)\s*:(?P<rest>.*)$", line)
                if m:  # a top-level key starts
                    key = m.group("key").lower()
                    current = wanted.get(key)
                    if current is not None:
                        rest = m.group("rest").strip()
                        if rest and rest not in ("|", ">", "|-", ">-", "|+", ">+"):
                            selected[i] = current
                    continue
                if current is not None and (line.startswith((" ", "\t")) or not line.strip()):
                    selected[i] = current
                elif line.strip():
                    current = None

    # body headings
    active: tuple[str, int] | None = None
    fence: str | None = None
    for i in range(start, len(lines)):
        line = lines[i]
        fm = _FENCE.match(line)
        if fence is not None:
            if fm and fm.group("fence")[0] == fence[0] and len(fm.group("fence")) >= len(fence):
                fence = None
            continue  # fenced code is never checked
        if fm:
            fence = fm.group("fence")
            continue
        hm = _HEADING.match(line)
        if hm:
            level = len(hm.group("hashes"))
            if active is not None and level <= active[1]:
                active = None
            name = wanted.get(_heading_title(hm.group("title")))
            if name is not None and active is None:
                active = (name, level)
            continue
        if active is not None:
            selected[i] = active[0]
    return selected


# ------------------------------------------------------------------------------------------------- public

def lint_text(text: str, sections: Sequence[str] = DEFAULT_SECTIONS, allow: Sequence[str] = (),
              visit_months: Iterable[int] = VISIT_MONTHS, visit_weeks: Iterable[int] = VISIT_WEEKS,
              ) -> list[Finding]:
    """Findings for the manuscript text `text` (see the module docstring)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    extra = [re.compile(p) for p in allow]
    months, weeks = frozenset(visit_months), frozenset(visit_weeks)
    selected = _section_lines(lines, sections)
    findings: list[Finding] = []
    in_comment = False
    for i, raw in enumerate(lines):
        # multi-line HTML comments are skipped wherever they are
        line = raw
        if in_comment:
            end = line.find("-->")
            if end < 0:
                continue
            line = " " * (end + 3) + line[end + 3:]
            in_comment = False
        start = line.find("<!--")
        if start >= 0 and line.find("-->", start) < 0:
            line = line[:start]
            in_comment = True
        if i not in selected:
            continue
        if re.search(r"<!--\s*(?:lint:\s*allow|nolint)\s*-->", raw):
            continue
        masked = _mask(line)
        spans = _allowed_spans(masked, line, months, weeks, extra)
        for m in _NUMBER.finditer(masked):
            s, e = m.span()
            if _is_name_part(masked, s, e):
                continue
            if any(a <= s and e <= b for a, b in spans):
                continue
            findings.append(Finding(i + 1, s + 1, m.group(0), selected[i], raw.strip()))
    return findings


def lint_qmd(path: str | Path, sections: Sequence[str] = DEFAULT_SECTIONS, allow: Sequence[str] = (),
             **kwargs) -> list[Finding]:
    """Findings for the .qmd file at `path`."""
    return lint_text(Path(path).read_text(encoding="utf-8"), sections=sections, allow=allow, **kwargs)


def format_findings(findings: Sequence[Finding], path: str | Path | None = None) -> str:
    prefix = f"{path}: " if path else ""
    return "\n".join(prefix + str(f) for f in findings)


def check_qmd(path: str | Path, sections: Sequence[str] = DEFAULT_SECTIONS, allow: Sequence[str] = (),
              **kwargs) -> None:
    """Raise LintError listing every hand-typed number in the checked sections of `path`."""
    findings = lint_qmd(path, sections=sections, allow=allow, **kwargs)
    if findings:
        raise LintError(f"{len(findings)} hand-typed number(s); use {{{{< var key >}}}}:\n"
                        + format_findings(findings, path))
