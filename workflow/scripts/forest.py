from timecourse_meta.core.config import resolve
from timecourse_meta.steps.report_steps import load_grid, run_forest

s = snakemake  # noqa: F821
run_forest(s.input.table, s.input.studies, s.input.summary, s.input.dictionary, load_grid(s.input.settings),
           s.wildcards.outcome, s.wildcards.study_set, s.output.png, s.output.key_visit, s.output.by_visit,
           config=resolve(s.config))
