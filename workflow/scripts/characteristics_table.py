from timecourse_meta.core.config import resolve
from timecourse_meta.steps.report_steps import run_characteristics

s = snakemake  # noqa: F821
run_characteristics(s.input.table, s.input.studies, s.input.dictionary, s.wildcards.study_set, s.output.csv,
                    bibliography=s.input.bibliography,
                    config=resolve(s.config))
