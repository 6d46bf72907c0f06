"""What every block of variables shares: the results read once (`Context`) and the collector of keys, values and
lineage records (`Collector`), which refuses an empty value, a key defined twice and a key that clashes with a
longer or shorter one."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from timecourse_meta.core import config as config_mod
from timecourse_meta.core import review
from timecourse_meta.core.errors import EngineError
from timecourse_meta.data import dictionary as dictionary_mod
from timecourse_meta.data import harmonise
from timecourse_meta.manuscript.variables.layout import ResultsFiles, results_files
from timecourse_meta.report import tables

log = logging.getLogger(__name__)


class VariablesError(EngineError, ValueError):
    """A results file cannot be read as expected."""


@dataclass
class Variables:
    values: dict                       # nested mapping (Quarto _variables.yml)
    lineage: dict                      # flat key -> record
    priors: pd.DataFrame               # the prior table (priors.md)

    def flat(self) -> dict[str, str]:
        out: dict[str, str] = {}

        def walk(prefix, node):
            for k, v in node.items():
                key = f"{prefix}.{k}" if prefix else str(k)
                if isinstance(v, Mapping):
                    walk(key, v)
                else:
                    out[key] = v
        walk("", self.values)
        return out


class Collector:
    """Flat key -> value and key -> lineage record; `nested()` gives the mapping of _variables.yml."""

    def __init__(self, rel):
        self.flat: dict[str, str] = {}
        self.lineage: dict[str, dict] = {}
        self._rel = rel

    def put(self, keys: str | Sequence[str], value: str, *, kind: str, files: Sequence = (),
            raw_rows: Sequence[Mapping] = (), config_key: str | None = None, note: str | None = None) -> None:
        if not isinstance(value, str) or not value.strip():
            raise VariablesError(f"variable {keys!r}: empty or non-text value {value!r}")
        record: dict[str, Any] = {"kind": kind,
                                  "results_file": list(dict.fromkeys(self._rel(f) for f in files))}
        if raw_rows:
            record["raw_rows"] = [dict(r) for r in raw_rows]
        if config_key:
            record["config_key"] = config_key
        if note:
            record["note"] = note
        for key in ([keys] if isinstance(keys, str) else keys):
            if key in self.flat:
                raise VariablesError(f"variable {key!r} defined twice")
            self.flat[key] = value
            self.lineage[key] = record

    def nested(self) -> dict:
        out: dict = {}
        for key, value in self.flat.items():
            node = out
            parts = key.split(".")
            for p in parts[:-1]:
                node = node.setdefault(p, {})
                if not isinstance(node, dict):
                    raise VariablesError(f"variable {key!r} clashes with a shorter key")
            if parts[-1] in node:
                raise VariablesError(f"variable {key!r} clashes with a longer key")
            node[parts[-1]] = value
        return out


@dataclass
class Context:
    cfg: dict
    files: ResultsFiles
    dictionary: dict
    arms: review.Arms
    vocabulary: review.Vocabulary
    studies: pd.DataFrame
    raw: pd.DataFrame
    table: pd.DataFrame
    coverage: pd.DataFrame
    appraisal: pd.DataFrame
    sets: dict
    labels: dict
    raw_index: dict            # outcomes-sheet row_id -> {row_id, source_url, locator}

    def raw_rows_for(self, analysis_ids: Sequence[str] = (), frame: pd.DataFrame | None = None) -> list[dict]:
        """Raw rows behind analysis-table rows (by analysis_id, or the rows of `frame`)."""
        if frame is None:
            ids = {str(a) for a in analysis_ids}
            frame = self.table[self.table["analysis_id"].astype(str).isin(ids)]
        out, seen = [], set()
        for value in frame["raw_row_ids"].dropna().astype(str):
            for rid in (v.strip() for v in value.split(";")):
                if rid and rid not in seen:
                    seen.add(rid)
                    out.append(self.raw_index.get(rid, {"row_id": rid}))
        return out

    def study_rows(self, ids: Sequence[str]) -> list[dict]:
        part = self.studies[self.studies["study_id"].isin(list(ids))]
        return [{"row_id": f"studies:{r['study_id']}", "source_url": r.get("source_url", ""),
                 "locator": r.get("locator", "")} for r in part.to_dict("records")]

    def set_name(self, study_set: str) -> str:
        """The study set inside a sentence (config `review.study_sets`)."""
        return review.set_name(self.cfg, study_set)

    def outcomes(self) -> list[str]:
        """Continuous then binary outcomes, as configured."""
        return list(self.cfg["outcomes"]) + list(self.cfg["binary_outcomes"])


def read_csv(path: Path, **kwargs) -> pd.DataFrame | None:
    """The results file, or None (with a warning in the log) when the step that writes it made none."""
    if not Path(path).is_file():
        log.warning("results file missing: %s", path)
        return None
    return pd.read_csv(path, **kwargs)


def load_context(config_yml: str | Path, results_dir: str | Path, root: str | Path) -> Context:
    cfg = config_mod.load(config_yml)
    files = results_files(cfg, results_dir, root)
    files.config = Path(config_yml)
    text = dict(dtype=str, keep_default_na=False)
    studies = pd.read_csv(files.studies, **text)
    raw = pd.read_csv(files.outcomes, **text)
    table = pd.read_csv(files.analysis_table)
    table["poolable"] = table["poolable"].astype(str).str.lower().isin(["true", "1", "yes"])
    appraisal = pd.read_csv(files.appraisal, **text)
    coverage = pd.read_csv(files.coverage, dtype={"study_ids": str, "visit_months": str})
    raw_index = {r["row_id"]: {"row_id": r["row_id"], "source_url": r.get("source_url", ""),
                               "locator": r.get("locator", "")} for r in raw.to_dict("records")}
    return Context(cfg=cfg, files=files, dictionary=dictionary_mod.load(files.dictionary), arms=review.arms(cfg),
                   vocabulary=review.load_vocabulary(files.vocabulary), studies=studies, raw=raw, table=table,
                   coverage=coverage, appraisal=appraisal, sets=harmonise.study_sets(studies),
                   labels=tables.study_labels(studies), raw_index=raw_index)
