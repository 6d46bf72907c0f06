import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  messages, Python warnings, tracebacks: the log

import logging  # noqa: E402

from timecourse_meta.core.errors import EngineError  # noqa: E402
from timecourse_meta.steps.pipeline import run_fit  # noqa: E402

s = snakemake  # noqa: F821
# the step's own messages (what it does, how long it took) to the log
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
logging.getLogger("timecourse_meta").setLevel(logging.INFO)
try:
    run_fit(s.input.table, s.input.settings, s.input.studies, s.input.dictionary, s.wildcards.outcome,
            s.wildcards.study_set, s.output.idata, s.output.summary, s.output.dropped)
except EngineError as exc:  # the review author's to fix: the message (file, row, key) without a traceback,
    for stream in (sys.stderr, sys.__stderr__):  # in the log and on the terminal
        print(exc, file=stream)
    sys.exit(1)
