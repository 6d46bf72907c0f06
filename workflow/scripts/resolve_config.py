from msct_review.pipeline import run_resolve_config

run_resolve_config(snakemake.input[0], snakemake.output[0])  # noqa: F821
