import logging
import sys

from timecourse_meta.steps.pipeline import run_fit

s = snakemake  # noqa: F821
# the step's own messages (what is fitted, how long it took) to the log and the terminal; nutpie's progress bar
# shows on the terminal while sampling
logging.basicConfig(level=logging.WARNING, handlers=[logging.FileHandler(s.log[0]), logging.StreamHandler(sys.stderr)])
logging.getLogger("timecourse_meta").setLevel(logging.INFO)
run_fit(s.input.table, s.input.settings, s.input.studies, s.input.dictionary, s.wildcards.outcome,
        s.wildcards.study_set, s.output.idata, s.output.summary, s.output.dropped)
