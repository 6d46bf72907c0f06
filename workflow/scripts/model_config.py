from msct_review.pipeline import run_model_config

run_model_config(snakemake.params.settings, snakemake.output[0])  # noqa: F821
