"""timecourse_meta.manuscript.lint: hand-typed numbers in the abstract and Results are found, with their line numbers."""

from pathlib import Path

import pytest

from timecourse_meta.manuscript.lint import Finding, LintError, check_qmd, format_findings, lint_qmd, lint_text

FIXTURE = Path(__file__).parent / "fixtures" / "manuscript" / "index.qmd"

DOC = """---
title: "Title with 3 numbers is not checked by default"
abstract: |
  SLEDAI fell by {{< var sledai.m6.delta >}} points at 6 months.
  Proteinuria fell by 42% at 6 months.
date: 2023-09-01
---

# Introduction

The review included 4 studies (not checked: not a default section).

# Results

Pooled SLEDAI change was {{< var sledai.m6.delta >}} [@deng2017, p. 1437]; see @fig-forest and @tbl-sof.

![Forest plot](figures/forest-2.png){#fig-forest width=50%}

{{< include tables/sof_2.md >}}

Median SLEDAI fell from 16 to 6.

## Sensitivity

Within Results too: r = 0.5.

# Discussion

Not checked: 0.5.
"""


def numbers(findings):
    return [f.number for f in findings]


def test_fixture_manuscript_is_clean():
    assert lint_qmd(FIXTURE) == []


def test_flags_typed_numbers_with_line_numbers():
    findings = lint_text(DOC)
    assert numbers(findings) == ["42", "16", "6", "0.5"]
    first = findings[0]
    assert isinstance(first, Finding)
    assert (first.line, first.section) == (5, "abstract")
    assert first.column == DOC.splitlines()[4].index("42") + 1
    assert [f.line for f in findings[1:]] == [21, 21, 25]
    assert all(f.section == "Results" for f in findings[1:])
    assert "hand-typed number '16'" in str(findings[1])


def test_passes_clean_text():
    clean = """# Results

SLEDAI changed by {{< var sledai.m6.delta >}} at 1, 3, 6 and 12 months (95% CrI {{< var x.ci >}};
@fig-forest-sledai, [-@tbl-sof], [@gu2014; @deng2017, p. 1437]). C3, C4, eGFR (mL/min/1.73 m2), 24-h
proteinuria, SLEDAI-2K, BILAG-2004, IL-6 and anti-dsDNA were reported from 2010 to 2018, at month 6,
at weeks 4, 8 and 24, and at the 12-month visit; the 2nd infusion; 95% credible interval; $\\tau^2$.
![Forest](figures/p1.png){#fig-p1 width=50%} `code 42` <!-- comment 99 --> [link](https://x.org/a/1)
1. an ordered list item
"""
    assert lint_text(clean) == []


@pytest.mark.parametrize(
    "line",
    [
        "SLEDAI fell by 4.2 points.",
        "At 5 months.",                   # 5 is not a visit month
        "At 2 to 5 months.",
        "The 12.5% remission rate.",
        "p < 0.05.",
        "n = 81 patients.",
        "See Figure 2.",                  # should be @fig-...
        "A 90% relative change.",         # 90% not followed by an interval
        "Dose 2 x 10^6^ cells/kg.",       # 2 and 10 typed (the ^6^ superscript is notation)
        "| Gu | 81 |",
        "From −2.1 to 3.",
    ],
)
def test_flags(line):
    assert lint_text("# Results\n\n" + line + "\n"), line


def test_sections_and_allow_options():
    text = "# Methods\n\nWe drew 4000 samples.\n\n# Results\n\nThe dose was 2 x 10^6^ cells/kg.\n"
    assert lint_text(text) != []
    assert lint_text(text, allow=[r"\d+ x 10\^\d+\^ cells/kg"]) == []
    assert numbers(lint_text(text, sections=["methods"])) == ["4000"]
    assert numbers(lint_text(text, visit_months=[5], sections=["Results"])) == ["2", "10"]
    # a nolint comment skips its line
    assert lint_text("# Results\n\nOdd 7 case. <!-- lint: allow -->\n") == []


def test_code_fences_and_multiline_comments_are_skipped():
    text = "# Results\n\n```\nx = 12\n```\n\n<!--\n99 bottles\n-->\nClean.\n"
    assert lint_text(text) == []


def test_heading_with_attributes_and_nesting():
    text = "# Results {#sec-results}\n\n7 here.\n\n### Deep\n\n8 here.\n\n## Other\n\n9 here.\n"
    assert numbers(lint_text(text)) == ["7", "8", "9"]
    text2 = "## Results\n\n7 here.\n\n# Discussion\n\n9 here.\n"
    assert numbers(lint_text(text2)) == ["7"]


def test_inline_abstract_value():
    text = '---\nabstract: "Fell by 3.4 points."\ntitle: x\n---\n\n# Results\n'
    findings = lint_text(text)
    assert numbers(findings) == ["3.4"] and findings[0].line == 2


def test_check_qmd_raises_with_all_findings(tmp_path):
    path = tmp_path / "m.qmd"
    path.write_text(DOC, encoding="utf-8")
    with pytest.raises(LintError) as exc:
        check_qmd(path)
    message = str(exc.value)
    assert "4 hand-typed number(s)" in message
    assert f"{path}: line 21" in message
    check_qmd(FIXTURE)  # clean: no exception
    assert format_findings([]) == ""
