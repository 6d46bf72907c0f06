# Config -> validated sheets -> harmonised analysis table.


rule resolve_config:
    """Validate config.yaml against its schema and write it with every default filled."""
    input:
        "config.yaml",
        "workflow/schemas/config.schema.yaml",
        code=code("resolve_config.py"),
    output:
        "results/config/resolved_config.yaml",
    log:
        "results/logs/resolve_config.log",
    script:
        "../scripts/resolve_config.py"


rule validate:
    """Check every raw sheet; all problems are reported together, raw files are only read."""
    input:
        config="results/config/resolved_config.yaml",
        sheets=RAW_INPUTS,
        dictionary=CONFIG["data"]["outcome_dictionary"],
        code=code("validate.py"),
    output:
        studies="results/validated/studies.csv",
        outcomes="results/validated/outcomes.csv",
        appraisal="results/validated/appraisal.csv",
        report="results/validated/report.md",
    log:
        "results/logs/validate.log",
    script:
        "../scripts/validate.py"


rule harmonise:
    """Units to canonical, statistics to mean/SD, change-score SDs; one tidy analysis table."""
    input:
        config="results/config/resolved_config.yaml",
        studies="results/validated/studies.csv",
        outcomes="results/validated/outcomes.csv",
        dictionary=CONFIG["data"]["outcome_dictionary"],
        code=code("harmonise.py"),
    output:
        table="results/harmonised/analysis_table.csv",
        coverage="results/harmonised/coverage.csv",
    log:
        "results/logs/harmonise.log",
    script:
        "../scripts/harmonise.py"
