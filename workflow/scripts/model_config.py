from msct_review.pipeline import run_model_config

run_model_config(snakemake.input[0], snakemake.wildcards.outcome, snakemake.output[0])  # noqa: F821
