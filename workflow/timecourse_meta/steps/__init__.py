"""The glue: one run_<rule> function per Snakemake rule, taking keyword-only paths."""
