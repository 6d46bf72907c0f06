# Harmonised table -> one model and one diagnostics gate per outcome x study set.
# Each model job reads only its outcome's slice of the table and of the resolved config; Snakemake compares
# input checksums, so a change to one outcome's data or prior reruns only that outcome.


wildcard_constraints:
    outcome="[a-z0-9_]+",
    study_set="[a-z0-9_]+",


rule outcome_slice:
    """The analysis-table rows of one outcome."""
    input:
        "results/harmonised/analysis_table.csv",
        code=code("outcome_slice.py"),
    output:
        "results/harmonised/by_outcome/{outcome}.csv",
    script:
        "../scripts/outcome_slice.py"


rule model_config:
    """The resolved settings one outcome's model depends on (its priors, the model, sampling and gate)."""
    input:
        "results/config/resolved_config.yaml",
        code=code("model_config.py"),
    output:
        "results/config/models/{outcome}.yaml",
    script:
        "../scripts/model_config.py"


rule fit_model:
    """Bayesian hierarchical model of one outcome's change over time (PyMC + nutpie, 4 chains); each patient group
    counted once (the report rows left out, with the report used instead, in dropped_reports.csv)."""
    input:
        table="results/harmonised/by_outcome/{outcome}.csv",
        settings="results/config/models/{outcome}.yaml",
        studies="results/validated/studies.csv",
        dictionary=CONFIG["data"]["outcome_dictionary"],
        code=code("fit_model.py"),
    output:
        idata="results/models/{study_set}/{outcome}/idata.nc",
        summary="results/models/{study_set}/{outcome}/summary.csv",
        dropped="results/models/{study_set}/{outcome}/dropped_reports.csv",
    log:
        "results/logs/fit_model/{study_set}/{outcome}.log",
    threads: 1
    script:
        "../scripts/fit_model.py"


rule diagnose:
    """Convergence gate (R-hat, bulk/tail ESS, divergences, E-BFMI): fails the job naming what to try."""
    input:
        idata="results/models/{study_set}/{outcome}/idata.nc",
        settings="results/config/models/{outcome}.yaml",
        code=code("diagnose.py"),
    output:
        "results/models/{study_set}/{outcome}/diagnostics.csv",
    log:
        report="results/logs/diagnose/{study_set}/{outcome}.csv",
    script:
        "../scripts/diagnose.py"
