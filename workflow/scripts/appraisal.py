from timecourse_meta.core.config import resolve
from timecourse_meta.steps.report_steps import run_appraisal

s = snakemake  # noqa: F821
run_appraisal(s.input.appraisal, s.input.studies, s.output.traffic, s.output.summary, s.output.csv,
              config=resolve(s.config))
