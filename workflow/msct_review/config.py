"""Read config.yaml, check it against the JSON schema, and fill defaults.

Every later step works from the resolved configuration, so a typo in a key fails here, with the key's name,
before anything is computed.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from . import schema_path
from .atomic import write_text


class ConfigError(ValueError):
    """config.yaml does not match its schema; the message lists every problem."""


def load_schema() -> dict:
    return yaml.safe_load(schema_path("config.schema.yaml").read_text(encoding="utf-8"))


def _with_defaults(validator_class):
    """A validator that fills each missing property with its schema default before validating it."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _describe(error: jsonschema.ValidationError, source: str) -> str:
    where = _key(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        keys = ", ".join(f"'{_key([*error.absolute_path, k])}'" for k in extra)
        hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
        return f"{source}: unknown key {keys}{hint}"
    description = error.schema.get("description", "")
    expected = {
        "type": lambda: f"expected {error.validator_value}",
        "enum": lambda: f"expected one of {error.validator_value}",
        "minimum": lambda: f"expected a value >= {error.validator_value}",
        "maximum": lambda: f"expected a value <= {error.validator_value}",
        "exclusiveMinimum": lambda: f"expected a value > {error.validator_value}",
        "exclusiveMaximum": lambda: f"expected a value < {error.validator_value}",
        "pattern": lambda: f"expected text matching {error.validator_value}",
        "minItems": lambda: f"expected at least {error.validator_value} item(s)",
        "uniqueItems": lambda: "expected no repeated items",
    }.get(error.validator, lambda: error.message)()
    text = f"{source}: key '{where}' = {json.dumps(error.instance)}: {expected}"
    return f"{text} ({description.strip()})" if description else text


def resolve(raw: dict | None, source: str = "config.yaml") -> dict:
    """Validate a config mapping and return a copy with every default filled.

    Raises ConfigError naming each offending key; cross-key rules (main study set among the analysed sets)
    are checked here too.
    """
    config = copy.deepcopy(raw) if raw else {}
    validator = _Validator(load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    problems = [_describe(e, source) for e in errors]
    if not problems and config["main_study_set"] not in config["study_sets"]:
        problems.append(
            f"{source}: key 'main_study_set' = \"{config['main_study_set']}\": expected one of study_sets "
            f"{config['study_sets']}"
        )
    if problems:
        raise ConfigError("Invalid configuration:\n  - " + "\n  - ".join(problems))
    return config


def load(path: str | Path) -> dict:
    """Read and resolve a config file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level")
    return resolve(raw, source=str(path))


def dump(config: dict) -> str:
    """Stable YAML text of a resolved config (sorted keys, so equal configs give equal files)."""
    return yaml.safe_dump(config, sort_keys=True, allow_unicode=True)


def write_resolved(config: dict, out: str | Path) -> None:
    write_text(out, "# Resolved configuration: config.yaml with every default filled. Generated; do not edit.\n"
               + dump(config))


def fingerprint(value: Any) -> str:
    """Short hash of a config slice, for provenance records."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]
