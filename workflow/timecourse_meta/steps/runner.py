"""How a rule's script calls its step: `main(snakemake, run_<rule>)`, one line per script.

Every step is a function `run_<rule>(*, ...)` whose keyword-only parameters are named after the rule's named
outputs, inputs, params and wildcards (looked up in that order; a rule's one unnamed output is `out`, its log
files are `log` (the first) and `logs` (all, by name), Snakemake's merged config is `snakemake_config`). A name that two of those hold is a bug in the rule and is
refused. An EngineError (bad input or a failed check) is printed as its message, in the log and on the
terminal, and the job fails without a traceback; anything else is a bug and keeps its traceback in the log.
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Callable

from timecourse_meta.core.errors import EngineError

NAMESPACES = ("output", "input", "params", "wildcards")


def _named(namespace) -> dict:
    """The named entries of a Snakemake namespace (Namedlist), without the unnamed ones."""
    if namespace is None:
        return {}
    try:
        return {k: v for k, v in namespace.items()}
    except AttributeError:
        return {k: v for k, v in vars(namespace).items() if not k.startswith("_")}


def step_arguments(smk, step: Callable) -> dict:
    """The keyword arguments of `step` from the rule's namespaces (see the module docstring)."""
    found: dict = {}
    for space in NAMESPACES:
        for name, value in _named(getattr(smk, space, None)).items():
            if name in found:
                raise RuntimeError(f"rule {smk.rule}: '{name}' is both a {found[name][0]} and a {space}")
            found[name] = (space, value)
    outputs = list(getattr(smk, "output", []) or [])
    if "out" not in found and len(outputs) == 1:
        found["out"] = ("output", outputs[0])
    logs = list(getattr(smk, "log", []) or [])
    if logs:
        found.setdefault("log", ("log", logs[0]))
        found.setdefault("logs", ("log", _named(smk.log)))
    found.setdefault("snakemake_config", ("config", getattr(smk, "config", None)))
    kwargs, missing = {}, []
    for name, parameter in inspect.signature(step).parameters.items():
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
            raise TypeError(f"{step.__name__}: parameter '{name}' must be keyword-only")
        if name in found:
            kwargs[name] = found[name][1]
        elif parameter.default is inspect.Parameter.empty:
            missing.append(name)
    if missing:
        raise RuntimeError(f"rule {smk.rule}: {step.__name__} needs {', '.join(missing)}, which the rule does not "
                           "name among its outputs, inputs, params or wildcards")
    return kwargs


def main(smk, step: Callable) -> None:
    """Run one rule's step with the rule's named files; stderr is already the rule's log (the script's first
    line), so the step's own messages (what it does, how long it took) go there too."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, force=True)
    logging.getLogger("timecourse_meta").setLevel(logging.INFO)
    try:
        step(**step_arguments(smk, step))
    except EngineError as exc:  # the review author's to fix: the message (file, row, key) without a traceback,
        for stream in (sys.stderr, sys.__stderr__):  # in the log and on the terminal
            print(exc, file=stream)
        sys.exit(1)
