"""timecourse_meta.manuscript.render: the fixture manuscript rendered to HTML, DOCX and PDF, and every failure mode."""

import html as htmllib
import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest

from timecourse_meta.manuscript import prepass
from timecourse_meta.manuscript import render as R
from timecourse_meta.manuscript.render import RenderError, render_manuscript

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "manuscript"
BIB = ROOT / "manuscript" / "references.bib"
CSL = ROOT / "manuscript" / "vancouver.csl"
M = "\u2212"
SLEDAI = f"{M}2.1 (95% CrI {M}3.0 to {M}1.2)"
PROTEINURIA = f"{M}39% (95% CrI {M}55% to {M}18%)"


def squash(text: str) -> str:
    """Collapse whitespace (Pandoc wraps lines) and unescape entities."""
    return re.sub(r"\s+", " ", htmllib.unescape(text))


def docx_text(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        xml = zf.read("word/document.xml").decode("utf-8")
    paragraphs = re.findall(r"<w:p[ >].*?</w:p>", xml, flags=re.S)
    return "\n".join(
        htmllib.unescape("".join(re.findall(r"<w:t(?: [^>]*)?>([^<]*)</w:t>", p))) for p in paragraphs
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    keep = tmp_path_factory.mktemp("keep") / "work"
    paths = render_manuscript(
        FIXTURE / "index.qmd", FIXTURE / "_variables.yml", BIB, out,
        lineage=FIXTURE / "lineage.json", csl=CSL, keep_intermediates=keep,
    )
    return {"paths": paths, "out": out, "keep": keep}


@pytest.fixture
def work(tmp_path):
    """A writable copy of the fixture manuscript folder."""
    target = tmp_path / "manuscript"
    shutil.copytree(FIXTURE, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def render_html(folder: Path, out: Path, **kwargs):
    return render_manuscript(folder / "index.qmd", folder / "_variables.yml", BIB, out,
                             formats=("html",), csl=CSL, **kwargs)


# ------------------------------------------------------------------------------------------ successful render

def test_render_is_deterministic(rendered, tmp_path):
    again = render_manuscript(FIXTURE / "index.qmd", FIXTURE / "_variables.yml", BIB, tmp_path,
                              formats=("html",), lineage=FIXTURE / "lineage.json", csl=CSL)
    assert again["html"].read_bytes() == rendered["paths"]["html"].read_bytes()


def test_writes_three_outputs(rendered):
    paths, out = rendered["paths"], rendered["out"]
    assert paths == {"html": out / "index.html", "docx": out / "index.docx", "pdf": out / "index.pdf"}
    assert sorted(p.name for p in out.iterdir()) == ["index.docx", "index.html", "index.pdf"]  # no temp files
    for p in paths.values():
        assert p.stat().st_size > 1000
        assert p.stat().st_mode & 0o044, "outputs should be readable like any other file"


def test_html_numbers_crossrefs_figures_bibliography(rendered):
    raw = rendered["paths"]["html"].read_text(encoding="utf-8")
    text = squash(raw)
    # resolved numbers: running text, the YAML title and abstract, table cells from an included file, captions
    assert 'data-key="meta.n_studies"' in text and ">4</span> studies)</h1>" in text
    assert f"Pooled SLEDAI change at 6 months was" in text and SLEDAI in text
    assert ">105</span> patients" in text
    assert ">87.5%</span>" in text                                    # flat dotted key
    assert f"<td style=\"text-align: left;\"><span class=\"var\" data-key=\"proteinuria.m6.pct_change\"" in text
    assert PROTEINURIA in text
    assert "s = 0.5" in text or "<mn>0.5</mn>" in text               # inside math
    assert "<code>n_draws = 4000</code>" in text and "draws: 4000" in text  # inside code
    assert "{{< var not.a.key >}}" in text                            # escaped shortcode stays literal
    assert "XVAR" not in raw and "{{< var sledai" not in text
    # cross-references and numbered captions
    assert '<a href="#fig-forest-sledai">Figure 1</a> shows' in text
    assert '<a href="#tbl-sof">Table 1</a> the summary' in text
    assert 'see <a href="#tbl-appraisal">Table 2</a>' in text
    assert 'Figure <a href="#fig-trajectory">2</a>' in text               # [-@fig-trajectory]
    assert "<figcaption>Figure 1: Forest plot of change in SLEDAI" in text
    assert "<figcaption>Figure 2: Posterior mean trajectory" in text
    assert "<caption>Table 1: Summary of findings" in text
    assert "<caption>Table 2: Critical appraisal" in text
    # embedded figures (PNG and SVG), no remote resource, MathML instead of a script
    assert re.search(r'<img[^>]+src="data:image/png;base64,', raw)
    assert re.search(r'<img[^>]+src="data:image/svg\+xml;base64,', raw)
    assert "<math" in raw and "<script" not in raw
    assert not re.search(r'(?:src|href)="(?:https?:)?//[^"]+"[^>]*>(?!\s*10\.)', raw.split('id="refs"')[0])
    # numbered citations and the bibliography
    assert '[<a href="#ref-parlindungan2023" role="doc-biblioref">1</a>]' in text
    assert "Parlindungan F, Damanik J, Araminta AP, Soetedjo AV, Hidayat R, Wibowo SAK, et al." in text
    assert "Rheumatol Autoimmun. 2023;3(3):140–8." in text
    assert "Ann Rheum Dis. 2017;76(8):1436–9. doi:" in text
    assert ">References</h1>" in text


def test_html_lineage_on_hover(rendered):
    text = squash(rendered["paths"]["html"].read_text(encoding="utf-8"))
    assert ('<span class="var" data-key="sledai.m6.delta" title="sledai.m6.delta — from '
            'results/models/sledai/summary.csv; raw rows outcomes:17, outcomes:18; source '
            'https://ard.bmj.com/content/76/8/1436 (Table 2)">' + SLEDAI + "</span>") in text


def test_docx_numbers_and_crossrefs(rendered):
    path = rendered["paths"]["docx"]
    text = squash(docx_text(path))
    assert SLEDAI in text and PROTEINURIA in text and "105 patients" in text
    assert "Figure 1 shows the SLEDAI forest plot" in text and "Table 1 the summary" in text
    assert "Figure 1: Forest plot of change in SLEDAI" in text
    assert "Table 1: Summary of findings (4 studies)" in text
    assert "Parlindungan F, Damanik J" in text
    assert "XVAR" not in text
    with zipfile.ZipFile(path) as zf:
        assert any(n.startswith("word/media/") and n.endswith(".png") for n in zf.namelist())


def test_pdf(rendered):
    data = rendered["paths"]["pdf"].read_bytes()
    assert data.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", data))
    assert pages >= 1
    assert b"Fixture manuscript: MSCT in refractory lupus nephritis (4 studies)" in data  # title metadata
    # the Typst source the PDF was compiled from
    typ = (rendered["keep"] / "typst" / "index.typ").read_text(encoding="utf-8")
    assert "#set figure(numbering: none)" in typ              # one numbering: the captions' own labels
    assert "#show figure.where(kind: table): set block(breakable: true)" in typ  # long tables go on
    assert "Figure 1: Forest plot of change in SLEDAI" in squash(typ)
    assert "Table 1: Summary of findings" in squash(typ)
    assert "#link(<fig-forest-sledai>)[Figure 1]" in typ
    assert SLEDAI in squash(typ) and "XVAR" not in typ
    assert re.search(r'image\("media/[^"]+\.png"', typ) and re.search(r'image\("media/[^"]+\.svg"', typ)


# ------------------------------------------------------------------------------------------------- failures

def test_unknown_variable_fails_with_name_and_line(work, tmp_path):
    edit(work / "index.qmd", "{{< var counts.n_patients >}}", "{{< var sledai.m6.deltaX >}}")
    line = next(i for i, t in enumerate((work / "index.qmd").read_text().splitlines(), 1) if "deltaX" in t)
    with pytest.raises(RenderError, match=rf"unknown variable 'sledai\.m6\.deltaX' \(line {line} of index\.qmd\)"):
        render_html(work, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_variable_in_included_table_and_abstract(work, tmp_path):
    edit(work / "tables" / "sof.md", "proteinuria.m6.k", "proteinuria.m9.k")
    edit(work / "index.qmd", "{{< var sledai.m6.p_improve >}}", "{{< var sledai.m6.p_worse >}}")
    with pytest.raises(RenderError) as exc:
        render_html(work, tmp_path / "out")
    message = str(exc.value)
    assert "unknown variable 'sledai.m6.p_worse' (line 10 of index.qmd)" in message
    assert re.search(r"unknown variable 'proteinuria\.m9\.k' \(line 4 of tables/sof\.md, included at line \d+ "
                     r"of index\.qmd\)", message)


def test_bad_values_fail(work, tmp_path):
    (work / "_variables.yml").write_text(
        "a:\n  empty: ''\n  null_value: null\n  flag: yes\n  nested: {x: 1}\n", encoding="utf-8")
    (work / "index.qmd").write_text(
        "# R\n\n{{< var a.empty >}} {{< var a.null_value >}} {{< var a.flag >}} {{< var a.nested >}}\n")
    with pytest.raises(RenderError) as exc:
        render_html(work, tmp_path / "out")
    message = str(exc.value)
    for key, why in (("a.empty", "is empty"), ("a.null_value", "is null"), ("a.flag", "is a boolean"),
                     ("a.nested", "is a mapping")):
        assert f"variable '{key}' {why}" in message


def test_unknown_crossref_fails(work, tmp_path):
    edit(work / "index.qmd", "@fig-forest-sledai shows", "@fig-foo shows")
    with pytest.raises(RenderError, match=r"unresolved cross-reference @fig-foo \(line \d+ of index\.qmd\)"):
        render_html(work, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_duplicate_id_fails(work, tmp_path):
    edit(work / "index.qmd", "{#fig-trajectory width=60%}", "{#fig-forest-sledai width=60%}")
    with pytest.raises(RenderError, match="duplicate cross-reference id #fig-forest-sledai"):
        render_html(work, tmp_path / "out")


def test_unknown_citation_fails_and_leaves_no_output(work, tmp_path):
    edit(work / "index.qmd", "[@parlindungan2023]", "[@smith2020]")
    out = tmp_path / "out"
    with pytest.raises(RenderError, match=r"citation key 'smith2020' not in references\.bib \(line \d+ of index\.qmd\)"):
        render_manuscript(work / "index.qmd", work / "_variables.yml", BIB, out, csl=CSL)
    assert not out.exists() or list(out.iterdir()) == []


def test_unknown_in_text_citation_fails(work, tmp_path):
    edit(work / "index.qmd", "@liang2010 reported", "@smith2021 reported")
    with pytest.raises(RenderError, match="citation key 'smith2021' not in references.bib"):
        render_html(work, tmp_path / "out")


def test_failure_in_last_format_publishes_nothing_and_keeps_old_outputs(work, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.html").write_text("old", encoding="utf-8")

    def broken(*args, **kwargs):
        raise RenderError("typst could not compile the PDF: simulated")

    monkeypatch.setattr(R, "_compile_typst", broken)
    with pytest.raises(RenderError, match="simulated"):
        render_manuscript(work / "index.qmd", work / "_variables.yml", BIB, out, csl=CSL)
    assert sorted(p.name for p in out.iterdir()) == ["index.html"]   # no docx/pdf, no temp files
    assert (out / "index.html").read_text(encoding="utf-8") == "old"   # the earlier output is untouched


def test_missing_figure_and_remote_figure_fail(work, tmp_path):
    edit(work / "index.qmd", "figures/forest.png", "figures/missing.png")
    with pytest.raises(RenderError, match=r"resource not found: figures/missing\.png.*\(line \d+ of index\.qmd\)"):
        render_html(work, tmp_path / "out")
    edit(work / "index.qmd", "figures/missing.png", "https://example.org/forest.png")
    with pytest.raises(RenderError, match="remote resource https://example.org/forest.png"):
        render_html(work, tmp_path / "out")


def test_shortcode_errors(work, tmp_path):
    qmd = work / "index.qmd"
    edit(qmd, "An escaped shortcode", "{{< meta title >}} An escaped shortcode")
    with pytest.raises(RenderError, match=r"unsupported shortcode '\{\{< meta title >\}\}'"):
        render_html(work, tmp_path / "out")
    edit(qmd, "{{< meta title >}}", "{{< include tables/sof.md >}}")
    with pytest.raises(RenderError, match="include shortcode must stand alone on its line"):
        render_html(work, tmp_path / "out")
    edit(qmd, "{{< include tables/sof.md >}} An escaped", "An escaped")
    edit(qmd, "# Results\n", "# Results\n\nBroken {{< var counts.n_patients\n")
    with pytest.raises(RenderError, match=r"unterminated shortcode \(line 33 of index\.qmd\)"):
        render_html(work, tmp_path / "out")


def test_include_errors(work, tmp_path):
    edit(work / "index.qmd", "{{< include tables/sof.md >}}", "{{< include tables/nope.md >}}")
    with pytest.raises(RenderError, match=r"include file not found: .*nope\.md \(line \d+ of index\.qmd\)"):
        render_html(work, tmp_path / "out")
    edit(work / "index.qmd", "tables/nope.md", "tables/loop.md")
    (work / "tables" / "loop.md").write_text("{{< include loop.md >}}\n", encoding="utf-8")
    with pytest.raises(RenderError, match="include cycle"):
        render_html(work, tmp_path / "out")


def test_lineage_must_cover_every_variable(work, tmp_path):
    lineage = json.loads((FIXTURE / "lineage.json").read_text(encoding="utf-8"))
    del lineage["counts.n_patients"]
    with pytest.raises(RenderError, match=r"no lineage for variable 'counts\.n_patients' \(line \d+ of index\.qmd\)"):
        render_html(work, tmp_path / "out", lineage=lineage)


def test_quarto_figure_div(work, tmp_path):
    qmd = work / "index.qmd"
    qmd.write_text(qmd.read_text(encoding="utf-8") + (
        "\n::: {#fig-div}\n![](figures/forest.png)\n\nA figure div caption with {{< var meta.n_studies >}}.\n:::\n"
        "\nSee @fig-div.\n"), encoding="utf-8")
    text = squash(render_html(work, tmp_path / "out")["html"].read_text(encoding="utf-8"))
    assert '<figure id="fig-div">' in text
    assert "<figcaption>Figure 3: A figure div caption with" in text
    assert 'See <a href="#fig-div">Figure 3</a>.' in text


def test_front_matter_bibliography_and_default_style(work, tmp_path):
    shutil.copy(BIB, work / "refs.bib")
    (work / "index.qmd").write_text("---\nbibliography: refs.bib\n---\n\n# R\n\nAs reviewed [@parlindungan2023].\n",
                                    encoding="utf-8")
    paths = render_manuscript(work / "index.qmd", work / "_variables.yml", None, tmp_path / "out",
                              formats=("html",))
    text = squash(paths["html"].read_text(encoding="utf-8"))
    assert ">Parlindungan et al. 2023</a>)" in text      # Pandoc's built-in Chicago author-date
    assert "<title>index</title>" in text


def test_unknown_format_fails(tmp_path):
    with pytest.raises(RenderError, match="unknown output format"):
        render_manuscript(FIXTURE / "index.qmd", FIXTURE / "_variables.yml", BIB, tmp_path, formats=("epub",))


# ------------------------------------------------------------------------------------ variables and lineage

def test_lookup_nested_flat_and_mixed():
    variables = {"a": {"b": {"c": "1"}, "b.d": "2"}, "x.y": "3", "x": {"z": "4"}}
    assert prepass.lookup_variable(variables, "a.b.c") == "1"
    assert prepass.lookup_variable(variables, "a.b.d") == "2"
    assert prepass.lookup_variable(variables, "x.y") == "3"
    assert prepass.lookup_variable(variables, "x.z") == "4"
    assert prepass.lookup_variable(variables, "a.q") is prepass._MISSING


def test_yaml_number_keys_and_values(tmp_path):
    path = tmp_path / "v.yml"
    path.write_text("visit:\n  6: {n: 12}\nneg: -2.5\nbig: 1234\n", encoding="utf-8")
    variables = prepass.load_variables(path)
    assert prepass.lookup_variable(variables, "visit.6.n") == 12
    assert prepass.format_value(variables["neg"]) == f"{M}2.5"
    assert prepass.format_value(variables["big"]) == "1234"
    assert prepass.format_value("  two\nlines ") == "two lines"


def test_lineage_from_csv(tmp_path):
    path = tmp_path / "lineage.csv"
    path.write_text(
        "key,results_file,raw_rows,source_url,locator\n"
        "sledai.m6.delta,results/models/sledai/summary.csv,outcomes:17,https://ard.bmj.com/x,Table 2\n"
        "sledai.m6.delta,results/models/sledai/summary.csv,outcomes:18,https://ard.bmj.com/x,Table 2\n",
        encoding="utf-8")
    lineage = prepass.load_lineage(path)
    assert lineage["sledai.m6.delta"]["raw_rows"] == ["outcomes:17", "outcomes:18"]
    assert prepass.lineage_title("sledai.m6.delta", lineage["sledai.m6.delta"]) == (
        "sledai.m6.delta — from results/models/sledai/summary.csv; raw rows outcomes:17, outcomes:18; "
        "source https://ard.bmj.com/x (Table 2)")
    assert prepass.lineage_title("k", None) == "k"
    rows = [{"row_id": "outcomes:3", "source_url": "https://a.org", "locator": "abstract"}]
    assert prepass.lineage_title("k", {"results_file": "r.csv", "raw_rows": rows}) == (
        "k — from r.csv; raw rows outcomes:3; source https://a.org (abstract)")


# ------------------------------------------------------------------------------------------------- typesetting

WIDE_TABLE = """
| Outcome | Studies | P(improvement) | Heterogeneity τ | Statement |
|:--|--:|--:|:--|:------------------------------------------------------------------------------------------|
| SLEDAI score (points) | 4 | 0.99 | 1.2 (0.1 to 3.4) | SLEDAI probably fell after MSCT in four studies of 120 patients at 6 months. |
| Input | 61,610 | 1 | 0.5 | `8942788cd3b91f753b1f01bd4f5fcec2ec0f0b7c8241b20414fd8dae5f354cb0` |

: A wide table with narrow dash counts. {#tbl-wide}
"""


def _wide(work: Path) -> Path:
    edit(work / "index.qmd", "![Posterior mean trajectory", WIDE_TABLE + "\n![Posterior mean trajectory")
    return work


def _typst_columns(typ: str, header_word: str) -> list[float]:
    """Relative column widths (percent) of the Typst table whose header has `header_word`."""
    for m in re.finditer(r"#table\(\s*columns: \(([^)]*)\),(.*?)table\.header\((.*?)\),\n", typ, flags=re.S):
        if header_word in m.group(3):
            return [float(x.strip().rstrip("%")) for x in m.group(1).split(",") if x.strip()]
    raise AssertionError(f"no table with header {header_word!r}")


def test_pdf_table_rules_override_the_template(rendered):
    typ = (rendered["keep"] / "typst" / "index.typ").read_text(encoding="utf-8")
    body = typ[typ.index("#show: doc => conf("):]  # after the template's own '#set table(inset: 6pt, ...)'
    assert "#set table(inset: (x: 3pt, y: 3pt))" in body
    assert "#show table: set text(size: 8pt, hyphenate: true)" in body       # long header words wrap in column
    assert "#show figure.caption.where(kind: table): it => block(sticky: true, it)" in body  # caption not orphaned
    # long inline code may break after any character (a zero-width space between characters)
    assert re.search(r"#show raw\.where\(block: false\): it => if it\.text\.len\(\) > 24 .*u\{200B\}", body)


def test_wide_table_columns_leave_room_for_the_longest_word(work, tmp_path):
    paths = render_manuscript(_wide(work) / "index.qmd", work / "_variables.yml", BIB, tmp_path / "out",
                              formats=("pdf", "docx"), csl=CSL, keep_intermediates=tmp_path / "keep")
    typ = (tmp_path / "keep" / "typst" / "index.typ").read_text(encoding="utf-8")
    cols = _typst_columns(typ, "P(improvement)")
    assert len(cols) == 5 and abs(sum(cols) - 100) < 0.5
    assert cols[4] == max(cols)                               # the long statement gets the rest of the line
    # DOCX: the dashes gave P(improvement) 3 of 100 dashes; it now holds its 14 characters + padding, and the
    # table text is 8 pt through the reference document
    with zipfile.ZipFile(paths["docx"]) as zf:
        xml = zf.read("word/document.xml").decode("utf-8")
        styles = zf.read("word/styles.xml").decode("utf-8")
    table = next(t for t in re.findall(r"<w:tbl>.*?</w:tbl>", xml, flags=re.S) if "P(improvement)" in t)
    grid = [int(w) for w in re.findall(r'<w:gridCol w:w="(\d+)"', table)]
    docx = [100 * g / sum(grid) for g in grid]
    assert docx[2] >= 100 * (14 + 3) / 105 - 0.2            # a DOCX line holds about 105 characters
    assert docx[3] >= 100 * (len("Heterogeneity") + 3) / 105 - 0.2
    with zipfile.ZipFile(paths["docx"]) as zf:
        assert "<w:autoHyphenation" in zf.read("word/settings.xml").decode("utf-8")
    # PDF: those header words may hyphenate (Typst does), so they keep at least 8 characters and the statement
    # gets more of the line than in the DOCX
    assert min(cols[2], cols[3]) >= 100 * (8 + 3) / 128 - 0.1
    assert cols[4] > docx[4]
    table_style = re.search(r'<w:style [^>]*w:styleId="Table".*?</w:style>', styles, flags=re.S).group(0)
    assert '<w:sz w:val="16" />' in table_style and 'w:w="57"' in table_style


def test_short_tables_keep_automatic_widths(rendered):
    typ = (rendered["keep"] / "typst" / "index.typ").read_text(encoding="utf-8")
    assert re.search(r"#table\(\s*columns: 3,", typ)  # the fixture's short summary table: Typst sizes it
