# Harmonised table -> one model and one diagnostics gate per outcome x study set.
# A change to one outcome's rows or settings reruns only that outcome, in a real run too (Snakemake reruns every
# job depending on a job that runs, whatever its new content; timecourse_meta.data.incremental says why ancient() fails):
# - outcome_slice, model_studies and validated_sheet (data.smk) are given the text of their file as a param,
#   computed when the workflow is parsed, and have no data inputs; the params trigger runs them, and so rewrites
#   their file, only when that text changes. The harmonise job writes the same rows into the analysis table.
# - model_config is given the outcome's settings as a param (not the resolved config file, which any config change
#   rewrites), so it runs only when they change.
# Everything downstream of these files (fit, diagnose, figures) then follows by plain file dependencies.
# Under `--rerun-triggers mtime` alone param changes go unnoticed: keep the default triggers.


wildcard_constraints:
    outcome="[a-z0-9_]+",
    study_set="[a-z0-9_]+",


rule outcome_slice:
    """The analysis-table rows of one outcome."""
    input:
        code=code("outcome_slice.py"),
    params:
        text=slice_text,
        error=MODEL_INPUTS.error,
        what="the outcome's rows",
    output:
        "results/harmonised/by_outcome/{outcome}.csv",
    log:
        "results/logs/models/outcome_slice_{outcome}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/outcome_slice.py"


rule model_config:
    """The resolved settings one outcome's model depends on (its priors, the model, sampling and gate)."""
    input:
        code=code("model_config.py"),
    params:
        settings=model_settings_text,
    output:
        "results/config/models/{outcome}.yaml",
    log:
        "results/logs/models/model_config_{outcome}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/model_config.py"


rule fit_model:
    """Bayesian hierarchical model of one outcome's change over time (PyMC + nutpie, 4 chains); each patient group
    counted once (the report rows left out, with the report used instead, in dropped_reports.csv)."""
    input:
        table="results/harmonised/by_outcome/{outcome}.csv",
        settings="results/config/models/{outcome}.yaml",
        studies="results/validated/model_studies.csv",
        dictionary=CONFIG["data"]["outcome_dictionary"],
        code=code("fit_model.py"),
    output:
        idata="results/models/{study_set}/{outcome}/idata.nc",
        summary="results/models/{study_set}/{outcome}/summary.csv",
        dropped="results/models/{study_set}/{outcome}/dropped_reports.csv",
    log:
        "results/logs/models/fit_model_{study_set}_{outcome}.log",
    threads: 1
    conda:
        "../../envs/analysis.yaml"
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
        "results/logs/models/diagnose_{study_set}_{outcome}.log",
        # the gate's table, pass or fail: a log, so that a failed gate keeps it (outputs of a failed job are removed)
        report="results/logs/models/diagnose_{study_set}_{outcome}.csv",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/diagnose.py"
