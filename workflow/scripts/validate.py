import sys
from pathlib import Path

import yaml

from timecourse_meta.data.dictionary import DictionaryError
from timecourse_meta.steps.pipeline import run_validate
from timecourse_meta.data.sheets import SheetReadError
from timecourse_meta.data.validation import ValidationError

s = snakemake  # noqa: F821
try:
    run_validate(yaml.safe_load(s.params.settings), str(Path(s.output.report).parent), s.output.report,
                 s.output.warnings, tables=False)  # the typed copies: rule validated_sheet
except (SheetReadError, ValidationError, DictionaryError) as exc:
    # An input error is the user's to fix, not a crash: the message names file, row and column; no traceback.
    print(exc, file=sys.stderr)
    Path(s.log[0]).parent.mkdir(parents=True, exist_ok=True)
    Path(s.log[0]).write_text(f"{exc}\n", encoding="utf-8")
    sys.exit(1)
