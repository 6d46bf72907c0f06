from timecourse_meta.core.config import write_snakemake_resolved

# snakemake.config is Snakemake's merged config (config.yaml, --configfile, --config); the rule reruns exactly
# when the fingerprint of its resolved text changes (see the rule in data.smk).
s = snakemake  # noqa: F821
write_snakemake_resolved(s.config, s.output[0], s.params.fingerprint)
