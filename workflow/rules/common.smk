# Shared set-up: the config is validated when the workflow is parsed (so a typo fails at once, naming the key),
# and each rule receives the resolved slice it depends on as params, so that changing one outcome's prior
# reruns only that outcome's jobs.

import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from msct_review import config as config_mod
from msct_review import sheets as sheets_mod

CONFIG = config_mod.resolve(config)
RAW_INPUTS = sheets_mod.input_files(CONFIG["data"]["raw_dir"], CONFIG["data"]["workbook"])
STUDY_SETS = CONFIG["study_sets"]
OUTCOMES = CONFIG["outcomes"] + CONFIG["binary_outcomes"]


from msct_review.code_deps import script_sources


def code(script):
    """The package modules a rule's script runs (msct_review.code_deps), as inputs: Snakemake tracks the script
    file itself, not what it imports, so without these a change to the package would not rerun the step."""
    return script_sources(Path(workflow.basedir) / "workflow" / "scripts" / script)
