from timecourse_meta.core.config import resolve
from timecourse_meta.steps.report_steps import run_trajectories

s = snakemake  # noqa: F821
run_trajectories(s.input.table, s.input.studies, dict(zip(s.params.outcomes, s.input.summaries)), s.input.dictionary,
                 s.wildcards.study_set, s.output.png,
                 config=resolve(s.config))
