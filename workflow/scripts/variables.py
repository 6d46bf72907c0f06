# Rules `variables` and `provenance` (workflow/rules/manuscript.smk).
import logging

from timecourse_meta.manuscript import provenance
from timecourse_meta.manuscript import variables

s = snakemake  # noqa: F821
logging.basicConfig(level=logging.WARNING, handlers=[logging.FileHandler(s.log[0])])
logging.getLogger("timecourse_meta").setLevel(logging.INFO)
if s.rule == "variables":
    variables.write_variables(s.input[0], s.output.yml, s.output.lineage, s.output.priors)
elif s.rule == "provenance":
    provenance.write_provenance(s.input.config, s.input.pyproject, list(s.input.files), s.output.md, s.output.json,
                                git=s.params.git)
else:
    raise ValueError(f"workflow/scripts/variables.py does not serve rule {s.rule!r}")
