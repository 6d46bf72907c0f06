"""Read config.yaml, check it against the JSON schema, and fill defaults.

Every later step works from the resolved configuration, so a typo in a key fails here, with the key's name,
before anything is computed.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from timecourse_meta import schema_path
from timecourse_meta.core.atomic import write_text
from timecourse_meta.core.errors import EngineError


class ConfigError(EngineError, ValueError):
    """config.yaml does not match its schema; the message lists every problem."""


def load_schema(name: str = "config.schema.yaml") -> dict:
    return yaml.safe_load(schema_path(name).read_text(encoding="utf-8"))


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
    if error.validator == "type" and isinstance(error.instance, str) and _is_number(error.instance):
        text += (" (Snakemake's --config passes a value inside a mapping as text; set nested keys in a file given "
                 "with --configfile)")
    return f"{text} ({description.strip()})" if description else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def describe_sources(configfiles, overrides) -> str:
    """Where a Snakemake config came from, for messages: the config files in the order applied, then --config."""
    parts = [str(f) for f in dict.fromkeys(configfiles)]
    if overrides:
        parts.append("--config " + " ".join(f"{k}=..." for k in overrides))
    return " + ".join(parts) or "config"


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
    if not problems:
        binary = set(config.get("binary_outcomes") or [])
        for name in config["safety"]["pooled"]:
            if name not in binary or name not in config["safety"]["outcomes"]:
                problems.append(f"{source}: key 'safety.pooled' item \"{name}\": expected an outcome of both "
                                f"binary_outcomes and safety.outcomes (its binary model is reused)")
    claims_set = config["data"].get("claims_study_set") if not problems else None
    if claims_set is not None and claims_set not in config["study_sets"]:
        problems.append(f"{source}: key 'data.claims_study_set' = \"{claims_set}\": expected one of study_sets "
                        f"{config['study_sets']} (or null: the main study set)")
    defined = config["review"]["study_sets"]
    if not problems and defined:
        for name in config["study_sets"]:
            if name not in defined:
                problems.append(f"{source}: key 'study_sets' item \"{name}\": not defined under review.study_sets "
                                f"(defined: {', '.join(defined)}){_did_you_mean(name, defined)}")
    if not problems:
        problems += _cross_key_problems(config, source)
    if problems:
        raise ConfigError("Invalid configuration:\n  - " + "\n  - ".join(problems))
    return config


# What models.resolve_priors reads under model.priors.<outcome>, by the outcome's kind; 'default' is read for
# continuous outcomes only.
PRIOR_KEYS = {"continuous": ("delta_sd", "tau_scale", "step_sd", "baseline_sd"), "binary": ("mu_sd", "tau_scale")}


def _did_you_mean(name: str, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _cross_key_problems(config: dict, source: str) -> list[str]:
    """Rules one key's schema cannot state: the visit grid's shape, prior keys against the analysed outcomes."""
    problems = []
    grid = config["model"]["visit_grid_months"]
    if 0 not in grid or grid != sorted(grid) or len(set(grid)) != len(grid):
        problems.append(f"{source}: key 'model.visit_grid_months' = {json.dumps(grid)}: expected visits in "
                        "increasing order, each once, starting at 0 (baseline), e.g. [0, 1, 3, 6, 12]")
    both = sorted(set(config["outcomes"]) & set(config["binary_outcomes"]))
    if both:
        problems.append(f"{source}: key 'binary_outcomes' = {json.dumps(both)}: expected each outcome in only one "
                        "of outcomes (continuous) and binary_outcomes")
    analysed = [*config["outcomes"], *config["binary_outcomes"]]
    for name, keys in (config["model"]["priors"] or {}).items():
        if name != "default" and name not in analysed:
            problems.append(f"{source}: key 'model.priors.{name}': expected an analysed outcome (outcomes or "
                            f"binary_outcomes) or 'default'{_did_you_mean(name, [*analysed, 'default'])}")
            continue
        kind = "binary" if name in config["binary_outcomes"] else "continuous"
        for key in keys or {}:
            if key not in PRIOR_KEYS[kind]:
                what = "a binary outcome" if kind == "binary" else (
                    "'default' (it applies to continuous outcomes)" if name == "default" else "a continuous outcome")
                problems.append(f"{source}: key 'model.priors.{name}.{key}': not read for {what}; expected one of "
                                f"{', '.join(PRIOR_KEYS[kind])}{_did_you_mean(key, PRIOR_KEYS[kind])}")
    return problems


def check_inputs(config: dict, source: str = "config.yaml") -> None:
    """Check what the config points at before any job runs: the data folder or workbook and the outcome
    dictionary exist, every analysed outcome is in the dictionary with the right kind, prior keys fit the
    outcome's kind, the vocabulary file validates and the review's arms and study fields do not collide, and
    every analysed study set has at least one study. Raises ConfigError naming the key.

    A sheet that cannot be read is left to the validation step, which reports it with its file and row."""
    from timecourse_meta.data import dictionary as dictionary_mod
    from timecourse_meta.data import sheets as sheets_mod

    data, problems = config["data"], []
    if data["workbook"]:
        if not Path(data["workbook"]).is_file():
            problems.append(f"{source}: key 'data.workbook' = {json.dumps(data['workbook'])}: file not found; "
                            "expected an .xlsx workbook with the sheets studies, outcomes and appraisal")
    elif not Path(data["raw_dir"]).is_dir():
        problems.append(f"{source}: key 'data.raw_dir' = {json.dumps(data['raw_dir'])}: folder not found; expected "
                        f"the folder holding {', '.join(f'{n}.csv' for n in sheets_mod.SHEETS)}")
    else:
        for name in sheets_mod.SHEETS:
            if not (Path(data["raw_dir"]) / f"{name}.csv").is_file():
                problems.append(f"{source}: key 'data.raw_dir' = {json.dumps(data['raw_dir'])}: {name}.csv not found "
                                f"in it; expected the '{name}' sheet saved as CSV there")
    outcomes = None
    if not Path(data["outcome_dictionary"]).is_file():
        problems.append(f"{source}: key 'data.outcome_dictionary' = {json.dumps(data['outcome_dictionary'])}: file "
                        "not found; expected the outcome dictionary YAML")
    else:
        try:
            outcomes = dictionary_mod.load(data["outcome_dictionary"])
        except (dictionary_mod.DictionaryError, yaml.YAMLError, OSError) as exc:
            problems.append(f"{source}: key 'data.outcome_dictionary': the dictionary cannot be read: {exc}")
    if outcomes is not None:
        for key, kind in (("outcomes", "continuous"), ("binary_outcomes", "binary")):
            for name in config[key]:
                if name not in outcomes:
                    problems.append(f"{source}: key '{key}' item \"{name}\": not in the outcome dictionary "
                                    f"({data['outcome_dictionary']}){_did_you_mean(name, outcomes)}")
                elif outcomes[name].kind != kind:
                    problems.append(f"{source}: key '{key}' item \"{name}\": the dictionary defines it as "
                                    f"{outcomes[name].kind}; expected a {kind} outcome here")
        for name in config["safety"]["outcomes"]:
            if name not in outcomes:
                problems.append(f"{source}: key 'safety.outcomes' item \"{name}\": not in the outcome dictionary "
                                f"({data['outcome_dictionary']}){_did_you_mean(name, outcomes)}")
        for name, keys in (config["model"]["priors"] or {}).items():
            if name in outcomes and outcomes[name].kind in PRIOR_KEYS:
                allowed = PRIOR_KEYS[outcomes[name].kind]
                for key in keys or {}:
                    if key not in allowed:
                        problems.append(f"{source}: key 'model.priors.{name}.{key}': not read for the "
                                        f"{outcomes[name].kind} outcome '{name}'; expected one of {', '.join(allowed)}")
    problems += _review_problems(config, source)
    if not problems:
        try:
            studies = (sheets_mod.read_workbook_sheet(data["workbook"], "studies") if data["workbook"]
                       else sheets_mod.read_csv_sheet(Path(data["raw_dir"]) / "studies.csv", "studies"))
        except (sheets_mod.SheetReadError, OSError, ValueError, KeyError):
            studies = None  # the validation step reports why, naming the file and row
        if studies is not None and "study_sets" in studies.data:
            present = {x for cell in studies.data["study_sets"] for x in str(cell).split(";") if x}
            for name in config["study_sets"]:
                if name not in present:
                    problems.append(f"{source}: key 'study_sets' item \"{name}\": no study in {studies.where()} "
                                    f"belongs to it (its study_sets column names {', '.join(sorted(present))})"
                                    f"{_did_you_mean(name, present)}")
    if problems:
        raise ConfigError("Invalid configuration:\n  - " + "\n  - ".join(dict.fromkeys(problems)))


def _review_problems(config: dict, source: str) -> list[str]:
    """The review's own files and names: the vocabulary file validates (its schema, with file and key), the two
    arms differ, and no studies-sheet column is claimed twice (an arm's patient count, a vocabulary study field
    and the engine's own columns)."""
    from timecourse_meta.core import review
    from timecourse_meta.data import columns

    problems = []
    arms = config["review"]["arms"]
    one, other = arms["intervention"], arms["comparator"]
    for key in ("id", "n_column"):
        if one[key] == other[key]:
            problems.append(f"{source}: key 'review.arms.comparator.{key}' = {json.dumps(other[key])}: expected a "
                            f"value other than the intervention's {key} (the two arms must differ)")
    engine = columns.ENGINE_COLUMNS["studies"]
    for arm in ("intervention", "comparator"):
        if arms[arm]["n_column"] in engine:
            problems.append(f"{source}: key 'review.arms.{arm}.n_column' = {json.dumps(arms[arm]['n_column'])}: "
                            "expected a column name the engine does not use for something else")
    path = config["data"]["vocabulary"]
    if not Path(path).is_file():
        return problems + [f"{source}: key 'data.vocabulary' = {json.dumps(path)}: file not found; expected the "
                           "review's vocabulary YAML (keys in workflow/schemas/vocabulary.schema.yaml)"]
    try:
        vocabulary = review.load_vocabulary(path)
    except ConfigError as exc:
        return problems + [f"{source}: key 'data.vocabulary': {exc}"]
    n_columns = {arms[a]["n_column"]: a for a in ("intervention", "comparator")}
    for name in vocabulary.study_fields:
        if name in engine or name in n_columns:
            whose = (f"the {n_columns[name]} arm's patient count (config review.arms.{n_columns[name]}.n_column)"
                     if name in n_columns else "one of the engine's own columns (docs/extraction_sheets.md)")
            problems.append(f"{path}: key 'study_fields.{name}': the column is already {whose}; expected a column "
                            "only this review has")
    return problems


def yaml_error(path: str | Path, text: str, exc: yaml.YAMLError) -> ConfigError:
    """A YAML syntax error as one sentence with its line and column (tabs are named: YAML forbids them)."""
    for number, line in enumerate(text.splitlines(), start=1):
        indent = line[: len(line) - len(line.lstrip())]
        if "\t" in indent:
            return ConfigError(f"{path}: line {number}, column {indent.index(chr(9)) + 1}: a tab character; YAML "
                               "does not allow tabs for indentation, indent with spaces")
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return ConfigError(f"{path}: line {mark.line + 1}, column {mark.column + 1}: not valid YAML ({problem})")
    return ConfigError(f"{path}: not valid YAML ({problem})")


def check_yaml_file(path: str | Path) -> None:
    """Raise ConfigError with line and column if `path` exists and is not valid YAML (run before Snakemake reads
    it, whose own message names neither)."""
    path = Path(path)
    if not path.is_file():
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise yaml_error(path, text, exc) from None


def read_yaml_document(path: str | Path, schema: str, what: str) -> dict:
    """Read a review file (YAML), check it against `schema` (a file of workflow/schemas) and fill its defaults.

    Raises ConfigError naming the file, the line of a syntax error, or each offending key with the schema's
    description of it; `what` says what the file should hold when it is missing or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found; expected {what}")
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise yaml_error(path, text, exc) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level ({what})")
    document = copy.deepcopy(raw)
    errors = sorted(_Validator(load_schema(schema)).iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        problems = [_describe(e, str(path)) for e in errors]
        raise ConfigError(f"Problems in {what}:\n  - " + "\n  - ".join(dict.fromkeys(problems)))
    return document


def load(path: str | Path) -> dict:
    """Read and resolve a config file."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise yaml_error(path, text, exc) from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level")
    return resolve(raw, source=str(path))


def dump(config: dict) -> str:
    """Stable YAML text of a resolved config (sorted keys, so equal configs give equal files)."""
    return yaml.safe_dump(config, sort_keys=True, allow_unicode=True)


RESOLVED_HEADER = ("# Resolved configuration: config.yaml, any --configfile and --config merged by Snakemake, with every "
                   "default filled. Generated; do not edit.\n")


def resolved_text(config: dict) -> str:
    """The exact text of resolved_config.yaml for a resolved config (equal configs give equal text)."""
    return RESOLVED_HEADER + dump(config)


def write_resolved(config: dict, out: str | Path) -> None:
    write_text(out, resolved_text(config))


def write_snakemake_resolved(raw: dict, out: str | Path, expected_fingerprint: str) -> None:
    """Write the resolved config of Snakemake's merged `config`; the fingerprint computed when the workflow was
    parsed must match, so the file is exactly what the rerun decision was based on."""
    text = resolved_text(resolve(raw))
    if fingerprint(text) != expected_fingerprint:
        raise ConfigError(f"{out}: the configuration changed between parsing the workflow and this job; rerun")
    write_text(out, text)


def fingerprint(value: Any) -> str:
    """Short hash of a config slice, for provenance records."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]
