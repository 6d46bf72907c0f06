import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  messages, Python warnings, tracebacks: the log

import logging  # noqa: E402

from timecourse_meta.core.errors import EngineError  # noqa: E402
from timecourse_meta.manuscript import variables  # noqa: E402

s = snakemake  # noqa: F821
# the step's own messages (what it does, how long it took) to the log
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
logging.getLogger("timecourse_meta").setLevel(logging.INFO)
try:
    variables.write_variables(s.input[0], s.output.yml, s.output.lineage, s.output.priors)
except EngineError as exc:  # the review author's to fix: the message (file, row, key) without a traceback,
    for stream in (sys.stderr, sys.__stderr__):  # in the log and on the terminal
        print(exc, file=stream)
    sys.exit(1)
