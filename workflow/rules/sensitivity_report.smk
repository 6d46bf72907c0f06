# Sensitivity fits -> the sensitivity report: per outcome and study set a table and a figure of every variant at
# the outcome's key visit, per set the verdicts of all outcomes (robust / fragile, config sensitivity.verdict).
# The inputs results/sensitivity/{study_set}/{outcome}/{variants,power_scaling}.csv are the sensitivity fits'.

# CONTINUOUS, OUTCOMES, per_outcome, SENSITIVITY_VERDICT, sensitivity_key_visit, sensitivity_report_targets:
# common.smk.

rule sensitivity_table:
    """One outcome's sensitivity variants at its key visit: estimate, 95% CrI, P(improvement), studies, status."""
    input:
        variants="results/sensitivity/{study_set}/{outcome}/variants.csv",
        power_scaling="results/sensitivity/{study_set}/{outcome}/power_scaling.csv",
        key_visit=sensitivity_key_visit,
        dictionary=DICTIONARY,
        code=code("sensitivity_table.py"),
    params:
        verdict=SENSITIVITY_VERDICT,
    output:
        csv=report("results/tables/{study_set}/sensitivity/{outcome}.csv",
                   caption="../report/sensitivity_table.rst", category="Sensitivity", subcategory="{study_set}"),
        md="results/tables/{study_set}/sensitivity/{outcome}.md",
    log:
        "results/logs/report/sensitivity_table_{study_set}_{outcome}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/sensitivity_table.py"


rule sensitivity_figure:
    """One outcome's sensitivity variants as rows, grouped, the main analysis highlighted, the verdict above."""
    input:
        variants="results/sensitivity/{study_set}/{outcome}/variants.csv",
        power_scaling="results/sensitivity/{study_set}/{outcome}/power_scaling.csv",
        key_visit=sensitivity_key_visit,
        dictionary=DICTIONARY,
        code=code("sensitivity_figure.py"),
    params:
        verdict=SENSITIVITY_VERDICT,
    output:
        png=report("results/figures/{study_set}/sensitivity/{outcome}.png",
                   caption="../report/sensitivity_figure.rst", category="Sensitivity", subcategory="{study_set}"),
        svg="results/figures/{study_set}/sensitivity/{outcome}.svg",
    log:
        "results/logs/report/sensitivity_figure_{study_set}_{outcome}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/sensitivity_figure.py"


rule sensitivity_verdicts:
    """Every outcome's verdict in one table, the same for the manuscript's variables, the variants run, and the
    supplement's list of sensitivity figures."""
    input:
        variants=lambda w: per_outcome("results/sensitivity/{study_set}/{outcome}/variants.csv", w.study_set, OUTCOMES),
        power_scalings=lambda w: per_outcome("results/sensitivity/{study_set}/{outcome}/power_scaling.csv",
                                             w.study_set, OUTCOMES),
        key_visits=lambda w: per_outcome("results/tables/{study_set}/key_visits/{outcome}.csv", w.study_set),
        figures=lambda w: per_outcome("results/figures/{study_set}/sensitivity/{outcome}.png", w.study_set, OUTCOMES),
        dictionary=DICTIONARY,
        code=code("sensitivity_verdicts.py"),
    params:
        verdict=SENSITIVITY_VERDICT,
        review=CONFIG["review"],  # the study set's name in the figure captions
        outcomes=OUTCOMES,
        continuous=CONTINUOUS,
    output:
        csv=report("results/tables/{study_set}/sensitivity_verdicts.csv",
                   caption="../report/sensitivity_verdicts.rst", category="Sensitivity", subcategory="{study_set}"),
        md="results/tables/{study_set}/sensitivity_verdicts.md",
        full="results/tables/{study_set}/sensitivity_verdicts.full.csv",
        variant_list="results/tables/{study_set}/sensitivity_variants.csv",
        figures_md="results/tables/{study_set}/sensitivity_figures.md",
    log:
        "results/logs/report/sensitivity_verdicts_{study_set}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/sensitivity_verdicts.py"
