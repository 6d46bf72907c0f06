"""The manuscript stage's rules: variables with their lineage, the reproducibility appendix, the assets the
manuscript shows, and the render.

One `run_<rule>` per rule, keyword-only parameters named after the rule's files (see steps.runner).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from timecourse_meta.core import review as review_mod


def run_variables(*, config: str, yml: str, lineage: str, priors: str) -> None:
    """Every {{< var >}} of the manuscript from the results named by the resolved config, with lineage."""
    from timecourse_meta.manuscript.variables import build

    build.write_variables(config, yml, lineage, priors)


def run_provenance(*, config: str, pyproject: str, files: list, md: str, json: str, git: Mapping) -> None:
    """The reproducibility appendix: versions, seeds, input hashes, the git commit."""
    from timecourse_meta.manuscript import provenance

    provenance.write_provenance(config, pyproject, list(files), md, json, git=git)


def run_manuscript_assets(*, pairs: Mapping) -> None:
    """Copies of the main and the other study set's figures and tables under the names index.qmd uses."""
    from timecourse_meta.manuscript import document

    document.stage_assets(pairs)


def run_manuscript(*, qmd: str, variables: str, lineage: str, bibliography: str, csl: str, vocabulary: str,
                   html: str, docx: str, pdf: str) -> None:
    """Lint and render the manuscript (HTML, DOCX, PDF) beside `html`; the rendered files must be the
    rule's outputs."""
    from timecourse_meta.manuscript import document

    out = document.run_manuscript(qmd, variables, lineage, bibliography, csl, Path(html).parent,
                                  vocabulary=review_mod.load_vocabulary(vocabulary))
    for fmt, path in {"html": html, "docx": docx, "pdf": pdf}.items():
        if Path(out[fmt]).resolve() != Path(path).resolve():
            raise RuntimeError(f"rendered {out[fmt]}, but the rule declares {path}")
