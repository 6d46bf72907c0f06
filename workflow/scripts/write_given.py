# Writes the text its rule was given as a param (validated_sheet, outcome_slice, model_studies), computed when the
# workflow was parsed: timecourse_meta.data.incremental says why.
import sys

from timecourse_meta.data.incremental import InputsUnavailable, write_given

s = snakemake  # noqa: F821
try:
    write_given(s.params.text, s.output[0], s.params.error, s.params.what)
except InputsUnavailable as exc:
    # an input problem (the message names file, row and column), not a crash: no traceback
    print(exc, file=sys.stderr)
    sys.exit(1)
