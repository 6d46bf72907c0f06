"""What makes one review, read from its files: arms, study sets and vocabularies.

The engine never names an intervention, a disease or a study set; it asks this module. `arms(config)` gives the
two arms of the outcomes sheet (ids, labels, the studies-sheet column of their patient counts), `set_name`
a study set inside a sentence, and `load_vocabulary` the designs, appraisal checklists and judgements, the
review-defined study-sheet fields and the lint's extra terms, checked against
workflow/schemas/vocabulary.schema.yaml.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from timecourse_meta.core import config as config_mod


@dataclass(frozen=True)
class Arm:
    """One arm of the outcomes sheet's `arm` column."""

    id: str
    label: str
    short: str
    arm_name: str
    n_column: str


@dataclass(frozen=True)
class Arms:
    intervention: Arm
    comparator: Arm

    def is_intervention(self, value) -> bool:
        return str(value).strip().lower() == self.intervention.id.lower()


def arms(config: Mapping) -> Arms:
    """The review's two arms from a resolved config (`review.arms`)."""
    a = config["review"]["arms"]
    return Arms(Arm(**a["intervention"]), Arm(**a["comparator"]))


def set_name(config: Mapping, study_set: str) -> str:
    """A study set inside a sentence (`review.study_sets.<id>.name`); the id with spaces when undefined."""
    spec = (config.get("review", {}).get("study_sets") or {}).get(study_set)
    return spec["name"] if spec else study_set.replace("_", " ")


@dataclass(frozen=True)
class Judgement:
    label: str
    legend: str
    symbol: str
    colour: str
    concern: str


@dataclass(frozen=True)
class Vocabulary:
    """The coded values of the review's sheets and their labels (see vocabulary.schema.yaml)."""

    designs: dict[str, dict] = field(default_factory=dict)
    checklists: dict[str, str] = field(default_factory=dict)
    judgements: dict[str, Judgement] = field(default_factory=dict)
    study_fields: dict[str, dict] = field(default_factory=dict)
    characteristics: list[dict] = field(default_factory=list)
    exclusion_reasons: dict[str, str] = field(default_factory=dict)  # code -> label (studies sheet)
    lint_allow: list[str] = field(default_factory=list)
    source: str = ""  # the file it was read from, for messages

    def design_label(self, code: str) -> str:
        return self.designs.get(code, {}).get("label", code)

    def design_words(self, code: str) -> tuple[str, str]:
        """The design inside a sentence, (one study, several studies)."""
        spec = self.designs.get(code, {})
        one = spec.get("singular") or spec.get("label", code.replace("_", " ")).lower()
        return one, spec.get("plural") or f"{one}s"

    def controlled_designs(self) -> list[str]:
        return [k for k, v in self.designs.items() if v["controlled"]]


@functools.lru_cache(maxsize=16)
def _load(path: str, mtime: float) -> Vocabulary:
    doc = config_mod.read_yaml_document(path, "vocabulary.schema.yaml", "the review's vocabulary file")
    judgements = {str(k): Judgement(label=v["label"], legend=v.get("legend", v["label"]), symbol=v["symbol"],
                                    colour=v["colour"], concern=v["concern"]) for k, v in doc["judgements"].items()}
    fields = doc["study_fields"]
    problems = [f"{path}: key 'characteristics.{i}.{key}' = \"{name}\": expected a column listed under study_fields "
                f"({', '.join(fields) or 'none listed'})"
                for i, spec in enumerate(doc["characteristics"])
                for key, names in (("fields", spec["fields"]), ("confidence", [spec.get("confidence")]))
                for name in names if name is not None and name not in fields]
    if problems:
        raise config_mod.ConfigError("Problems in the review's vocabulary file:\n  - " + "\n  - ".join(problems))
    return Vocabulary(designs=dict(doc["designs"]),
                      checklists={k: v["label"] for k, v in doc["checklists"].items()},
                      judgements=judgements, study_fields=dict(doc["study_fields"]),
                      characteristics=list(doc["characteristics"]),
                      exclusion_reasons={k: v["label"] for k, v in doc["exclusion_reasons"].items()},
                      lint_allow=list(doc["lint"]["allow"]),
                      source=path)


def load_vocabulary(path: str | Path) -> Vocabulary:
    """The vocabulary file, validated (ConfigError naming the file and key otherwise)."""
    p = Path(path)
    return _load(str(p), p.stat().st_mtime if p.is_file() else -1.0)


def vocabulary(config: Mapping) -> Vocabulary:
    """The vocabulary file a resolved config names (`data.vocabulary`)."""
    return load_vocabulary(config["data"]["vocabulary"])
