# Sensitivity layer, fitting side: per outcome x study set, every configured variant (one changed assumption each:
# priors, correlations, time course, leave one study out, rows and report rule; sensitivity.variants in config)
# refitted in ONE job, plus power-scaling prior sensitivity of the main fit (no refit).
# One job per outcome x set, not per variant: nutpie's compilation costs 12-25 s per model (measured) and cannot be
# cached across processes (its numba cfunc wrappers are compiled uncached), while a variant's sampling costs a few
# seconds; inside the job, variants of one model structure share one compilation (compiled.with_data: data, design
# matrices and prior parameters are pm.Data). The job reruns when the outcome's rows, its model settings, the study
# sheet or the sensitivity settings (a param) change, or when the main fit changes.
# Every variant passes the main fit's convergence gate; a variant that fails it is recorded (failed_gate), it does not
# fail the job: the main fit's own gate (diagnose, an input here) is what stops the workflow.


# sensitivity_settings and SENSITIVITY_TARGETS: common.smk.


rule sensitivity_fit:
    """Every sensitivity variant of one outcome refitted (one compilation per model structure), with the main
    fit's summary as the `main` variant, and the main fit's power-scaling prior sensitivity."""
    input:
        table="results/harmonised/by_outcome/{outcome}.csv",
        settings="results/config/models/{outcome}.yaml",
        studies="results/validated/model_studies.csv",
        dictionary=CONFIG["data"]["outcome_dictionary"],
        main_summary="results/models/{study_set}/{outcome}/summary.csv",
        main_idata="results/models/{study_set}/{outcome}/idata.nc",
        gate="results/models/{study_set}/{outcome}/diagnostics.csv",
        code=code("sensitivity_fit.py"),
    params:
        sensitivity=sensitivity_settings(),
    output:
        variants="results/sensitivity/{study_set}/{outcome}/variants.csv",
        power_scaling="results/sensitivity/{study_set}/{outcome}/power_scaling.csv",
    log:
        "results/logs/sensitivity/sensitivity_fit_{study_set}_{outcome}.log",
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/sensitivity_fit.py"
