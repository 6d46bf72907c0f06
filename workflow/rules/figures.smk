# Models and data -> figures (PNG 300 dpi + SVG) and tables (CSV + Markdown), one job per outcome where it
# makes sense, so a change to one outcome's data reruns only that outcome's figures.
# Every figure reads the model's diagnostics file too: nothing downstream uses an unconverged model.

CONTINUOUS = CONFIG["outcomes"]
DICTIONARY = CONFIG["data"]["outcome_dictionary"]


def per_outcome(pattern, study_set, outcomes=CONTINUOUS):
    """One path per outcome, in the order of `outcomes` (rules pass that order as params.outcomes)."""
    return [pattern.format(study_set=study_set, outcome=o) for o in outcomes]


rule forest:
    """Forest plots of one outcome: at its key visit, and one per visit with data (in by_visit/): studies,
    pooled change, prediction interval."""
    input:
        table="results/harmonised/by_outcome/{outcome}.csv",
        studies="results/validated/studies.csv",
        summary="results/models/{study_set}/{outcome}/summary.csv",
        gate="results/models/{study_set}/{outcome}/diagnostics.csv",
        settings="results/config/models/{outcome}.yaml",
        dictionary=DICTIONARY,
        code=code("forest.py"),
    output:
        png="results/figures/{study_set}/forest/{outcome}.png",
        svg="results/figures/{study_set}/forest/{outcome}.svg",
        key_visit="results/tables/{study_set}/key_visits/{outcome}.csv",
        by_visit=directory("results/figures/{study_set}/forest/by_visit/{outcome}"),
    script:
        "../scripts/forest.py"


rule trajectory:
    """One outcome's pooled change over 0-12 months with its bands, over the studies' own changes."""
    input:
        table="results/harmonised/by_outcome/{outcome}.csv",
        studies="results/validated/studies.csv",
        summary="results/models/{study_set}/{outcome}/summary.csv",
        gate="results/models/{study_set}/{outcome}/diagnostics.csv",
        dictionary=DICTIONARY,
        code=code("trajectory.py"),
    output:
        png="results/figures/{study_set}/trajectories/{outcome}.png",
        svg="results/figures/{study_set}/trajectories/{outcome}.svg",
    script:
        "../scripts/trajectory.py"


rule trajectories:
    """Pooled change over 0-12 months per continuous outcome, over the studies' own changes."""
    input:
        table="results/harmonised/analysis_table.csv",
        studies="results/validated/studies.csv",
        summaries=lambda w: per_outcome("results/models/{study_set}/{outcome}/summary.csv", w.study_set),
        gates=lambda w: per_outcome("results/models/{study_set}/{outcome}/diagnostics.csv", w.study_set),
        dictionary=DICTIONARY,
        code=code("trajectories.py"),
    params:
        outcomes=CONTINUOUS,
    output:
        png="results/figures/{study_set}/trajectories.png",
        svg="results/figures/{study_set}/trajectories.svg",
    script:
        "../scripts/trajectories.py"


rule characteristics_table:
    """Table 1: one row per study in the set."""
    input:
        table="results/harmonised/analysis_table.csv",
        studies="results/validated/studies.csv",
        dictionary=DICTIONARY,
        bibliography="manuscript/references.bib",
        code=code("characteristics_table.py"),
    output:
        csv="results/tables/{study_set}/characteristics.csv",
        md="results/tables/{study_set}/characteristics.md",
    script:
        "../scripts/characteristics_table.py"


rule appraisal:
    """Critical appraisal: robvis-style traffic lights, a summary bar per item, and the table."""
    input:
        appraisal="results/validated/appraisal.csv",
        studies="results/validated/studies.csv",
        code=code("appraisal.py"),
    output:
        traffic="results/figures/appraisal_traffic_light.png",
        traffic_svg="results/figures/appraisal_traffic_light.svg",
        summary="results/figures/appraisal_summary.png",
        summary_svg="results/figures/appraisal_summary.svg",
        csv="results/tables/appraisal.csv",
        md="results/tables/appraisal.md",
    script:
        "../scripts/appraisal.py"


rule summary_of_findings:
    """Per outcome at its key visit: studies, patients, pooled change, prediction interval, P(improvement)."""
    input:
        table="results/harmonised/analysis_table.csv",
        studies="results/validated/studies.csv",
        summaries=lambda w: per_outcome("results/models/{study_set}/{outcome}/summary.csv", w.study_set, OUTCOMES),
        gates=lambda w: per_outcome("results/models/{study_set}/{outcome}/diagnostics.csv", w.study_set, OUTCOMES),
        key_visits=lambda w: per_outcome("results/tables/{study_set}/key_visits/{outcome}.csv", w.study_set),
        dictionary=DICTIONARY,
        code=code("summary_of_findings.py"),
    params:
        outcomes=OUTCOMES,
        continuous=CONTINUOUS,
    output:
        csv="results/tables/{study_set}/summary_of_findings.csv",
        md="results/tables/{study_set}/summary_of_findings.md",
    script:
        "../scripts/summary_of_findings.py"


rule between_arm_table:
    """The randomised comparison: both arms' changes and the between-arm differences (follow-up means and
    change scores) of every controlled study, per outcome and visit."""
    input:
        table="results/harmonised/analysis_table.csv",
        studies="results/validated/studies.csv",
        summaries=lambda w: per_outcome("results/models/{study_set}/{outcome}/summary.csv", w.study_set, OUTCOMES),
        gates=lambda w: per_outcome("results/models/{study_set}/{outcome}/diagnostics.csv", w.study_set, OUTCOMES),
        dictionary=DICTIONARY,
        code=code("between_arm_table.py"),
    params:
        outcomes=OUTCOMES,
    output:
        csv="results/tables/{study_set}/between_arm.csv",
        md="results/tables/{study_set}/between_arm.md",
    script:
        "../scripts/between_arm_table.py"


rule time_course_table:
    """Supplement: the time courses compared by PSIS-LOO, and the one the stated rule used, per outcome."""
    input:
        summaries=lambda w: per_outcome("results/models/{study_set}/{outcome}/summary.csv", w.study_set),
        gates=lambda w: per_outcome("results/models/{study_set}/{outcome}/diagnostics.csv", w.study_set),
        dictionary=DICTIONARY,
        code=code("time_course_table.py"),
    params:
        outcomes=CONTINUOUS,
    output:
        csv="results/tables/{study_set}/time_course_comparison.csv",
        md="results/tables/{study_set}/time_course_comparison.md",
    script:
        "../scripts/time_course_table.py"


rule claims_check:
    """Each claim of an earlier review (config data.claims) against the data and models."""
    input:
        claims=CONFIG["data"]["claims"],
        table="results/harmonised/analysis_table.csv",
        studies="results/validated/studies.csv",
        summaries=lambda w: per_outcome("results/models/{study_set}/{outcome}/summary.csv", w.study_set),
        gates=lambda w: per_outcome("results/models/{study_set}/{outcome}/diagnostics.csv", w.study_set),
        dictionary=DICTIONARY,
        code=code("claims_check.py"),
    params:
        outcomes=CONTINUOUS,
    output:
        csv="results/tables/{study_set}/claims_check.csv",
        md="results/tables/{study_set}/claims_check.md",
        full="results/tables/{study_set}/claims_check.full.csv",
    script:
        "../scripts/claims_check.py"


rule model_figures:
    """Supplement: prior vs posterior (tau, correlations), posterior predictive check, rank plots."""
    input:
        idata="results/models/{study_set}/{outcome}/idata.nc",
        gate="results/models/{study_set}/{outcome}/diagnostics.csv",
        studies="results/validated/studies.csv",
        code=code("model_figures.py"),
    output:
        prior="results/figures/{study_set}/model/{outcome}_prior_posterior.png",
        ppc="results/figures/{study_set}/model/{outcome}_ppc.png",
        rank="results/figures/{study_set}/model/{outcome}_rank.png",
    script:
        "../scripts/model_figures.py"


rule diagnostics_table:
    """Every outcome's convergence gate in one supplement table."""
    input:
        gates=lambda w: per_outcome("results/models/{study_set}/{outcome}/diagnostics.csv", w.study_set, OUTCOMES),
        dictionary=DICTIONARY,
        code=code("diagnostics_table.py"),
    params:
        outcomes=OUTCOMES,
    output:
        csv="results/tables/{study_set}/diagnostics.csv",
        md="results/tables/{study_set}/diagnostics.md",
    script:
        "../scripts/diagnostics_table.py"


def figure_targets():
    targets = ["results/figures/appraisal_traffic_light.png", "results/tables/appraisal.csv"]
    for s in STUDY_SETS:
        targets += [f"results/figures/{s}/trajectories.png", f"results/tables/{s}/characteristics.csv",
                    f"results/tables/{s}/summary_of_findings.csv", f"results/tables/{s}/claims_check.csv",
                    f"results/tables/{s}/diagnostics.csv", f"results/tables/{s}/between_arm.csv",
                    f"results/tables/{s}/time_course_comparison.csv"]
        targets += [f"results/figures/{s}/forest/{o}.png" for o in CONTINUOUS]
        targets += [f"results/figures/{s}/trajectories/{o}.png" for o in CONTINUOUS]
        targets += [f"results/figures/{s}/model/{o}_prior_posterior.png" for o in CONTINUOUS]
    return targets
