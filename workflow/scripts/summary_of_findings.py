from timecourse_meta.core.config import resolve
from timecourse_meta.steps.report_steps import run_summary_of_findings

s = snakemake  # noqa: F821
run_summary_of_findings(s.input.table, s.input.studies, dict(zip(s.params.outcomes, s.input.summaries)),
                        dict(zip(s.params.continuous, s.input.key_visits)), s.input.dictionary, s.wildcards.study_set,
                        s.output.csv,
                        config=resolve(s.config))
