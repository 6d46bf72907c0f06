"""The outcome dictionary: controlled vocabulary, canonical units, conversions, direction of benefit, scale, and
each outcome's default prior scales with their rationale.

One YAML file of the review (config key data.outcome_dictionary), checked against
workflow/schemas/outcomes.schema.yaml, so that adding an outcome, a unit or a prior is a data change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from timecourse_meta.core.config import ConfigError, read_yaml_document
from timecourse_meta.core.errors import EngineError

SCHEMA = "outcomes.schema.yaml"

KINDS = {"continuous", "binary", "count", "characteristic"}
DIRECTIONS = {"increase", "decrease", "none"}
SCALES = {"identity", "log", "logit"}
UNIT_NOT_REPORTED = "not reported"


class DictionaryError(EngineError, ValueError):
    """The outcome dictionary itself is malformed."""


@dataclass(frozen=True)
class Outcome:
    name: str
    label: str
    kind: str
    canonical_unit: str
    units: dict  # reported unit -> factor into canonical unit (None where no conversion applies)
    direction_of_benefit: str
    analysis_scale: str
    plausible_range: tuple | None = None
    description: str = ""
    decimals: int | None = None  # reporting precision in the canonical unit; None = the engine's rule for the unit
    # analysis scale -> prior scales and their rationale (see outcomes.schema.yaml); {} = the generic rule
    priors: dict = field(default_factory=dict)
    # {value, scale: absolute | percent, rationale}: the smallest important change (certainty rating); None = none
    important_difference: dict | None = None

    def factor(self, unit: str) -> float | None:
        """Multiplier from `unit` into the canonical unit (None when the unit is not a convertible one)."""
        return self.units.get(unit)

    def as_spec(self) -> dict:
        """Plain dict for the models (no dataclass in their interface)."""
        return {
            "name": self.name,
            "label": self.label,
            "kind": self.kind,
            "canonical_unit": self.canonical_unit,
            "direction_of_benefit": self.direction_of_benefit,
            "analysis_scale": self.analysis_scale,
            "priors": {scale: dict(entry) for scale, entry in self.priors.items()},
        }


def load(path: str | Path | None = None) -> dict[str, Outcome]:
    """Read and check the dictionary; every problem is reported with the outcome and key."""
    if path is None:
        raise DictionaryError("no outcome dictionary given; expected the path of the review's outcome dictionary "
                              "(config key data.outcome_dictionary)")
    path = Path(path)
    try:
        raw = read_yaml_document(path, SCHEMA, "the outcome dictionary (a mapping 'outcomes:' with one entry per "
                                                "outcome)")
    except ConfigError as exc:
        raise DictionaryError(str(exc)) from None
    entries = raw["outcomes"]
    problems, outcomes = [], {}
    for name, entry in entries.items():
        where = f"{path}: outcome '{name}'"
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected a mapping of keys")
            continue
        missing = [k for k in ("label", "kind", "canonical_unit", "units", "direction_of_benefit",
                               "analysis_scale") if k not in entry]
        if missing:
            problems.append(f"{where}: missing key(s) {missing}")
            continue
        for key, allowed in (("kind", KINDS), ("direction_of_benefit", DIRECTIONS), ("analysis_scale", SCALES)):
            if entry[key] not in allowed:
                problems.append(f"{where}: {key} = {entry[key]!r}; expected one of {sorted(allowed)}")
        units = entry["units"]
        if not isinstance(units, dict) or not units:
            problems.append(f"{where}: units must map each reported unit to a factor (or null)")
            continue
        if entry["kind"] == "continuous":
            if units.get(entry["canonical_unit"]) != 1:
                problems.append(f"{where}: the canonical unit {entry['canonical_unit']!r} must be in units with "
                                "factor 1")
            bad = [u for u, f in units.items() if not isinstance(f, (int, float)) or f <= 0]
            if bad:
                problems.append(f"{where}: unit(s) {bad} need a positive conversion factor")
        rng = entry.get("plausible_range")
        outcomes[name] = Outcome(
            name=name,
            label=str(entry["label"]),
            kind=entry["kind"],
            canonical_unit=str(entry["canonical_unit"]),
            units=dict(units),
            direction_of_benefit=entry["direction_of_benefit"],
            analysis_scale=entry["analysis_scale"],
            plausible_range=tuple(rng) if rng else None,
            description=str(entry.get("description", "")),
            decimals=entry.get("decimals"),
            priors=_priors(entry.get("priors") or {}, entry, where, problems),
            important_difference=_important_difference(entry.get("important_difference"), entry, where, problems),
        )
    if problems:
        raise DictionaryError("Invalid outcome dictionary:\n  - " + "\n  - ".join(problems))
    return outcomes


PRIOR_KEYS = {"continuous": ("delta_sd", "tau_scale", "step_sd", "baseline_sd"), "binary": ("mu_sd", "tau_scale")}


def _priors(priors: dict, entry: dict, where: str, problems: list[str]) -> dict:
    """The outcome's prior scales per analysis scale; keys the outcome's kind does not read are problems
    (named with the outcome and key), so a typo cannot silently fall back to the generic rule."""
    kind = entry["kind"]
    if priors and kind not in PRIOR_KEYS:
        problems.append(f"{where}: key 'priors': a {kind} outcome is not modelled; expected no priors")
        return {}
    for scale, values in priors.items():
        for key in values:
            if key != "rationale" and key not in PRIOR_KEYS[kind]:
                problems.append(f"{where}: key 'priors.{scale}.{key}': not read for a {kind} outcome; expected one "
                                f"of {', '.join(PRIOR_KEYS[kind])} (and rationale)")
        if kind == "binary" and scale != "logit":
            problems.append(f"{where}: key 'priors.{scale}': binary outcomes are modelled on the logit scale; "
                            "expected 'logit'")
    return {scale: dict(values) for scale, values in priors.items()}


def _important_difference(value: dict | None, entry: dict, where: str, problems: list[str]) -> dict | None:
    """The important difference, if its scale fits the outcome's analysis scale (percent for log-scale
    outcomes, absolute for the others) and a percent fall stays above -100%."""
    if not value:
        return None
    scale, log = value["scale"], entry["analysis_scale"] == "log"
    if entry["kind"] not in ("continuous", "binary"):
        problems.append(f"{where}: key 'important_difference': a {entry['kind']} outcome is not rated; expected no "
                        "important_difference")
    elif scale == "percent" and not log or scale == "absolute" and log:
        problems.append(f"{where}: key 'important_difference.scale' = {scale!r}: expected "
                        f"{'percent' if log else 'absolute'} for an outcome on the {entry['analysis_scale']} scale")
    elif scale == "percent" and entry["direction_of_benefit"] == "decrease" and value["value"] >= 100:
        problems.append(f"{where}: key 'important_difference.value' = {value['value']}: a percent fall must be "
                        "below 100")
    return dict(value)
