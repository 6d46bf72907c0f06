import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  messages, Python warnings, tracebacks: the log

from timecourse_meta.core.errors import EngineError  # noqa: E402
from timecourse_meta.core.config import write_snakemake_resolved  # noqa: E402

s = snakemake  # noqa: F821
try:
    # snakemake.config is Snakemake's merged config (config.yaml, --configfile, --config); the rule reruns exactly
    # when the fingerprint of its resolved text changes (see the rule in data.smk).
    write_snakemake_resolved(s.config, s.output[0], s.params.fingerprint)
except EngineError as exc:  # the review author's to fix: the message (file, row, key) without a traceback,
    for stream in (sys.stderr, sys.__stderr__):  # in the log and on the terminal
        print(exc, file=stream)
    sys.exit(1)
