import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  messages, Python warnings, tracebacks: the log

from timecourse_meta.steps.sensitivity_report import run_sensitivity_table  # noqa: E402
from timecourse_meta.steps.runner import main  # noqa: E402

main(snakemake, run_sensitivity_table)  # noqa: F821
