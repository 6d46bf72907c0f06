from timecourse_meta.steps.report_steps import run_model_figures

s = snakemake  # noqa: F821
run_model_figures(s.input.idata, s.wildcards.outcome, s.output.prior, s.output.ppc, s.output.rank,
                  s.input.studies)
