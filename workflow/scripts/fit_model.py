import logging
import sys

from msct_review.pipeline import run_fit

s = snakemake  # noqa: F821
logging.basicConfig(level=logging.INFO, handlers=[logging.FileHandler(s.log[0]), logging.StreamHandler(sys.stderr)])
run_fit(s.input.table, s.input.settings, s.input.studies, s.input.dictionary, s.wildcards.outcome,
        s.wildcards.study_set, s.output.idata, s.output.summary)
