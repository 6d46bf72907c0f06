import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  messages, Python warnings, tracebacks: the log

from timecourse_meta.core.config import resolve  # noqa: E402
from timecourse_meta.core.errors import EngineError  # noqa: E402
from timecourse_meta.steps.report_steps import run_summary_of_findings  # noqa: E402

s = snakemake  # noqa: F821
try:
    run_summary_of_findings(s.input.table, s.input.studies, dict(zip(s.params.outcomes, s.input.summaries)),
                            dict(zip(s.params.continuous, s.input.key_visits)), s.input.dictionary,
                            s.wildcards.study_set, s.output.csv,
                            config=resolve(s.config))
except EngineError as exc:  # the review author's to fix: the message (file, row, key) without a traceback,
    for stream in (sys.stderr, sys.__stderr__):  # in the log and on the terminal
        print(exc, file=stream)
    sys.exit(1)
