from timecourse_meta.core.config import resolve
from timecourse_meta.steps.report_steps import run_trajectory

s = snakemake  # noqa: F821
run_trajectory(s.input.table, s.input.studies, s.input.summary, s.input.dictionary, s.wildcards.outcome,
               s.wildcards.study_set, s.output.png,
               config=resolve(s.config))
