# Config -> validated sheets -> harmonised analysis table.


rule resolve_config:
    """Write the resolved configuration (Snakemake's merged config with every default filled)."""
    # Rerun trigger, chosen on purpose: a fingerprint of the resolved text is the only param; no data inputs.
    # - params: Snakemake reruns the job when a param differs from the one recorded when the file was last
    #   written, i.e. exactly when the resolved content changes, wherever the change came from (config.yaml,
    #   --configfile, --config, a new schema default). Unchanged content: the job does not run, the file is not
    #   rewritten, nothing downstream reruns.
    # - input/mtime: config.yaml is deliberately not an input. It would miss --configfile/--config, and touching
    #   it (or the schema) without changing the content would rerun the job and rewrite an identical file.
    # - code: a change to the package code it runs reruns it (code inputs, as for every rule).
    # Whenever this job runs, Snakemake also schedules every rule reading the file (it does not compare content
    # after a job); rules that need only a slice of the config take it as params instead (validate, harmonise,
    # model_config do).
    # With `--rerun-triggers mtime` alone a config change is not noticed: delete the file to force a rewrite.
    input:
        code=code("resolve_config.py"),
    params:
        fingerprint=config_mod.fingerprint(RESOLVED_CONFIG_TEXT),
    output:
        "results/config/resolved_config.yaml",
    log:
        "results/logs/data/resolve_config.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/resolve_config.py"


rule validate:
    """Check every raw sheet; all problems are reported together, raw files are only read."""
    input:
        sheets=RAW_INPUTS,
        dictionary=CONFIG["data"]["outcome_dictionary"],
        vocabulary=CONFIG["data"]["vocabulary"],
        code=code("validate.py"),
    params:
        # only the keys validation reads, as canonical text: a change to e.g. sampling does not revalidate, and a
        # failed validation writes nothing under results/ but its log (no resolved config is needed first)
        settings=config_mod.dump(outputs_mod.validate_settings(CONFIG)),
    output:
        report=report("results/validated/report.md", caption="../report/validation.rst", category="Data",
                      subcategory="Validation"),
        warnings="results/validated/warnings.csv",
    log:
        "results/logs/data/validate.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/validate.py"


rule validated_sheet:
    """The typed copy of one sheet (studies, outcomes, appraisal), as validation reads it."""
    # Not an output of validate, which runs on every change to any sheet: Snakemake would then rerun every job
    # reading any typed sheet. Given its text as a param (computed from the raw sheets when the workflow is
    # parsed, by the validate step's own function) and no data inputs, it runs only when that sheet's content
    # changes (timecourse_meta.data.incremental).
    wildcard_constraints:
        sheet="studies|outcomes|appraisal",
    input:
        code=code("validated_sheet.py"),
    params:
        text=lambda w: MODEL_INPUTS.sheet(w.sheet),
        error=MODEL_INPUTS.error,
        what="the validated sheet",
    output:
        "results/validated/{sheet}.csv",
    log:
        "results/logs/data/validated_sheet_{sheet}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/validated_sheet.py"


rule harmonise:
    """Units to canonical, statistics to mean/SD, change-score SDs; one tidy analysis table."""
    # The resolved config is not an input: the job takes the three keys it reads as a param, so a change to a
    # prior or to sampling does not rerun it (nor, through it, anything that reads the analysis table).
    input:
        studies="results/validated/studies.csv",
        outcomes="results/validated/outcomes.csv",
        dictionary=CONFIG["data"]["outcome_dictionary"],
        code=code("harmonise.py"),
    params:
        settings=config_mod.dump(outputs_mod.harmonise_settings(CONFIG)),
    output:
        table="results/harmonised/analysis_table.csv",
        coverage="results/harmonised/coverage.csv",
    log:
        "results/logs/data/harmonise.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/harmonise.py"


rule model_studies:
    """The validated studies without the columns no model reads (citation, MSC source, ...): what the fits read,
    so that editing such a column refits nothing."""
    # Given its text as a param and no data inputs, like validated_sheet.
    input:
        code=code("model_studies.py"),
    params:
        text=MODEL_INPUTS.model_studies,
        error=MODEL_INPUTS.error,
        what="the studies' model columns",
    output:
        "results/validated/model_studies.csv",
    log:
        "results/logs/data/model_studies.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/model_studies.py"
