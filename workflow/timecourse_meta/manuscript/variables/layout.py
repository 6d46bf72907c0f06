"""Which results files the manuscript variables are built from (the Snakemake rule's inputs are exactly these)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ResultsFiles:
    """Every results file the variables are built from (paths as given: relative to the working directory)."""

    config: Path
    dictionary: Path
    vocabulary: Path
    studies: Path
    outcomes: Path
    appraisal: Path
    warnings: Path
    analysis_table: Path
    coverage: Path
    summaries: dict = field(default_factory=dict)     # (set, outcome) -> summary.csv
    diagnostics: dict = field(default_factory=dict)   # (set, outcome) -> diagnostics.csv
    key_visits: dict = field(default_factory=dict)    # (set, continuous outcome) -> key_visits/O.csv
    claims: dict = field(default_factory=dict)        # set -> claims_check.csv
    safety: dict = field(default_factory=dict)        # set -> safety.csv (config safety.outcomes)
    prisma: dict = field(default_factory=dict)        # set -> prisma_counts.csv
    what_changed_md: Path = Path("results/update/what_changed.md")
    what_changed_csv: Path = Path("results/update/what_changed.csv")
    sensitivity_verdicts: dict = field(default_factory=dict)  # set -> sensitivity_verdicts.full.csv
    sensitivity_variants: dict = field(default_factory=dict)  # set -> sensitivity_variants.csv

    def all(self) -> list[str]:
        """The files in a stable order (the Snakemake rule's inputs)."""
        paths = [self.config, self.dictionary, self.vocabulary, self.studies, self.outcomes, self.appraisal,
                 self.warnings, self.analysis_table, self.coverage]
        for mapping in (self.summaries, self.diagnostics, self.key_visits, self.claims, self.safety, self.prisma,
                        self.sensitivity_verdicts, self.sensitivity_variants):
            paths += list(mapping.values())
        paths += [self.what_changed_md, self.what_changed_csv]
        return [str(p) for p in paths]


def results_files(cfg: Mapping, results_dir: str | Path = "results", root: str | Path = ".") -> ResultsFiles:
    """The results layout for a resolved config (the review files' paths are the config's, relative to `root`)."""
    r, root = Path(results_dir), Path(root)
    files = ResultsFiles(
        config=r / "config" / "resolved_config.yaml",
        dictionary=root / cfg["data"]["outcome_dictionary"],
        vocabulary=root / cfg["data"]["vocabulary"],
        studies=r / "validated" / "studies.csv",
        outcomes=r / "validated" / "outcomes.csv",
        appraisal=r / "validated" / "appraisal.csv",
        warnings=r / "validated" / "warnings.csv",
        analysis_table=r / "harmonised" / "analysis_table.csv",
        coverage=r / "harmonised" / "coverage.csv",
        what_changed_md=r / "update" / "what_changed.md",
        what_changed_csv=r / "update" / "what_changed.csv",
    )
    for s in cfg["study_sets"]:
        for o in list(cfg["outcomes"]) + list(cfg["binary_outcomes"]):
            files.summaries[(s, o)] = r / "models" / s / o / "summary.csv"
            files.diagnostics[(s, o)] = r / "models" / s / o / "diagnostics.csv"
        for o in cfg["outcomes"]:
            files.key_visits[(s, o)] = r / "tables" / s / "key_visits" / f"{o}.csv"
        files.prisma[s] = r / "tables" / s / "prisma_counts.csv"
        if cfg["data"].get("claims"):  # no claims file: the text says the claims were not checked
            files.claims[s] = r / "tables" / s / "claims_check.csv"
        if (cfg.get("safety") or {}).get("outcomes"):  # no safety outcomes: the text says so
            files.safety[s] = r / "tables" / s / "safety.csv"
        files.sensitivity_verdicts[s] = r / "tables" / s / "sensitivity_verdicts.full.csv"
        files.sensitivity_variants[s] = r / "tables" / s / "sensitivity_variants.csv"
    return files


def variables_inputs(cfg: Mapping, results_dir: str | Path = "results", root: str | Path = ".") -> list[str]:
    """Exactly the files `build_variables` reads, for the Snakemake rule."""
    return results_files(cfg, results_dir, root).all()
