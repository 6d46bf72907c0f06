# Shared set-up: the config is validated when the workflow is parsed (so a typo fails at once, naming the key),
# and each rule receives the resolved slice it depends on as params, so that changing one outcome's prior
# reruns only that outcome's jobs.
#
# The config is Snakemake's `config` object: config.yaml, then any --configfile, then any --config key=value,
# merged by Snakemake. It is resolved (schema defaults filled) and checked against what it points at (data
# folder or workbook, outcome dictionary, study sets in the data) here, before any job runs.

import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from timecourse_meta.core import config as config_mod
from timecourse_meta.data import sheets as sheets_mod


def _relative(path):
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


_CLI_CONFIGFILES = [_relative(p) for p in workflow.config_settings.configfiles]
CONFIG_SOURCE = config_mod.describe_sources(  # in the order Snakemake applies them: configfile:, --configfile, --config
    [*(f for f in map(_relative, workflow.configfiles) if f not in _CLI_CONFIGFILES), *_CLI_CONFIGFILES],
    workflow.config_settings.config,
)
try:
    CONFIG = config_mod.resolve(config, source=CONFIG_SOURCE)
    config_mod.check_inputs(CONFIG, source=CONFIG_SOURCE)
except config_mod.ConfigError as exc:
    raise WorkflowError(str(exc)) from None  # the message names every key; a stack trace would add nothing

# The text of results/config/resolved_config.yaml, computed here from the resolved config. The resolve_config rule
# receives its fingerprint as a param: Snakemake's params rerun trigger (on by default) reruns the rule when the
# text differs from what it last wrote, and only then; downstream rules see the file change and rerun.
RESOLVED_CONFIG_TEXT = config_mod.resolved_text(CONFIG)
RAW_INPUTS = sheets_mod.input_files(CONFIG["data"]["raw_dir"], CONFIG["data"]["workbook"])
STUDY_SETS = CONFIG["study_sets"]
OUTCOMES = CONFIG["outcomes"] + CONFIG["binary_outcomes"]

# Early cut-off, which Snakemake does not do inside one invocation (a job whose input another job rewrites in the
# same run is rerun, whatever the new content): the per-outcome inputs of the models are computed here from the raw
# sheets by the steps' own functions, in memory (~1 s), and given to their rules as params; timecourse_meta.data.incremental
# explains the design. An input problem leaves them empty; the validate job reports it.
from timecourse_meta.data import incremental as incremental_mod
from timecourse_meta.data import outputs as outputs_mod
from timecourse_meta.model import settings as model_settings_mod
from timecourse_meta.model import sensitivity as sensitivity_mod

MODEL_INPUTS = incremental_mod.compute(CONFIG, OUTCOMES)


def slice_text(wildcards):
    """Param: the text of one outcome's rows of the analysis table (None if the sheets do not validate)."""
    return MODEL_INPUTS.slice(wildcards.outcome)


def model_settings_text(wildcards):
    """Param: the YAML text of the settings one outcome's model depends on (timecourse_meta.model.settings.model_settings)."""
    return config_mod.dump(model_settings_mod.model_settings(CONFIG, wildcards.outcome))


def sensitivity_settings(wildcards=None):
    """Param: what the variants depend on besides the outcome's files (the config's sensitivity section, the
    change-score correlations and the secondary-source pattern)."""
    return sensitivity_mod.job_settings(CONFIG)


SENSITIVITY_TARGETS = (
    expand("results/sensitivity/{study_set}/{outcome}/variants.csv", study_set=STUDY_SETS, outcome=OUTCOMES)
    if CONFIG["sensitivity"]["enabled"] else []
)


from timecourse_meta.core.code_deps import script_sources


def engine_path(path):
    """A file of the engine's repository (beside this Snakefile), relative to the working directory: the same
    relative path when the workflow runs in the repository, a path to the repository when another review runs
    it with `--directory`."""
    return os.path.relpath(Path(workflow.basedir) / path)


def code(script):
    """The package modules a rule's script runs (timecourse_meta.core.code_deps), as inputs: Snakemake tracks the script
    file itself, not what it imports, so without these a change to the package would not rerun the step."""
    return [engine_path(p) for p in script_sources(Path(workflow.basedir) / "workflow" / "scripts" / script)]


CONTINUOUS = CONFIG["outcomes"]
SAFETY_POOLED = CONFIG["safety"]["pooled"]  # binary outcomes whose fitted models the safety table reads
DICTIONARY = CONFIG["data"]["outcome_dictionary"]


def per_outcome(pattern, study_set, outcomes=CONTINUOUS):
    """One path per outcome, in the order of `outcomes` (rules pass that order as params.outcomes)."""
    return [pattern.format(study_set=study_set, outcome=o) for o in outcomes]


def figure_targets():
    """The figures and tables rule `all` asks for (the rest follow from them or from the manuscript)."""
    targets = ["results/figures/appraisal_traffic_light.png", "results/tables/appraisal.csv"]
    for s in STUDY_SETS:
        targets += [f"results/figures/{s}/trajectories.png", f"results/figures/{s}/prisma.png",
                    f"results/tables/{s}/prisma_counts.csv", f"results/tables/{s}/characteristics.csv",
                    f"results/tables/{s}/summary_of_findings.csv",
                    f"results/tables/{s}/diagnostics.csv", f"results/tables/{s}/between_arm.csv",
                    f"results/tables/{s}/time_course_comparison.csv"]
        if CONFIG["data"]["claims"]:  # config data.claims: null = a review without claims to check
            targets.append(f"results/tables/{s}/claims_check.csv")
        if CONFIG["safety"]["outcomes"]:  # config safety.outcomes: empty = no safety table
            targets.append(f"results/tables/{s}/safety.csv")
        targets += [f"results/figures/{s}/forest/{o}.png" for o in CONTINUOUS]
        targets += [f"results/figures/{s}/trajectories/{o}.png" for o in CONTINUOUS]
        targets += [f"results/figures/{s}/model/{o}_prior_posterior.png" for o in CONTINUOUS]
    return targets


SENSITIVITY_VERDICT = CONFIG["sensitivity"]["verdict"]  # the verdict's thresholds


def sensitivity_key_visit(wildcards):
    """A continuous outcome's key visit (the forest plot's); a binary outcome's report picks its own duration."""
    if wildcards.outcome in CONTINUOUS:
        return f"results/tables/{wildcards.study_set}/key_visits/{wildcards.outcome}.csv"
    return []


def sensitivity_report_targets():
    """The targets of `all`: every set's verdicts (they need every outcome's figure, through the supplement's
    figure list) and every outcome's table."""
    targets = []
    for s in STUDY_SETS:
        targets.append(f"results/tables/{s}/sensitivity_verdicts.csv")
        targets += per_outcome("results/tables/{study_set}/sensitivity/{outcome}.csv", s, OUTCOMES)
    return targets
