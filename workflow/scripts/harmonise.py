from pathlib import Path

from msct_review.pipeline import run_harmonise

s = snakemake  # noqa: F821
run_harmonise(s.input.config, str(Path(s.input.outcomes).parent), s.output.table, s.output.coverage)
