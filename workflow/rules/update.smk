# The living review: a snapshot of each run's inputs and key results, and the report of what changed since a
# recorded snapshot (config `update`; recording is by hand: workflow/scripts/record_snapshot.py, README).

from timecourse_meta.report import snapshot as snapshot_mod

# the raw sheets and the review's own files, hashed in the snapshot
SNAPSHOT_FILES = [*RAW_INPUTS, CONFIG["data"]["outcome_dictionary"], CONFIG["data"]["vocabulary"],
                  *([CONFIG["data"]["claims"]] if CONFIG["data"]["claims"] else [])]
SNAPSHOT_PAIRS = [[s, o] for s in STUDY_SETS for o in OUTCOMES]
# the snapshot compared with: config update.compare_with, else the latest recorded one (none: nothing to compare)
COMPARE_WITH = CONFIG["update"]["compare_with"] or snapshot_mod.latest(CONFIG["update"]["snapshots_dir"])
COMPARE_WITH = str(COMPARE_WITH) if COMPARE_WITH else None
UPDATE_TARGETS = ["results/snapshot/snapshot.json", "results/update/what_changed.md",
                  "results/update/what_changed.csv"]


rule snapshot:
    """The run's snapshot: hashes of the sheets, review files and config, of every study's rows, and the key
    results (estimate, interval, P(improvement), studies, patients, evidence, Monte Carlo error) per outcome,
    set and visit."""
    input:
        files=SNAPSHOT_FILES,
        config="results/config/resolved_config.yaml",
        studies="results/validated/studies.csv",
        outcomes="results/validated/outcomes.csv",
        summaries=[f"results/models/{s}/{o}/summary.csv" for s, o in SNAPSHOT_PAIRS],
        diagnostics=[f"results/models/{s}/{o}/diagnostics.csv" for s, o in SNAPSHOT_PAIRS],
        code=code("snapshot.py"),
    params:
        pairs=SNAPSHOT_PAIRS,  # (study set, outcome) of each summary and diagnostics file, in order
    output:
        "results/snapshot/snapshot.json",
    log:
        "results/logs/update/snapshot.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/snapshot.py"


rule what_changed:
    """What changed since the snapshot compared with: studies and rows, estimates beyond Monte Carlo error,
    conclusions, poolable outcomes."""
    input:
        current="results/snapshot/snapshot.json",
        previous=[COMPARE_WITH] if COMPARE_WITH else [],
        code=code("what_changed.py"),
    params:
        # the recorded snapshot's path, read from the input (no input: "", the report says so)
        compare_with=lambda wildcards, input: input.previous[0] if input.previous else "",
    output:
        md=report("results/update/what_changed.md", caption="../report/what_changed.rst", category="Update"),
        csv=report("results/update/what_changed.csv", caption="../report/what_changed_table.rst",
                   category="Update"),
    log:
        "results/logs/update/what_changed.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/what_changed.py"
