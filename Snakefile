# A time-course meta-analysis, from raw extraction sheets to manuscript; the review it runs is the one its config.yaml names.
# Every rule is thin: it calls one function of the timecourse_meta package (workflow/timecourse_meta/).

import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))
from timecourse_meta.core import config as config_mod

# Snakemake's own message for a YAML error names neither the line nor the tab; check config.yaml first. A file
# given with --configfile is read by Snakemake before this Snakefile runs, so only config.yaml can be checked here.
try:
    config_mod.check_yaml_file("config.yaml")
except config_mod.ConfigError as exc:
    raise WorkflowError(str(exc)) from None


# The defaults; `snakemake --configfile other.yaml` and `--config key=value` are merged over them by Snakemake,
# and the resolved config (common.smk) is built from the merged `config` object, never from this file alone.
configfile: "config.yaml"


# `snakemake --report report.html` after a run: this description, then every output marked report() in the rules,
# each with its caption in workflow/report/.
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/sensitivity.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/update.smk"
include: "workflow/rules/sensitivity_report.smk"
include: "workflow/rules/manuscript.smk"


rule all:
    input:
        "results/validated/report.md",
        "results/harmonised/analysis_table.csv",
        "results/harmonised/coverage.csv",
        expand("results/models/{study_set}/{outcome}/diagnostics.csv", study_set=STUDY_SETS, outcome=OUTCOMES),
        figure_targets(),
        UPDATE_TARGETS,
        sensitivity_report_targets(),
        MANUSCRIPT_TARGETS,
        SENSITIVITY_TARGETS,
    default_target: True
