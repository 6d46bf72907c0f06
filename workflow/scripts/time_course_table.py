from timecourse_meta.steps.report_steps import run_time_course_table

s = snakemake  # noqa: F821
run_time_course_table(dict(zip(s.params.outcomes, s.input.summaries)), s.input.dictionary, s.output.csv)
