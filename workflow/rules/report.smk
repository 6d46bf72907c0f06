# Models and data -> figures (PNG 300 dpi + SVG) and tables (CSV + Markdown), one job per outcome where it
# makes sense, so a change to one outcome's data reruns only that outcome's figures.
# Every figure reads the model's diagnostics file too: nothing downstream uses an unconverged model.

# CONTINUOUS, DICTIONARY, per_outcome and figure_targets: common.smk.


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
    params:
        review=CONFIG["review"],  # arm and study-set names in the words
    output:
        png=report("results/figures/{study_set}/forest/{outcome}.png",
                   caption="../report/forest.rst", category="Figures", subcategory="{study_set}"),
        svg="results/figures/{study_set}/forest/{outcome}.svg",
        key_visit="results/tables/{study_set}/key_visits/{outcome}.csv",
        by_visit=report(directory("results/figures/{study_set}/forest/by_visit/{outcome}"),
                        patterns=["{name}_{visit}m.png"], caption="../report/forest_by_visit.rst",
                        category="Figures", subcategory="{study_set}"),
    log:
        "results/logs/report/forest_{study_set}_{outcome}.log",
    conda:
        "../../envs/analysis.yaml"
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
    params:
        review=CONFIG["review"],  # arm and study-set names in the words
    output:
        png=report("results/figures/{study_set}/trajectories/{outcome}.png",
                   caption="../report/trajectory.rst", category="Figures", subcategory="{study_set}"),
        svg="results/figures/{study_set}/trajectories/{outcome}.svg",
    log:
        "results/logs/report/trajectory_{study_set}_{outcome}.log",
    conda:
        "../../envs/analysis.yaml"
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
        review=CONFIG["review"],  # arm and study-set names in the words
        outcomes=CONTINUOUS,
    output:
        png=report("results/figures/{study_set}/trajectories.png",
                   caption="../report/trajectories.rst", category="Figures", subcategory="{study_set}"),
        svg="results/figures/{study_set}/trajectories.svg",
    log:
        "results/logs/report/trajectories_{study_set}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/trajectories.py"


rule characteristics_table:
    """Table 1: one row per study in the set."""
    input:
        table="results/harmonised/analysis_table.csv",
        studies="results/validated/studies.csv",
        dictionary=DICTIONARY,
        bibliography="manuscript/references.bib",
        vocabulary=CONFIG["data"]["vocabulary"],
        code=code("characteristics_table.py"),
    params:
        review=CONFIG["review"],  # arm and study-set names in the words
    output:
        csv=report("results/tables/{study_set}/characteristics.csv",
                   caption="../report/characteristics_table.rst", category="Tables", subcategory="{study_set}"),
        md="results/tables/{study_set}/characteristics.md",
    log:
        "results/logs/report/characteristics_table_{study_set}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/characteristics_table.py"


rule appraisal:
    """Critical appraisal: robvis-style traffic lights, a summary bar per item, and the table."""
    input:
        appraisal="results/validated/appraisal.csv",
        studies="results/validated/studies.csv",
        vocabulary=CONFIG["data"]["vocabulary"],
        code=code("appraisal.py"),
    output:
        traffic=report("results/figures/appraisal_traffic_light.png",
                       caption="../report/appraisal_traffic_light.rst", category="Figures", subcategory="appraisal"),
        traffic_svg="results/figures/appraisal_traffic_light.svg",
        summary=report("results/figures/appraisal_summary.png",
                       caption="../report/appraisal_summary.rst", category="Figures", subcategory="appraisal"),
        summary_svg="results/figures/appraisal_summary.svg",
        csv=report("results/tables/appraisal.csv",
                   caption="../report/appraisal_table.rst", category="Tables", subcategory="appraisal"),
        md="results/tables/appraisal.md",
    log:
        "results/logs/report/appraisal.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/appraisal.py"


rule summary_of_findings:
    """Per outcome at its key visit: studies, patients, pooled change, prediction interval, P(improvement), and
    the GRADE certainty with its footnotes (rules: config certainty, docs/certainty.md)."""
    input:
        table="results/harmonised/analysis_table.csv",
        studies="results/validated/studies.csv",
        appraisal="results/validated/appraisal.csv",  # risk of bias
        vocabulary=CONFIG["data"]["vocabulary"],  # the judgements' concern
        summaries=lambda w: per_outcome("results/models/{study_set}/{outcome}/summary.csv", w.study_set, OUTCOMES),
        gates=lambda w: per_outcome("results/models/{study_set}/{outcome}/diagnostics.csv", w.study_set, OUTCOMES),
        key_visits=lambda w: per_outcome("results/tables/{study_set}/key_visits/{outcome}.csv", w.study_set),
        dictionary=DICTIONARY,
        safety="results/tables/{study_set}/safety.csv",  # the safety rows
        safety_pooled="results/tables/{study_set}/safety_pooled.csv",
        code=code("summary_of_findings.py"),
    params:
        review=CONFIG["review"],  # arm and study-set names in the words
        outcomes=OUTCOMES,
        continuous=CONTINUOUS,
        certainty=CONFIG["certainty"],  # the rating's rules and thresholds
    output:
        csv=report("results/tables/{study_set}/summary_of_findings.csv",
                   caption="../report/summary_of_findings.rst", category="Tables", subcategory="{study_set}"),
        md="results/tables/{study_set}/summary_of_findings.md",
    log:
        "results/logs/report/summary_of_findings_{study_set}.log",
    conda:
        "../../envs/analysis.yaml"
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
        review=CONFIG["review"],  # arm and study-set names in the words
        outcomes=OUTCOMES,
    output:
        csv=report("results/tables/{study_set}/between_arm.csv",
                   caption="../report/between_arm_table.rst", category="Tables", subcategory="{study_set}"),
        md="results/tables/{study_set}/between_arm.md",
    log:
        "results/logs/report/between_arm_table_{study_set}.log",
    conda:
        "../../envs/analysis.yaml"
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
        csv=report("results/tables/{study_set}/time_course_comparison.csv",
                   caption="../report/time_course_table.rst", category="Tables", subcategory="{study_set}"),
        md="results/tables/{study_set}/time_course_comparison.md",
    log:
        "results/logs/report/time_course_table_{study_set}.log",
    conda:
        "../../envs/analysis.yaml"
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
        review=CONFIG["review"],  # arm and study-set names in the words
        outcomes=CONTINUOUS,
    output:
        csv=report("results/tables/{study_set}/claims_check.csv",
                   caption="../report/claims_check.rst", category="Tables", subcategory="{study_set}"),
        md="results/tables/{study_set}/claims_check.md",
        full="results/tables/{study_set}/claims_check.full.csv",
    log:
        "results/logs/report/claims_check_{study_set}.log",
    conda:
        "../../envs/analysis.yaml"
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
        prior=report("results/figures/{study_set}/model/{outcome}_prior_posterior.png",
                     caption="../report/model_prior_posterior.rst", category="Model checks",
                     subcategory="{study_set}"),
        ppc=report("results/figures/{study_set}/model/{outcome}_ppc.png", caption="../report/model_ppc.rst",
                   category="Model checks", subcategory="{study_set}"),
        rank=report("results/figures/{study_set}/model/{outcome}_rank.png", caption="../report/model_rank.rst",
                    category="Model checks", subcategory="{study_set}"),
    log:
        "results/logs/report/model_figures_{study_set}_{outcome}.log",
    conda:
        "../../envs/analysis.yaml"
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
        csv=report("results/tables/{study_set}/diagnostics.csv",
                   caption="../report/diagnostics_table.rst", category="Tables", subcategory="{study_set}"),
        md="results/tables/{study_set}/diagnostics.md",
    log:
        "results/logs/report/diagnostics_table_{study_set}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/diagnostics_table.py"



rule safety_table:
    """Adverse events by study (config safety.outcomes) and the pooled incidence of safety.pooled."""
    input:
        outcomes="results/validated/outcomes.csv",
        studies="results/validated/studies.csv",
        dictionary=DICTIONARY,
        summaries=lambda w: per_outcome("results/models/{study_set}/{outcome}/summary.csv", w.study_set,
                                        SAFETY_POOLED),
        gates=lambda w: per_outcome("results/models/{study_set}/{outcome}/diagnostics.csv", w.study_set,
                                    SAFETY_POOLED),
        code=code("safety_table.py"),
    params:
        review=CONFIG["review"],  # arm names in the table
        safety_outcomes=CONFIG["safety"]["outcomes"],
        pooled_outcomes=SAFETY_POOLED,
    output:
        csv=report("results/tables/{study_set}/safety.csv",
                   caption="../report/safety_table.rst", category="Tables", subcategory="{study_set}"),
        md="results/tables/{study_set}/safety.md",
        pooled_csv="results/tables/{study_set}/safety_pooled.csv",
        pooled_md="results/tables/{study_set}/safety_pooled.md",
    log:
        "results/logs/report/safety_table_{study_set}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/safety_table.py"


rule prisma:
    """PRISMA 2020 flow of one study set from the sheets: records by source type and search, reports collated
    into studies, studies excluded or not analysed with reasons, studies included (counts with definitions)."""
    input:
        studies="results/validated/studies.csv",
        outcomes="results/validated/outcomes.csv",  # the `usable` column: studies without usable data
        table="results/harmonised/analysis_table.csv",
        vocabulary=CONFIG["data"]["vocabulary"],  # the exclusion reasons' labels
        code=code("prisma.py"),
    params:
        review=CONFIG["review"],  # the study set's name and the searches' descriptions
    output:
        png=report("results/figures/{study_set}/prisma.png", caption="../report/prisma.rst", category="Figures",
                   subcategory="{study_set}"),
        svg="results/figures/{study_set}/prisma.svg",
        csv=report("results/tables/{study_set}/prisma_counts.csv", caption="../report/prisma_counts.rst",
                   category="Tables", subcategory="{study_set}"),
    log:
        "results/logs/report/prisma_{study_set}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/prisma.py"
