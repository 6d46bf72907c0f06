# Writes the text its rule was given as a param (outcome_slice, model_studies: msct_review.incremental says why).
import sys

from msct_review.incremental import InputsUnavailable
from msct_review.pipeline import run_outcome_slice

s = snakemake  # noqa: F821
try:
    run_outcome_slice(s.params.text, s.output[0], s.params.error)
except InputsUnavailable as exc:
    # an input problem (the message names file, row and column), not a crash: no traceback
    print(exc, file=sys.stderr)
    sys.exit(1)
