import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  messages, Python warnings, tracebacks: the log

from timecourse_meta.core.errors import EngineError  # noqa: E402
from timecourse_meta.manuscript import document  # noqa: E402

s = snakemake  # noqa: F821
try:
    document.stage_assets(s.params.pairs)
except EngineError as exc:  # the review author's to fix: the message (file, row, key) without a traceback,
    for stream in (sys.stderr, sys.__stderr__):  # in the log and on the terminal
        print(exc, file=stream)
    sys.exit(1)
