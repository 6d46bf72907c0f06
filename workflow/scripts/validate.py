from pathlib import Path

from msct_review.pipeline import run_validate

s = snakemake  # noqa: F821
run_validate(s.input.config, str(Path(s.output.report).parent), s.output.report)
