from pathlib import Path

import yaml

from timecourse_meta.steps.pipeline import run_harmonise

s = snakemake  # noqa: F821
run_harmonise(yaml.safe_load(s.params.settings), str(Path(s.input.outcomes).parent), s.output.table,
              s.output.coverage)
