from timecourse_meta.steps.pipeline import run_diagnose

s = snakemake  # noqa: F821
run_diagnose(s.input.idata, s.input.settings, s.wildcards.outcome, s.wildcards.study_set, s.log.report,
             s.output[0])
