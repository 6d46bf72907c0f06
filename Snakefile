# The MSCT lupus nephritis review, from raw extraction sheets to manuscript.
# Every rule is thin: it calls one function of the msct_review package (workflow/msct_review/).

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/manuscript.smk"


rule all:
    input:
        "results/validated/report.md",
        "results/harmonised/analysis_table.csv",
        "results/harmonised/coverage.csv",
        expand("results/models/{study_set}/{outcome}/diagnostics.csv", study_set=STUDY_SETS, outcome=OUTCOMES),
        figure_targets(),
        MANUSCRIPT_TARGETS,
    default_target: True
