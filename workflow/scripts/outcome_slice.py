from msct_review.pipeline import run_outcome_slice

run_outcome_slice(snakemake.input[0], snakemake.wildcards.outcome, snakemake.output[0])  # noqa: F821
