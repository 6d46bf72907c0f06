import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  messages, Python warnings, tracebacks: the log

# Writes the text the rule was given as a param, computed when the workflow was parsed
# (timecourse_meta.data.incremental says why).
from timecourse_meta.core.errors import EngineError  # noqa: E402
from timecourse_meta.data.incremental import write_given  # noqa: E402

s = snakemake  # noqa: F821
try:
    write_given(s.params.text, s.output[0], s.params.error, s.params.what)
except EngineError as exc:  # the review author's to fix: the message (file, row, key) without a traceback,
    for stream in (sys.stderr, sys.__stderr__):  # in the log and on the terminal
        print(exc, file=stream)
    sys.exit(1)
