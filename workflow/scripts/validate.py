import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  messages, Python warnings, tracebacks: the log

from pathlib import Path  # noqa: E402

import yaml  # noqa: E402

from timecourse_meta.core.errors import EngineError  # noqa: E402
from timecourse_meta.steps.pipeline import run_validate  # noqa: E402

s = snakemake  # noqa: F821
try:
    run_validate(yaml.safe_load(s.params.settings), str(Path(s.output.report).parent), s.output.report,
                 s.output.warnings, tables=False)  # the typed copies: rule validated_sheet
except EngineError as exc:  # the review author's to fix: the message (file, row, key) without a traceback,
    for stream in (sys.stderr, sys.__stderr__):  # in the log and on the terminal
        print(exc, file=stream)
    sys.exit(1)
