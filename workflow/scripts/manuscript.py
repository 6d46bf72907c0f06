# Rules `manuscript_assets` and `manuscript` (workflow/rules/manuscript.smk).
import logging
from pathlib import Path

from timecourse_meta.core import review
from timecourse_meta.manuscript import document

s = snakemake  # noqa: F821
if s.rule == "manuscript_assets":
    document.stage_assets(s.params.pairs)
elif s.rule == "manuscript":
    logging.basicConfig(level=logging.WARNING, handlers=[logging.FileHandler(s.log[0])])
    logging.getLogger("timecourse_meta").setLevel(logging.INFO)
    out = document.run_manuscript(s.input.qmd, s.input.variables, s.input.lineage, s.input.bibliography,
                                  s.input.csl, Path(s.output.html).parent,
                                  vocabulary=review.load_vocabulary(s.input.vocabulary))
    expected = {"html": s.output.html, "docx": s.output.docx, "pdf": s.output.pdf}
    for fmt, path in expected.items():
        if Path(out[fmt]).resolve() != Path(path).resolve():
            raise RuntimeError(f"rendered {out[fmt]}, but the rule declares {path}")
else:
    raise ValueError(f"workflow/scripts/manuscript.py does not serve rule {s.rule!r}")
