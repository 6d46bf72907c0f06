# Results -> the manuscript's numbers (with their lineage), the reproducibility appendix, and the rendered
# manuscript (HTML, DOCX, PDF). Every input is listed exactly: the variables step reads the files
# timecourse_meta.manuscript.variables.variables_inputs names, the manuscript step the files index.qmd includes or shows
# (parsed from it), so a change to one of them reruns only what depends on it.

from glob import glob

from timecourse_meta.manuscript import provenance as provenance_mod
from timecourse_meta.manuscript import variables as variables_mod

MANUSCRIPT_QMD = "manuscript/index.qmd"
MANUSCRIPT_SOURCES = variables_mod.manuscript_sources(MANUSCRIPT_QMD)
# results/manuscript/{main,other}/... -> results/{figures,tables}/<study set>/... for the configured sets
MANUSCRIPT_ASSETS = variables_mod.asset_map(MANUSCRIPT_SOURCES, CONFIG)
# the review's own files, from the config (the claims left data/claims/ for data/review/ with the other review files)
PROVENANCE_INPUTS = [*RAW_INPUTS, "config.yaml", CONFIG["data"]["outcome_dictionary"], CONFIG["data"]["vocabulary"],
                     *([CONFIG["data"]["claims"]] if CONFIG["data"]["claims"] else [])]
MANUSCRIPT_TARGETS = [f"results/manuscript/index.{ext}" for ext in ("html", "docx", "pdf")]


rule variables:
    """Every {{< var >}} of the manuscript from the results, with lineage to the raw rows, and the prior table."""
    input:
        variables_mod.variables_inputs(CONFIG),
        config="results/config/resolved_config.yaml",
        code=code("variables.py"),
    output:
        yml="results/manuscript/_variables.yml",
        lineage="results/manuscript/lineage.json",
        priors="results/manuscript/priors.md",
    log:
        "results/logs/manuscript/variables.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/variables.py"


rule provenance:
    """Reproducibility appendix: package versions, seeds, SHA-256 of the input files, git commit."""
    input:
        config="results/config/resolved_config.yaml",
        pyproject=engine_path("pyproject.toml"),
        files=PROVENANCE_INPUTS,
        code=code("provenance.py"),
    params:
        # as params, so that a new commit or another installed version reruns this step
        git=provenance_mod.git_commit(workflow.basedir),
        versions=[(p["name"], p["installed"]) for p in provenance_mod.package_versions(engine_path("pyproject.toml"))],
    output:
        md="results/manuscript/provenance.md",
        json="results/manuscript/provenance.json",
    log:
        "results/logs/manuscript/provenance.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/provenance.py"


rule manuscript_assets:
    """Copies of the main and the other study set's figures and tables that index.qmd shows."""
    input:
        list(MANUSCRIPT_ASSETS.values()),
        code=code("manuscript_assets.py"),
    output:
        list(MANUSCRIPT_ASSETS.keys()),
    params:
        pairs=MANUSCRIPT_ASSETS,
    log:
        "results/logs/manuscript/manuscript_assets.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/manuscript_assets.py"


rule manuscript:
    """Lint index.qmd for hand-typed numbers, then render it (Pandoc + Typst) with every number's lineage."""
    input:
        qmd=MANUSCRIPT_QMD,
        variables="results/manuscript/_variables.yml",
        lineage="results/manuscript/lineage.json",
        sources=MANUSCRIPT_SOURCES,
        bibliography="manuscript/references.bib",
        csl="manuscript/vancouver.csl",
        vocabulary=CONFIG["data"]["vocabulary"],
        filters=sorted(engine_path(p) for p in glob(str(Path(workflow.basedir) / "workflow/timecourse_meta/manuscript/filters/*.lua"))),
        code=code("manuscript.py"),
    output:
        html=report("results/manuscript/index.html", caption="../report/manuscript.rst", category="Manuscript"),
        docx=report("results/manuscript/index.docx", caption="../report/manuscript.rst", category="Manuscript"),
        pdf=report("results/manuscript/index.pdf", caption="../report/manuscript.rst", category="Manuscript"),
    log:
        "results/logs/manuscript/manuscript.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/manuscript.py"
