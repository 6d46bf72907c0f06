import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  messages, Python warnings, tracebacks: the log

import logging  # noqa: E402
from pathlib import Path  # noqa: E402

from timecourse_meta.core.errors import EngineError  # noqa: E402
from timecourse_meta.core import review  # noqa: E402
from timecourse_meta.manuscript import document  # noqa: E402

s = snakemake  # noqa: F821
# the step's own messages (what it does, how long it took) to the log
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
logging.getLogger("timecourse_meta").setLevel(logging.INFO)
try:
    out = document.run_manuscript(s.input.qmd, s.input.variables, s.input.lineage, s.input.bibliography,
                                  s.input.csl, Path(s.output.html).parent,
                                  vocabulary=review.load_vocabulary(s.input.vocabulary))
    for fmt, path in {"html": s.output.html, "docx": s.output.docx, "pdf": s.output.pdf}.items():
        if Path(out[fmt]).resolve() != Path(path).resolve():
            raise RuntimeError(f"rendered {out[fmt]}, but the rule declares {path}")
except EngineError as exc:  # the review author's to fix: the message (file, row, key) without a traceback,
    for stream in (sys.stderr, sys.__stderr__):  # in the log and on the terminal
        print(exc, file=stream)
    sys.exit(1)
