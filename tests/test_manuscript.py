"""The manuscript: manuscript/index.qmd passes the hand-typed-number lint and renders from variables built from
the fixture results; a change to one input number changes that number in the HTML and nothing else; an unknown
variable fails the render, naming it."""

import html as htmllib
import re
import shutil
import struct
import zlib
from pathlib import Path

import pandas as pd
import pytest

from timecourse_meta.core import review
from timecourse_meta.manuscript import lint
from timecourse_meta.manuscript import provenance
from timecourse_meta.manuscript import render
from timecourse_meta.manuscript import variables as V
from timecourse_meta.manuscript.render import RenderError

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "fixtures" / "results"
QMD = ROOT / "manuscript" / "index.qmd"
BIB = ROOT / "manuscript" / "references.bib"
CSL = ROOT / "manuscript" / "vancouver.csl"
VOCABULARY = review.load_vocabulary(ROOT / "data" / "review" / "vocabulary.yaml")
M = "\u2212"

TINY = """---
title: Tiny manuscript
---

# Results

Patients in the main set: {{< var main.n_patients >}}. SLEDAI score: {{< var main.sledai.summary >}}.
24-h urine protein, all candidates: {{< var other.proteinuria_24h.summary >}}. Remission:
{{< var other.renal_remission.summary >}} [@deng2017].
"""


def png_bytes() -> bytes:
    """A valid 1 x 1 white PNG."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\xff\xff")) + chunk(b"IEND", b""))


def write_vars(results: Path, out: Path):
    V.write_variables(results / "config" / "resolved_config.yaml", out / "_variables.yml", out / "lineage.json",
                      out / "priors.md", results, ROOT)
    return out / "_variables.yml", out / "lineage.json"


def render_html(qmd: Path, variables: Path, lineage: Path, out: Path, **kw) -> str:
    paths = render.render_manuscript(qmd, variables, BIB, out, formats=("html",), lineage=lineage, csl=CSL, **kw)
    return paths["html"].read_text(encoding="utf-8")


def spans(html: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, value in re.findall(r'<span class="var" data-key="([^"]+)"[^>]*>(.*?)</span>', html, flags=re.S):
        found.setdefault(key, []).append(" ".join(htmllib.unescape(value).split()))
    return found


def blank(html: str, key: str) -> str:
    return re.sub(r'(<span class="var" data-key="' + re.escape(key) + r'"[^>]*>).*?(</span>)', r"\1\2", html,
                  flags=re.S)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    qmd = folder / "index.qmd"
    qmd.write_text(TINY, encoding="utf-8")
    variables, lineage = write_vars(RESULTS, folder / "vars")
    html = render_html(qmd, variables, lineage, folder / "out")
    return {"qmd": qmd, "html": html}


def test_tiny_render_shows_the_values(tiny):
    found = spans(tiny["html"])
    assert found["main.n_patients"] == ["99"]
    assert found["main.sledai.summary"] == [f"{M}8.0 points (95% CI {M}10.2 to {M}5.8) at 6 months, Deng 2017's "
                                            "own estimate (12 patients)"]
    assert re.search(r'data-key="main.sledai.summary" title="main.sledai.summary \u2014 from [^"]*'
                     r'analysis_table.csv; raw rows deng2017-010; source https://example.org/fixture/deng2017 '
                     r'\(Table 2\)"', htmllib.unescape(tiny["html"]).replace("&quot;", '"'))


# ------------------------------------------------- (b) one input number changes one number in the HTML

def _edit_table(results: Path):
    path = results / "harmonised" / "analysis_table.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.loc[table["analysis_id"] == "h0001", "mean"] = "-6.0"   # Deng 2017 SLEDAI change at 6 months
    table.to_csv(path, index=False)


def _edit_studies(results: Path):
    path = results / "validated" / "studies.csv"
    studies = pd.read_csv(path, dtype=str, keep_default_na=False)
    studies.loc[studies["study_id"] == "gu2014", "n_msct"] = "85.0"
    studies.to_csv(path, index=False)


@pytest.mark.parametrize("edit, key, before, after", [
    (_edit_table, "main.sledai.summary",
     f"{M}8.0 points (95% CI {M}10.2 to {M}5.8) at 6 months, Deng 2017's own estimate (12 patients)",
     f"{M}6.0 points (95% CI {M}8.2 to {M}3.8) at 6 months, Deng 2017's own estimate (12 patients)"),
    (_edit_studies, "main.n_patients", "99", "103"),
])
def test_one_input_change_changes_only_its_number(tiny, tmp_path, edit, key, before, after):
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results)
    edit(results)
    variables, lineage = write_vars(results, tmp_path / "vars")
    html = render_html(tiny["qmd"], variables, lineage, tmp_path / "out")
    assert spans(tiny["html"])[key] == [before]
    assert spans(html)[key] == [after]
    # every other byte of the page is the same (the lineage titles too: results paths are relative to the
    # project root, and the copy is elsewhere, so compare with the paths made equal)
    a = blank(tiny["html"], key).replace(str(RESULTS.relative_to(ROOT)), "RESULTS")
    b = blank(html, key).replace(str(results), "RESULTS")
    assert a == b


# ------------------------------------------------------------------------------- (c) unknown variables

def test_unknown_variable_fails_naming_it(tmp_path):
    variables, lineage = write_vars(RESULTS, tmp_path / "vars")
    qmd = tmp_path / "index.qmd"
    qmd.write_text(TINY.replace("{{< var main.n_patients >}}", "{{< var main.n_patients_typo >}}"), encoding="utf-8")
    with pytest.raises(RenderError, match=r"unknown variable 'main\.n_patients_typo' \(line 7 of index\.qmd\)"):
        render_html(qmd, variables, lineage, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ------------------------------------------------------------------- (d) the shipped manuscript itself

def test_shipped_manuscript_passes_the_lint():
    lint.check_qmd(QMD, allow=VOCABULARY.lint_allow)


def test_hand_typed_number_stops_the_manuscript_step(tmp_path):
    variables, lineage = write_vars(RESULTS, tmp_path / "vars")
    qmd = tmp_path / "index.qmd"
    qmd.write_text(TINY.replace("Patients in the main set:", "Patients in the main set (of 111):"), encoding="utf-8")
    with pytest.raises(lint.LintError, match="'111'"):
        V.run_manuscript(qmd, variables, lineage, BIB, CSL, tmp_path / "out", formats=("html",),
                         vocabulary=VOCABULARY)
    assert not (tmp_path / "out").exists()
    # a pattern the review's vocabulary allows (`lint.allow`) passes the lint, and the manuscript renders
    allowing = review.Vocabulary(lint_allow=[r"\(of 111\)"])
    html = V.run_manuscript(qmd, variables, lineage, BIB, CSL, tmp_path / "out", formats=("html",),
                            vocabulary=allowing)["html"].read_text(encoding="utf-8")
    assert "(of 111)" in html


def test_shipped_manuscript_renders_from_fixture_results(tmp_path):
    """index.qmd in a scratch project whose results are the fixture's variables plus placeholder figures and
    tables at every path the manuscript reads: every variable, cross-reference and citation resolves."""
    project = tmp_path / "project"
    (project / "manuscript").mkdir(parents=True)
    shutil.copy(QMD, project / "manuscript" / "index.qmd")
    for name in ("references.bib", "vancouver.csl"):
        shutil.copy(ROOT / "manuscript" / name, project / "manuscript" / name)
    out = project / "results" / "manuscript"
    variables, lineage = write_vars(RESULTS, out)
    provenance.write_provenance(RESULTS / "config" / "resolved_config.yaml", ROOT / "pyproject.toml",
                                [ROOT / "config.yaml"], out / "provenance.md", root=ROOT,
                                git={"commit": "0" * 40, "dirty": False})
    sources = V.manuscript_sources(project / "manuscript" / "index.qmd", project)
    for rel in sources:
        path = project / rel
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".png":
            path.write_bytes(png_bytes())
        else:
            path.write_text(f"| placeholder |\n|:---|\n| {path.name} |\n", encoding="utf-8")
    html = V.run_manuscript(project / "manuscript" / "index.qmd", variables, lineage,
                            project / "manuscript" / "references.bib", project / "manuscript" / "vancouver.csl",
                            out, root=project, formats=("html",), vocabulary=VOCABULARY)["html"].read_text(encoding="utf-8")
    found = spans(html)
    text = htmllib.unescape(re.sub(r"<[^>]+>", " ", html))
    assert found["main.sledai.summary"][0].startswith(f"{M}8.0 points (95% CI")
    # the study-by-study reproduction reads the claims check's set (the fixture's main set, review_2023)
    assert found["claims_set.sledai.summary"][0].startswith(f"{M}8.0 points (95% CI")
    assert found["other.name"][0] == "all candidate studies"
    assert found["methods.main_set_name"] == ["the reconstructed study set of the 2023 review"]
    assert "{{<" not in text and "XVAR" not in text and "??" not in text
    assert "Figure 1" in text and "Table 1" in text and "References" in text
    assert f"`{'0' * 40}`" not in text and "0" * 40 in text  # the appendix's git commit, as code
