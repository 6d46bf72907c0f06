from timecourse_meta.steps.pipeline import run_model_config

run_model_config(snakemake.params.settings, snakemake.output[0])  # noqa: F821
