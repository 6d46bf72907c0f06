from timecourse_meta.steps.report_steps import run_diagnostics_table

s = snakemake  # noqa: F821
run_diagnostics_table(dict(zip(s.params.outcomes, s.input.gates)), s.wildcards.study_set, s.output.csv,
                      s.input.dictionary)
