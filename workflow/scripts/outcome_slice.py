# Writes the text its rule was given as a param (outcome_slice, model_studies: msct_review.incremental says why).
from msct_review.pipeline import run_outcome_slice

s = snakemake  # noqa: F821
run_outcome_slice(s.params.text, s.output[0], s.params.error)
