"""The manuscript's numbers: every `{{< var key >}}` of manuscript/index.qmd, built from the results files, with
the lineage of each (results file -> harmonised rows -> raw extraction rows with their source URL and locator).

`build_variables(config_yml, results_dir, root)` reads the resolved config and the results files listed by
`results_files` (the Snakemake rule's inputs are exactly that list) and returns a `Variables` object: `values`
(nested mapping, as Quarto's `_variables.yml`), `lineage` (flat key -> record) and `priors` (the prior table).
`write_variables` writes `_variables.yml`, `lineage.json` and `priors.md`, each atomically.

The manuscript step (end of this module): `manuscript_sources(qmd)` lists the files index.qmd includes or shows
(the Snakemake rule's exact inputs), `asset_map`/`stage_assets` copy the main and the other study set's figures and
tables to `results/manuscript/main/` and `results/manuscript/other/` (so config `main_study_set` chooses the set
without editing the .qmd), and `run_manuscript` lints the .qmd for hand-typed numbers and renders it.

Every number is formatted by `timecourse_meta.report.numbers` (decimals from `sig_digits(unit)`; probabilities never 0 or 1;
Unicode minus). Thin evidence gives words, never a blank or a crash: "not estimable (single study)", "no study in
this set reports a change from baseline", "not analysed (no model results)".

Keys (S = a study set of config `study_sets`; the blocks `main` and `other` repeat the block of the main study set
and of the first other study set, so index.qmd does not name a set; `other` is the main set when only one set is
configured):

* `main.*`, `other.*`, `sets.S.*`
  - `id`, `name`, `n_studies`, `n_patients` (MSCT + control), `n_msct`, `n_control`, `n_rct`, `n_single_arm`,
    `n_case_series`, `n_cohort`, `designs` (e.g. "1 randomised controlled trial, 3 single-arm studies"),
    `study_list` ("Gu 2014, Ranjbar 2022, ... and Deng 2017")
  - `n_outcomes` (continuous outcomes configured), `n_outcomes_data` (with a change from baseline at the key visit),
    `n_outcomes_pooled` (>= 2 studies at the key visit), `n_outcomes_single` (1 study), `n_outcomes_none`
  - `diag.n_models`, `diag.n_fitted`, `diag.n_passed`, `diag.n_not_fitted`, `diag.max_rhat`, `diag.min_ess_bulk`,
    `diag.min_ess_tail`, `diag.divergences`, `diag.min_bfmi`
  - `claims.n`, `claims.supported`, `claims.contradicted`, `claims.not_assessable`
  - per continuous outcome O (config `outcomes`), at its key visit (the forest plot's and summary-of-findings
    table's visit, `results/tables/S/key_visits/O.csv`; numbers identical to that table's, through
    `figure_data.finding`): `O.label`, `O.unit` (display unit; "%" = percent change of the mean for log-scale
    outcomes), `O.visit`, `O.visit_text`, `O.n_studies`, `O.n_patients`, `O.studies_total` (studies with
    poolable rows at any visit), `O.status`, `O.change` (pooled: posterior median and 95% CrI; one study: its own
    change and 95% CI), `O.prediction` (95% prediction interval for a new study), `O.p_improvement`, `O.tau`
    (between-study SD with its 95% CrI), `O.tau_note`, `O.summary` (one honest phrase with all of these)
  - per binary outcome O (config `binary_outcomes`), at the visit with most studies (ties: the later):
    `O.label`, `O.visit`, `O.visit_text`, `O.n_studies`, `O.n_patients`, `O.status`, `O.proportion`,
    `O.prediction`, `O.tau` (logit scale), `O.summary`
* `methods.*` (from the resolved config, so editing config.yaml edits the methods section): `main_set`,
  `main_set_name`, `other_set_name`, `study_sets`, `n_study_sets`, `r`, `r_sensitivity`, `visit_grid`,
  `time_course`, `time_course_alternatives`, `time_course_description`, `loo` (a sentence),
  `rw_reference_months`, `within_structure`, `within_prior`,
  `between_structure`, `between_prior`, `tau_family`, `chains`, `draws`, `tune`, `total_draws`, `target_accept`,
  `seed`, `max_rhat`, `min_ess_bulk`, `min_ess_tail`, `max_divergences`, `min_bfmi`, `n_outcomes`,
  `n_binary_outcomes`, and `priors.O.{delta_sd,step_sd,tau_scale,baseline_sd,text}` (continuous) /
  `priors.O.{mu_sd,tau_scale,text}` (binary)
* `appraisal.*`: `n_studies`, `n_items`, `n_not_judged` (unclear or not reported), `checklists`

Lineage record (render.load_lineage reads it): `results_file` (list of paths relative to the project root),
`raw_rows` (list of {row_id, source_url, locator}; row ids of the outcomes sheet, `studies:<study_id>` for the
studies sheet, `appraisal:<study_id>:<item_id>` for the appraisal sheet), `kind` (`data`: computed from
extracted rows; `model`: a model quantity (its raw rows: every row the model of that outcome and set uses);
`derived`: a count of outcomes; `config`; `diagnostics`; `claims`), and `config_key` for config values.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import yaml

from timecourse_meta.core import atomic
from timecourse_meta.report import between_arm
from timecourse_meta.core import config as config_mod
from timecourse_meta.data import dictionary as dictionary_mod
from timecourse_meta.report import figure_data
from timecourse_meta.data import harmonise
from timecourse_meta.data import linkage
from timecourse_meta.report import tables
from timecourse_meta.report.figure_data import DISPLAY_UNITS, display_unit
from timecourse_meta.report.numbers import (fmt_count, fmt_estimate, fmt_interval, fmt_number, fmt_probability, sig_digits)
from timecourse_meta.core.errors import EngineError

log = logging.getLogger(__name__)

#: How the manuscript names a study set (unknown sets: the id with spaces).
SET_NAMES = {
    "review_2023": "the reconstructed study set of the 2023 review",
    "all_candidates": "all candidate studies",
}
#: Canonical unit (outcome dictionary) -> unit as printed.
DESIGN_WORDS = {  # design -> (singular, plural)
    "rct": ("randomised controlled trial", "randomised controlled trials"),
    "single_arm": ("single-arm study", "single-arm studies"),
    "case_series": ("case series", "case series"),
    "cohort": ("cohort study", "cohort studies"),
}
TIME_COURSE_WORDS = {"random_walk": "random walk", "piecewise_linear": "piecewise-linear", "emax": "Emax"}
STRUCTURE_WORDS = {"cs": "compound symmetric", "ar1": "first-order autoregressive"}
TAU_FAMILY_WORDS = {"half_normal": "half-normal", "half_cauchy": "half-Cauchy",
                    "half_student_t": "half-Student-t", "exponential": "exponential"}

REPORT_RULE_WORDS = {
    "most_complete_per_visit": ("for each outcome and visit, the report of a patient group with the most patients "
                                "at that visit is used and the group's other reports are left out"),
    "one_report_per_group": ("for each outcome, the single report of a patient group with the most complete data "
                             "across all visits is used and the group's other reports are left out"),
}
NO_DATA = "no study in this set reports a change from baseline"
NOT_ANALYSED = "not analysed (no model results)"
SINGLE = "not estimable (single study)"
NONE = "not estimable (no data)"
LEVEL = 95


class VariablesError(EngineError, ValueError):
    """A results file cannot be read as expected."""


# ------------------------------------------------------------------------------------------------- layout

@dataclass
class ResultsFiles:
    """Every results file the variables are built from (paths as given: relative to the working directory)."""

    config: Path
    dictionary: Path
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

    def all(self) -> list[str]:
        """The files in a stable order (the Snakemake rule's inputs)."""
        paths = [self.config, self.dictionary, self.studies, self.outcomes, self.appraisal, self.warnings,
                 self.analysis_table, self.coverage]
        for mapping in (self.summaries, self.diagnostics, self.key_visits, self.claims):
            paths += list(mapping.values())
        return [str(p) for p in paths]


def study_set_aliases(cfg: Mapping) -> dict[str, str]:
    """{'main': main set, 'other': first other set (the main set when there is none)}."""
    main = cfg["main_study_set"]
    others = [s for s in cfg["study_sets"] if s != main]
    return {"main": main, "other": others[0] if others else main}


def results_files(cfg: Mapping, results_dir: str | Path = "results", root: str | Path = ".") -> ResultsFiles:
    """The results layout for a resolved config (the dictionary path is the config's, relative to `root`)."""
    r, root = Path(results_dir), Path(root)
    files = ResultsFiles(
        config=r / "config" / "resolved_config.yaml",
        dictionary=root / cfg["data"]["outcome_dictionary"],
        studies=r / "validated" / "studies.csv",
        outcomes=r / "validated" / "outcomes.csv",
        appraisal=r / "validated" / "appraisal.csv",
        warnings=r / "validated" / "warnings.csv",
        analysis_table=r / "harmonised" / "analysis_table.csv",
        coverage=r / "harmonised" / "coverage.csv",
    )
    for s in cfg["study_sets"]:
        for o in list(cfg["outcomes"]) + list(cfg["binary_outcomes"]):
            files.summaries[(s, o)] = r / "models" / s / o / "summary.csv"
            files.diagnostics[(s, o)] = r / "models" / s / o / "diagnostics.csv"
        for o in cfg["outcomes"]:
            files.key_visits[(s, o)] = r / "tables" / s / "key_visits" / f"{o}.csv"
        files.claims[s] = r / "tables" / s / "claims_check.csv"
    return files


def variables_inputs(cfg: Mapping, results_dir: str | Path = "results", root: str | Path = ".") -> list[str]:
    """Exactly the files `build_variables` reads, for the Snakemake rule."""
    return results_files(cfg, results_dir, root).all()


# ----------------------------------------------------------------------------------------------- helpers

def _finite(x: Any) -> bool:
    try:
        return x is not None and not isinstance(x, bool) and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def fmt_config_number(x: Any) -> str:
    """A config value as written (0.9 -> "0.9", 1000 -> "1,000", 20230301 as an id: use fmt_number(x, 0))."""
    if isinstance(x, bool) or not _finite(x):
        raise VariablesError(f"expected a number, got {x!r}")
    v = float(x)
    if v.is_integer():
        return fmt_count(abs(int(v))) if v >= 0 else fmt_number(v, 0)
    for digits in range(1, 7):
        if round(v, digits) == v:
            return fmt_number(v, digits)
    return fmt_number(v, 6)


def join_words(items: Sequence[str], conjunction: str = "and") -> str:
    items = [str(i) for i in items]
    if not items:
        return "none"
    if len(items) == 1:
        return items[0]
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def unit_digits(spec) -> int:
    """Decimals of an outcome's change on its display scale (percent changes: whole percent)."""
    if spec.analysis_scale in ("log", "logit"):
        return sig_digits("%")
    return sig_digits(spec.canonical_unit)


def visit_number(t: float) -> str:
    return fmt_number(t, 0 if abs(t - round(t)) < 1e-6 else 1)


def visit_text(t: float) -> str:
    s = visit_number(t)
    return f"{s} month" if s == "1" else f"{s} months"


def _with_unit(text: str, unit: str) -> str:
    return f"{text}%" if unit == "%" else (f"{text} {unit}" if unit else text)


def fmt_change(est, lo, hi, digits: int, unit: str, interval: str = "CrI") -> str:
    """An estimate with its interval: "−7.8 (95% CrI −10.1 to −5.0)"; percent (`unit` "%"):
    "−39% (95% CrI −55% to −18%)"; without bounds: "−8.0 (no interval)"."""
    if not (_finite(lo) and _finite(hi)):
        return f"{_with_unit(fmt_number(est, digits), '%' if unit == '%' else '')} (no interval)"
    if unit == "%":
        if not float(lo) <= float(est) <= float(hi):
            raise VariablesError(f"estimate {est!r} outside its interval [{lo!r}, {hi!r}]")
        return (f"{fmt_number(est, digits)}% ({LEVEL}% {interval} {fmt_number(lo, digits)}% to "
                f"{fmt_number(hi, digits)}%)")
    return fmt_estimate(est, lo, hi, digits, level=LEVEL, interval=interval)


def fmt_range(lo, hi, digits: int, unit: str) -> str:
    if unit == "%":
        return f"{fmt_number(lo, digits)}% to {fmt_number(hi, digits)}%"
    return fmt_interval(lo, hi, digits)


# ------------------------------------------------------------------------------------------------ builder

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


class _Collector:
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
class _Context:
    cfg: dict
    files: ResultsFiles
    dictionary: dict
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


def _read_csv(path: Path, **kwargs) -> pd.DataFrame | None:
    if not Path(path).is_file():
        log.warning("results file missing: %s", path)
        return None
    return pd.read_csv(path, **kwargs)


def _context(config_yml: str | Path, results_dir: str | Path, root: str | Path) -> _Context:
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
    return _Context(cfg=cfg, files=files, dictionary=dictionary_mod.load(files.dictionary), studies=studies,
                    raw=raw, table=table, coverage=coverage, appraisal=appraisal,
                    sets=harmonise.study_sets(studies), labels=tables.study_labels(studies), raw_index=raw_index)


# ------------------------------------------------------------------------------------------- study sets

def _set_name(s: str) -> str:
    return SET_NAMES.get(s, s.replace("_", " "))


def _put_set(c: _Collector, ctx: _Context, s: str, prefixes: list[str]) -> None:
    ids = ctx.sets.get(s, [])
    part = ctx.studies[ctx.studies["study_id"].isin(ids)]
    rows = ctx.study_rows(ids)
    files = [ctx.files.studies]

    def put(suffix, value, **kw):
        c.put([f"{p}.{suffix}" for p in prefixes], value, **kw)

    put("id", s, kind="config", files=[ctx.files.config], config_key="study_sets")
    put("name", _set_name(s), kind="config", files=[ctx.files.config], config_key="study_sets")
    put("name_capital", _set_name(s)[:1].upper() + _set_name(s)[1:], kind="config", files=[ctx.files.config],
        config_key="study_sets")
    n_msct = pd.to_numeric(part["n_msct"], errors="coerce").fillna(0).sum()
    n_control = pd.to_numeric(part["n_control"], errors="coerce").fillna(0).sum()
    put("n_studies", fmt_count(len(part)), kind="data", files=files, raw_rows=rows)
    put("n_msct", fmt_count(n_msct), kind="data", files=files, raw_rows=rows)
    put("n_control", fmt_count(n_control), kind="data", files=files, raw_rows=rows)
    counts = linkage.set_counts(ctx.studies, ids)
    put("n_patients", fmt_count(counts["n_patients_unique"]), kind="data", files=files, raw_rows=rows)
    put("n_unique_patients", fmt_count(counts["n_patients_unique"]), kind="data", files=files, raw_rows=rows)
    put("n_groups", fmt_count(counts["n_studies"]), kind="data", files=files, raw_rows=rows)
    put("n_reports", fmt_count(counts["n_reports"]), kind="data", files=files, raw_rows=rows)
    groups = linkage.study_groups(ctx.studies, ids)
    shared = groups[groups["n_reports"] > 1]
    if shared.empty:
        overlap = "no two reports of this set describe the same patients"
    else:
        overlap = "; ".join(
            f"the {fmt_count(int(g['n_reports']))} reports of the {g['label']} programme ({g['reports']}) were "
            f"counted as one patient group of {fmt_count(int(g['patients']))} patients, its largest report"
            for g in shared.to_dict("records"))
    put("overlap_sentence", overlap, kind="data", files=files, raw_rows=rows)
    designs = part["design"].value_counts()
    for design in DESIGN_WORDS:
        sub = part[part["design"] == design]
        put(f"n_{design}", fmt_count(len(sub)), kind="data", files=files,
            raw_rows=ctx.study_rows(sub["study_id"].tolist()))
    words = []
    order = {d: i for i, d in enumerate(DESIGN_WORDS)}
    for design, count in sorted(designs.items(), key=lambda kv: (-kv[1], order.get(kv[0], len(order)), kv[0])):
        one, many = DESIGN_WORDS.get(design, (design.replace("_", " "), design.replace("_", " ")))
        words.append(f"{fmt_count(count)} {one if count == 1 else many}")
    put("designs", join_words(words) if words else "no studies", kind="data", files=files, raw_rows=rows)
    put("study_list", join_words([ctx.labels[i] for i in part["study_id"]]) if len(part) else "no studies",
        kind="data", files=files, raw_rows=rows)


# ------------------------------------------------------------------------------------- continuous outcome

def _likelihood_rows(ctx: _Context, s: str, outcome: str) -> pd.DataFrame:
    t = ctx.table
    return t[(t["outcome"] == outcome) & (t["arm"] == "MSCT") & t["poolable"]
             & (t["study_id"].isin(ctx.sets.get(s, [])))]


def _key_visit(path: Path) -> float | None:
    frame = _read_csv(path)
    if frame is None or frame.empty or "key_visit_months" not in frame:
        return None
    v = frame["key_visit_months"].iloc[0]
    return float(v) if _finite(v) else None


def _studies_total(ctx: _Context, s: str, outcome: str) -> int:
    cov = ctx.coverage
    hit = cov[(cov["study_set"] == s) & (cov["outcome"] == outcome)]
    return int(hit["studies"].iloc[0]) if len(hit) else 0


def _continuous(c: _Collector, ctx: _Context, s: str, outcome: str, prefixes: list[str]) -> str:
    """Put one continuous outcome's keys; return 'pooled', 'single' or 'none' (for the set's counts)."""
    spec = ctx.dictionary[outcome]
    unit, digits = display_unit(spec), unit_digits(spec)
    summary_path, key_path = ctx.files.summaries[(s, outcome)], ctx.files.key_visits[(s, outcome)]
    summary = _read_csv(summary_path)
    visit = _key_visit(key_path)
    ids = ctx.sets.get(s, [])
    changes = figure_data.study_changes(ctx.table[ctx.table["outcome"] == outcome], ids, spec, ctx.labels, summary)
    rows_all = _likelihood_rows(ctx, s, outcome)
    raw_all = ctx.raw_rows_for(frame=rows_all)
    files_model = [summary_path, key_path, ctx.files.analysis_table]

    def put(suffix, value, kind="data", files=files_model, raw_rows=raw_all, **kw):
        c.put([f"{p}.{outcome}.{suffix}" for p in prefixes], value, kind=kind, files=files, raw_rows=raw_rows, **kw)

    put("label", spec.label, kind="config", files=[ctx.files.dictionary], raw_rows=())
    put("unit", "% change of the mean" if unit == "%" else unit, kind="config", files=[ctx.files.dictionary],
        raw_rows=())
    put("studies_total", fmt_count(_studies_total(ctx, s, outcome)), files=[ctx.files.coverage])

    if summary is None:
        for suffix in ("visit", "visit_text", "n_studies", "n_patients", "change", "prediction", "p_improvement",
                       "tau", "tau_note", "status", "summary"):
            put(suffix, NOT_ANALYSED, kind="model", files=[summary_path, key_path], raw_rows=())
        return "none"

    row = None
    if visit is not None:
        row = figure_data.finding(summary, changes, spec, visit)
    here = figure_data.at_visit(changes, visit) if visit is not None else changes.iloc[0:0]
    k = int(row["n_studies"]) if row is not None else 0
    n_pat = row["n_patients"] if row is not None and _finite(row["n_patients"]) else 0

    if visit is None:
        put("visit", "not applicable (no data)", files=[key_path])
        put("visit_text", "no follow-up visit", files=[key_path])
    else:
        put("visit", visit_number(visit), files=[key_path])
        put("visit_text", visit_text(visit), files=[key_path])
    put("n_studies", fmt_count(k), raw_rows=ctx.raw_rows_for(here["analysis_ids"].tolist()) if k else ())
    put("n_patients", fmt_count(int(round(float(n_pat)))),
        raw_rows=ctx.raw_rows_for(here["analysis_ids"].tolist()) if k else ())

    evidence = str(row.get("evidence", "")) if row is not None else ""
    pooled = evidence == "pooled" and _finite(row.get("estimate"))
    if pooled or (evidence in ("interpolated", "prior_dominated") and _finite(row.get("estimate"))):
        result = "pooled" if pooled else "none"
        change = fmt_change(row["estimate"], row["lower"], row["upper"], digits, unit)
        prediction = (fmt_range(row["pi_lower"], row["pi_upper"], digits, unit) if _finite(row.get("pi_lower"))
                      else "not estimable")
        p = fmt_probability(row["p_improvement"]) if _finite(row.get("p_improvement")) else "not estimable"
        tau_digits = sig_digits("log ratio") if spec.analysis_scale == "log" else digits
        if _finite(row.get("tau")):
            tau = fmt_estimate(row["tau"], row["tau_lower"], row["tau_upper"], tau_digits, level=LEVEL)
            if spec.analysis_scale == "log":
                tau += " on the log scale"
            km = row.get("n_studies_model")
            km = int(km) if _finite(km) else k
            tau_note = (f"{fmt_count(km)} studies in the model: the posterior of \u03c4 mostly reflects its prior"
                        if km < 5 else f"{fmt_count(km)} studies in the model")
        else:
            tau, tau_note = "not estimable", "no between-study SD in the model"
        label = str(row.get("label") or "")
        status = label
        head = change if unit == "%" else change.replace(" (", f" {unit} (", 1)
        where = "" if "month" in label else f" at {visit_text(visit)}"
        summary_text = (f"{head[:-1]}; {LEVEL}% prediction interval {prediction}; P(improvement) {p}){where}, "
                        f"{label}")
        put("change", change, kind="model")
        put("prediction", prediction, kind="model")
        put("p_improvement", p, kind="model")
        put("tau", tau, kind="model")
        put("tau_note", tau_note, kind="model")
    elif k == 1:
        result = "single"
        r = here.iloc[0]
        raw_here = ctx.raw_rows_for(str(r["analysis_ids"]).split(";"))
        files_here = [key_path, ctx.files.analysis_table]
        if _finite(row.get("estimate")):
            change = fmt_change(row["estimate"], row["lower"], row["upper"], digits, unit, interval="CI")
        else:
            change = "not reported with a usable estimate"
        status = f"{r['label']}'s own estimate, not pooled"
        head = change if unit == "%" else change.replace(" (", f" {unit} (", 1)
        summary_text = (f"{head} at {visit_text(visit)}, {r['label']}'s own estimate "
                        f"({fmt_count(int(round(float(n_pat))))} patients)")
        put("change", change, files=files_here, raw_rows=raw_here)
        for suffix in ("prediction", "p_improvement", "tau"):
            put(suffix, SINGLE, kind="model")
        put("tau_note", SINGLE, kind="model")
    elif k >= 2:  # several studies near the visit, but the model has no pooled estimate there
        result = "none"
        status = f"{fmt_count(k)} studies at this visit, no pooled estimate"
        summary_text = (f"reported by {fmt_count(k)} studies at {visit_text(visit)}, but the model gives no pooled "
                        "estimate at this visit")
        put("change", "not estimable (no pooled estimate at this visit)", kind="model")
        for suffix in ("prediction", "p_improvement", "tau", "tau_note"):
            put(suffix, "not estimable (no pooled estimate at this visit)", kind="model")
    else:
        result = "none"
        status = NO_DATA
        summary_text = NO_DATA
        put("change", NO_DATA)
        for suffix in ("prediction", "p_improvement", "tau"):
            put(suffix, NONE, kind="model")
        put("tau_note", NONE, kind="model")
    put("status", status)
    put("summary", summary_text, kind="model" if pooled else "data",
        raw_rows=raw_all if result != "single" else ctx.raw_rows_for(str(here.iloc[0]["analysis_ids"]).split(";")))
    return result


# ----------------------------------------------------------------------------------------- binary outcome

def _binary(c: _Collector, ctx: _Context, s: str, outcome: str, prefixes: list[str]) -> None:
    spec = ctx.dictionary[outcome]
    summary_path = ctx.files.summaries[(s, outcome)]
    summary = _read_csv(summary_path, dtype={"study_id": str})
    rows_all = _likelihood_rows(ctx, s, outcome)
    raw_all = ctx.raw_rows_for(frame=rows_all)

    def put(suffix, value, kind="model", files=(summary_path, ctx.files.analysis_table), raw_rows=raw_all):
        c.put([f"{p}.{outcome}.{suffix}" for p in prefixes], value, kind=kind, files=files, raw_rows=raw_rows)

    put("label", spec.label, kind="config", files=[ctx.files.dictionary], raw_rows=())
    if summary is None:
        for suffix in ("visit", "visit_text", "n_studies", "n_patients", "status", "proportion", "prediction", "tau",
                       "summary"):
            put(suffix, NOT_ANALYSED, raw_rows=())
        return
    prop = summary[(summary["quantity"] == "proportion")]
    if prop.empty:
        put("visit", "not applicable (no data)")
        put("visit_text", "no follow-up visit")
        put("n_studies", "0")
        put("n_patients", "0")
        for suffix in ("status", "proportion", "summary"):
            put(suffix, "no study in this set reports it")
        put("prediction", NONE)
        put("tau", NONE)
        return
    pct = sig_digits("%")
    events = {}
    obs = summary[summary["quantity"] == "study_observed"]
    for r in obs.itertuples():
        events[(str(r.study_id), float(r.visit_months) if _finite(r.visit_months) else None)] = str(r.note or "")
    parts, best = [], None
    durations = sorted({float(v) for v in prop["visit_months"] if _finite(v)})
    for t in durations + ([None] if prop["visit_months"].isna().any() else []):
        at = prop[prop["visit_months"].isna()] if t is None else prop[(prop["visit_months"] - t).abs() < 1e-6]
        when = "at a follow-up duration not reported" if t is None else f"at {visit_text(t)}"
        pooled_rows = at[at["study_id"].isna()]
        if len(pooled_rows):
            r = pooled_rows.iloc[0]
            pred = summary[(summary["quantity"] == "prediction") & ((summary["visit_months"] - t).abs() < 1e-6)]
            text = fmt_change(100 * r["median"], 100 * r["lower"], 100 * r["upper"], pct, "%")
            if len(pred):
                text = (f"{text[:-1]}; {LEVEL}% prediction interval "
                        f"{fmt_range(100 * pred.iloc[0]['lower'], 100 * pred.iloc[0]['upper'], pct, '%')})")
            label = str(r["label"])
            parts.append(f"{text}, {label}" if "month" in label else f"{text} {when}, {label}")
            cand = (int(r["n_studies"]), t or 0.0, text, r)
        else:
            for r in at.sort_values("n_patients", ascending=False).itertuples():
                label = ctx.labels.get(r.study_id, r.study_id)
                note = events.get((str(r.study_id), t), str(r.note or ""))
                count = note.split(";")[0] if "/" in note.split(";")[0] else ""
                text = fmt_change(100 * r.median, 100 * r.lower, 100 * r.upper, pct, "%", interval="CI")
                text = text.replace(f"({LEVEL}% CI", f"({count}; exact {LEVEL}% CI" if count else f"({LEVEL}% CI", 1)
                parts.append(f"{text} {when}, {label}'s own estimate")
            cand = (1, t or 0.0, parts[-1], at.iloc[0])
        if best is None or cand[:2] > best[:2]:
            best = cand
    k, t_best, text_best, r_best = best
    put("visit", visit_number(t_best) if t_best else "not reported")
    put("visit_text", visit_text(t_best) if t_best else "a follow-up duration not reported")
    put("n_studies", fmt_count(k), kind="data")
    n_pat = int(r_best["n_patients"]) if _finite(r_best["n_patients"]) else 0
    put("n_patients", fmt_count(n_pat), kind="data")
    put("status", str(r_best["label"]) if k >= 2 else "each study's own estimate, per follow-up duration")
    put("proportion", text_best.split(" at ")[0] if " at " in text_best else text_best)
    pred = summary[summary["quantity"] == "prediction"]
    put("prediction", fmt_range(100 * pred.iloc[0]["lower"], 100 * pred.iloc[0]["upper"], pct, "%")
        if len(pred) else SINGLE)
    tau_row = summary[summary["quantity"] == "tau"]
    put("tau", fmt_estimate(tau_row.iloc[0]["median"], tau_row.iloc[0]["lower"], tau_row.iloc[0]["upper"],
                            sig_digits("log ratio"), level=LEVEL) + " on the logit scale"
        if len(tau_row) else SINGLE)
    put("summary", "; ".join(parts))


# ---------------------------------------------------------------------------------- randomised comparison

NO_CONTROLLED = "no controlled study in this set"
NOT_IN_TRIAL = "not reported by the controlled study"


def _rct(c: _Collector, ctx: _Context, s: str, prefixes: list[str]) -> None:
    """The randomised comparison of the set's controlled studies (timecourse_meta.report.between_arm): per outcome the
    primary between-arm difference, the other estimand, both arms' changes, and a count of outcomes whose
    primary difference has a 95% CI that excludes no difference."""
    ids = ctx.sets.get(s, [])
    part = ctx.studies[ctx.studies["study_id"].isin(ids)]
    controlled = part[pd.to_numeric(part["n_control"], errors="coerce").fillna(0) > 0]
    files = [ctx.files.studies]

    def put(suffix, value, kind="data", files=files, raw_rows=()):
        c.put([f"{p}.rct.{suffix}" for p in prefixes], value, kind=kind, files=files, raw_rows=raw_rows)

    rows = ctx.study_rows(controlled["study_id"].tolist())
    put("n_studies", fmt_count(len(controlled)), raw_rows=rows)
    put("study", join_words([ctx.labels[i] for i in controlled["study_id"]]) if len(controlled) else NO_CONTROLLED,
        raw_rows=rows)
    first = controlled.iloc[0] if len(controlled) else None
    for key, column in (("n_msct", "n_msct"), ("n_control", "n_control")):
        put(key, fmt_count(int(float(first[column]))) if first is not None else NO_CONTROLLED, raw_rows=rows)
    put("design", str(first["design_detail"]) if first is not None and str(first.get("design_detail", "")).strip()
        else (NO_CONTROLLED if first is None else "controlled"), raw_rows=rows)
    outcomes = list(ctx.cfg["outcomes"]) + list(ctx.cfg["binary_outcomes"])
    n_with, clear = 0, []
    for outcome in outcomes:
        spec = ctx.dictionary[outcome]
        path = ctx.files.summaries[(s, outcome)]
        summary = _read_csv(path, dtype={"study_id": str})
        recs = between_arm.comparisons(summary, spec, ctx.table) if summary is not None else []
        recs = [r for r in recs if first is not None and r["study_id"] == first["study_id"]]
        keys = ("primary", "primary_estimand", "follow_up_means", "change_scores", "msct", "control",
                "visit_text", "summary")
        if not recs:
            for k in keys:
                put(f"{outcome}.{k}", NOT_IN_TRIAL if first is not None else NO_CONTROLLED, kind="model",
                    files=[path])
            continue
        rec = recs[-1]  # the latest visit with both arms
        n_with += 1
        raw = ctx.raw_rows_for(frame=ctx.table[(ctx.table["outcome"] == outcome)
                                              & (ctx.table["study_id"] == rec["study_id"])])

        def fput(k, v, _o=outcome, _path=path, _raw=raw):
            put(f"{_o}.{k}", v, kind="model", files=[_path, ctx.files.analysis_table], raw_rows=_raw)

        other_name = (between_arm.ESTIMAND_CHANGE if rec["primary_estimand"] == between_arm.ESTIMAND_FOLLOW_UP
                      else between_arm.ESTIMAND_FOLLOW_UP)
        other = rec["change_scores"] if other_name == between_arm.ESTIMAND_CHANGE else rec["follow_up_means"]
        for k in ("primary", "primary_estimand", "follow_up_means", "change_scores", "msct", "control"):
            fput(k, rec[k])
        fput("visit_text", visit_text(rec["visit_months"]))
        unit = ("" if spec.analysis_scale == "log" or spec.kind == "binary"
                else " " + DISPLAY_UNITS.get(spec.canonical_unit, spec.canonical_unit))
        head = rec["primary"].replace(" (", f"{unit} (", 1) if rec["primary"] != between_arm.NOT_REPORTED else \
            rec["primary"]
        what = ("risk difference in percentage points" if spec.kind == "binary"
                else f"from {rec['primary_estimand']}")
        text = f"{head} at {visit_text(rec['visit_months'])} ({what}"
        if spec.kind != "binary" and other != between_arm.NOT_REPORTED:
            text += f"; from {other_name}: {other}"
        text += f"; MSC arm {rec['msct']}, control arm {rec['control']})"
        fput("summary", text)
        lo, hi = rec["primary_lower"], rec["primary_upper"]
        if _finite(lo) and _finite(hi) and (lo > 0 or hi < 0):
            clear.append(spec.label)
    put("n_outcomes", fmt_count(n_with), kind="derived")
    put("n_clear", fmt_count(len(clear)), kind="derived")
    put("clear_list", join_words(clear) if clear else "none", kind="derived")
    if first is None:
        conclusion = NO_CONTROLLED
    elif not clear:
        conclusion = (f"none of the {fmt_count(n_with)} between-arm differences had a 95% confidence interval "
                      "that excluded no difference")
    else:
        conclusion = (f"{fmt_count(len(clear))} of {fmt_count(n_with)} between-arm differences had a 95% "
                      f"confidence interval that excluded no difference ({join_words(clear)})")
    put("conclusion", conclusion, kind="derived")


# ------------------------------------------------------------------------------ set-level: diag & claims

def _diagnostics(c: _Collector, ctx: _Context, s: str, prefixes: list[str]) -> None:
    outcomes = list(ctx.cfg["outcomes"]) + list(ctx.cfg["binary_outcomes"])
    paths = [ctx.files.diagnostics[(s, o)] for o in outcomes]
    fitted = passed = 0
    rhat, ess_b, ess_t, bfmi, div = [], [], [], [], 0
    for path in paths:
        d = _read_csv(path)
        if d is None:
            continue
        params = d[d["kind"] == "parameter"]
        gate = str(d["gate"].iloc[0]) if "gate" in d and len(d) else ("passed" if len(params) else "not sampled")
        if params.empty or gate.startswith("not sampled"):
            continue
        fitted += 1
        passed += int(gate == "passed")
        rhat += pd.to_numeric(params["rhat"], errors="coerce").dropna().tolist()
        ess_b += pd.to_numeric(params["ess_bulk"], errors="coerce").dropna().tolist()
        ess_t += pd.to_numeric(params["ess_tail"], errors="coerce").dropna().tolist()
        sampler = d[d["kind"] == "sampler"]
        div += int(pd.to_numeric(sampler.loc[sampler["parameter"] == "divergences", "value"],
                                 errors="coerce").fillna(0).sum())
        bfmi += pd.to_numeric(sampler.loc[sampler["parameter"].astype(str).str.startswith("e_bfmi"), "value"],
                              errors="coerce").dropna().tolist()

    def put(suffix, value):
        c.put([f"{p}.diag.{suffix}" for p in prefixes], value, kind="diagnostics", files=paths)

    none = "not applicable (no model fitted)"
    put("n_models", fmt_count(len(outcomes)))
    put("n_fitted", fmt_count(fitted))
    put("n_sampled", fmt_count(fitted))
    put("sampled_sentence", "no outcome needed a sampled model" if fitted == 0 else
        f"{fmt_count(fitted)} outcome{'s were' if fitted > 1 else ' was'} estimated by a sampled model, and "
        f"{fmt_count(passed)} passed every convergence check")
    put("n_not_fitted", fmt_count(len(outcomes) - fitted))
    put("n_passed", fmt_count(passed))
    put("max_rhat", fmt_number(max(rhat), 3) if rhat else none)
    put("min_ess_bulk", fmt_count(int(math.floor(min(ess_b)))) if ess_b else none)
    put("min_ess_tail", fmt_count(int(math.floor(min(ess_t)))) if ess_t else none)
    put("divergences", fmt_count(div) if fitted else none)
    put("min_bfmi", fmt_number(min(bfmi), 2) if bfmi else none)


def _claims(c: _Collector, ctx: _Context, s: str, prefixes: list[str]) -> None:
    path = ctx.files.claims[s]
    frame = _read_csv(path, dtype=str, keep_default_na=False)
    counts = {"supported": 0, "contradicted": 0, "not assessable": 0}
    n = 0
    if frame is not None:
        if "level" in frame.columns:
            claim_rows = frame[frame["level"] == "claim"]
            verdicts = claim_rows["verdict"]
        else:
            claim_rows = frame[frame["Claim"].str.strip() != ""]
            verdicts = claim_rows["Verdict"]
        n = len(claim_rows)
        for v in verdicts:
            key = "not assessable" if v.startswith("not assessable") else v
            counts[key] = counts.get(key, 0) + 1

    def put(suffix, value):
        c.put([f"{p}.claims.{suffix}" for p in prefixes], value, kind="claims", files=[path])

    if frame is None:
        for suffix in ("n", "supported", "contradicted", "not_assessable"):
            put(suffix, "not checked (no claims table)")
        return
    put("n", fmt_count(n))
    put("supported", fmt_count(counts["supported"]))
    put("contradicted", fmt_count(counts["contradicted"]))
    put("not_assessable", fmt_count(counts["not assessable"]))


# ------------------------------------------------------------------------------------------------ methods

def _model_modules():
    from timecourse_meta.model import priors as models
    from timecourse_meta.steps import pipeline  # heavy (PyMC/ArviZ): imported only when priors are resolved
    return models, pipeline


PRIOR_SOURCE_WORDS = (("config (outcome)", "config.yaml (this outcome)"),
                      ("config (default)", "config.yaml (default)"),
                      ("outcome dictionary", "outcome dictionary"), ("DEFAULT_BINARY_PRIOR", "package default"),
                      ("unit-free", "package default (unit-free)"), ("data-derived", "data-derived"))


def prior_values(cfg: Mapping, outcome: str, spec) -> dict:
    """The prior scales the model of `outcome` uses, resolved exactly as `models.resolve_priors` does (config
    for the outcome > documented defaults > config default > unit-free/data-derived rule), without the data.
    A data-derived scale is returned as None with its multiplier of the typical per-patient SD s in
    `multipliers`; `sources` says in words where each value came from."""
    models, pipeline = _model_modules()
    settings = pipeline.model_settings(dict(cfg), outcome)
    md = SimpleNamespace(outcome=outcome, kind=spec.kind, analysis_scale=spec.analysis_scale,
                         unit=spec.canonical_unit, reference_sd=float("nan"), priors=spec.priors)
    pri = models.resolve_priors(md, settings)
    pri["multipliers"] = {}
    for k, src in list(pri["sources"].items()):
        if src.startswith("data-derived"):
            pri[k] = None
            pri["multipliers"][k] = models.DATA_DERIVED_MULTIPLIERS[k]
        pri["sources"][k] = next((words for prefix, words in PRIOR_SOURCE_WORDS if src.startswith(prefix)), src)
    return pri


def _prior_number(pri: dict, key: str) -> str:
    """"10", or "0.5 × s" for a data-derived scale (s = the outcome's typical per-patient SD)."""
    v = pri.get(key)
    if v is not None:
        return fmt_config_number(v)
    return f"{fmt_config_number(pri['multipliers'][key])} \u00d7 s"


def _normal(pri: dict, key: str) -> str:
    v = _prior_number(pri, key)
    return f"Normal(0, {v}\u00b2)" if pri.get(key) is not None else f"Normal(0, ({v})\u00b2)"


def _methods(c: _Collector, ctx: _Context) -> pd.DataFrame:
    cfg, cfg_file = ctx.cfg, ctx.files.config
    aliases = study_set_aliases(cfg)

    def put(suffix, value, key, note=None):
        c.put(f"methods.{suffix}", value, kind="config", files=[cfg_file], config_key=key, note=note)

    model, sampling, diag = cfg["model"], cfg["sampling"], cfg["diagnostics"]
    put("main_set", cfg["main_study_set"], "main_study_set")
    put("main_set_name", _set_name(cfg["main_study_set"]), "main_study_set")
    put("other_set_name", _set_name(aliases["other"]), "study_sets")
    sizes = [f"{_set_name(s)} ({fmt_count(len(ctx.sets.get(s, [])))} studies)" for s in cfg["study_sets"]]
    c.put("methods.study_sets", join_words(sizes), kind="data", files=[cfg_file, ctx.files.studies],
          raw_rows=ctx.study_rows(sorted({i for s in cfg["study_sets"] for i in ctx.sets.get(s, [])})),
          config_key="study_sets")
    put("n_study_sets", fmt_count(len(cfg["study_sets"])), "study_sets")
    rule = (cfg.get("reports") or {}).get("rule", "most_complete_per_visit")
    put("report_rule", REPORT_RULE_WORDS.get(rule, rule.replace("_", " ")), "reports.rule")
    put("n_outcomes", fmt_count(len(cfg["outcomes"])), "outcomes")
    put("n_binary_outcomes", fmt_count(len(cfg["binary_outcomes"])), "binary_outcomes")
    h = cfg["harmonisation"]
    put("r", fmt_config_number(h["within_person_correlation"]), "harmonisation.within_person_correlation")
    put("r_sensitivity", join_words([fmt_config_number(v) for v in h["correlation_sensitivity"]]) or "none",
        "harmonisation.correlation_sensitivity")
    put("visit_grid", join_words([fmt_config_number(v) for v in model["visit_grid_months"]]),
        "model.visit_grid_months")
    tc = model["time_course"]
    put("time_course", TIME_COURSE_WORDS.get(tc, tc), "model.time_course")
    alternatives = [TIME_COURSE_WORDS[t] for t in TIME_COURSE_WORDS if t != tc]
    put("time_course_alternatives", join_words(alternatives), "model.time_course")
    words = TIME_COURSE_WORDS.get(tc, tc)
    put("loo", (f"The {words} time course was compared with the {join_words(alternatives)} time courses by "
                "approximate leave-one-out cross-validation (PSIS-LOO) for every outcome with two or more studies"
                if model["compare_time_courses"] else
                f"Alternative time courses ({join_words(alternatives)}) were not compared"),
        "model.compare_time_courses")
    _, pipeline = _model_modules()
    from timecourse_meta.model.model_data import resolved_settings
    rs = resolved_settings(pipeline.model_settings(cfg, cfg["outcomes"][0] if cfg["outcomes"] else "x"))
    ref = fmt_config_number(rs.get("random_walk_reference_months", 3.0))
    c.put("methods.rw_reference_months", ref, kind="config", files=[cfg_file],
          note="timecourse_meta.model.model_data.DEFAULT_SETTINGS (not in config.yaml)")
    descriptions = {
        "random_walk": ("an early response level followed by a continuous-time random walk (Brownian motion) whose "
                        f"steps have a prior SD set per {ref} months, so that sparse visits borrow strength from "
                        "their neighbours"),
        "piecewise_linear": ("linear up to a knot at "
                             f"{fmt_config_number(rs.get('piecewise_knot_months', 3.0))} months and linear, with "
                             "another slope, after it"),
        "emax": ("an Emax curve E t/(ET50 + t) that rises to a plateau, with a log-normal prior on ET50 (median "
                 f"{fmt_config_number(rs.get('emax_et50_median_months', 2.0))} months)"),
    }
    put("time_course_description", descriptions.get(tc, words), "model.time_course")
    for name, key in (("within", "within_study_correlation"), ("between", "between_visit_correlation")):
        block = model[key]
        put(f"{name}_structure", STRUCTURE_WORDS.get(block["structure"], block["structure"]),
            f"model.{key}.structure")
        put(f"{name}_prior", f"Beta({fmt_config_number(block['prior']['alpha'])}, "
                             f"{fmt_config_number(block['prior']['beta'])})", f"model.{key}.prior")
    estimand = model.get("between_arm_estimand", "follow_up_means")
    words = {"follow_up_means": "follow-up means", "change_scores": "change scores"}
    put("between_arm_estimand", words.get(estimand, estimand), "model.between_arm_estimand")
    put("other_estimand", words["change_scores" if estimand == "follow_up_means" else "follow_up_means"],
        "model.between_arm_estimand")
    rule = model.get("time_course_rule", "loo")
    put("time_course_rule",
        ("the time course reported is the configured one unless another converged one predicts better by more "
         "than twice the standard error of the difference in expected log predictive density, and the PSIS-LOO "
         "estimates are reliable (no Pareto k above 0.7)") if rule == "loo" else
        "the configured time course is reported whatever the comparison shows", "model.time_course_rule")
    tol = model.get("binary_time_tolerance_months", 0.5)
    put("binary_tolerance", f"{fmt_config_number(tol)} months", "model.binary_time_tolerance_months")
    logs = [ctx.dictionary[o].label for o in cfg["outcomes"]
            if o in ctx.dictionary and ctx.dictionary[o].analysis_scale == "log"]
    c.put("methods.log_outcomes", join_words(logs) if logs else "none", kind="config",
          files=[ctx.files.dictionary], note="outcome dictionary: analysis_scale log")
    fam = model["heterogeneity_prior"]["family"]
    put("tau_family", TAU_FAMILY_WORDS.get(fam, fam), "model.heterogeneity_prior.family")
    put("chains", fmt_count(sampling["chains"]), "sampling.chains")
    put("draws", fmt_count(sampling["draws"]), "sampling.draws")
    put("tune", fmt_count(sampling["tune"]), "sampling.tune")
    put("total_draws", fmt_count(sampling["chains"] * sampling["draws"]), "sampling.chains, sampling.draws")
    put("target_accept", fmt_config_number(sampling["target_accept"]), "sampling.target_accept")
    put("seed", fmt_number(sampling["seed"], 0), "sampling.seed")
    put("max_rhat", fmt_config_number(diag["max_rhat"]), "diagnostics.max_rhat")
    put("min_ess_bulk", fmt_config_number(diag["min_ess_bulk"]), "diagnostics.min_ess_bulk")
    put("min_ess_tail", fmt_config_number(diag["min_ess_tail"]), "diagnostics.min_ess_tail")
    put("max_divergences", fmt_config_number(diag["max_divergences"]), "diagnostics.max_divergences")
    put("min_bfmi", fmt_config_number(diag["min_bfmi"]), "diagnostics.min_bfmi")

    # priors, per outcome -------------------------------------------------------------------------------
    rows = []
    family = TAU_FAMILY_WORDS.get(fam, fam)
    for outcome in list(cfg["outcomes"]) + list(cfg["binary_outcomes"]):
        spec = ctx.dictionary[outcome]
        pri = prior_values(cfg, outcome, spec)
        files = [cfg_file, ctx.files.dictionary]
        note = "; ".join(f"{k}: {v}" for k, v in pri["sources"].items())

        def pput(suffix, value, _o=outcome, _files=files, _note=note):
            c.put(f"methods.priors.{_o}.{suffix}", value, kind="config", files=_files,
                  config_key=f"model.priors.{_o}", note=_note)

        tau_text = f"{family}(scale {_prior_number(pri, 'tau_scale')})"
        if spec.kind == "binary":
            scale = "logit of the proportion"
            delta, step = f"{_normal(pri, 'mu_sd')} on the logit", "not applicable"
            text = f"logit proportion ~ {_normal(pri, 'mu_sd')}; \u03c4 ~ {tau_text}"
            pput("mu_sd", _prior_number(pri, "mu_sd"))
        else:
            scale = ("log ratio of means" if spec.analysis_scale == "log"
                     else DISPLAY_UNITS.get(spec.canonical_unit, spec.canonical_unit))
            delta = _normal(pri, "delta_sd")
            step = _prior_number(pri, "step_sd")
            text = (f"\u0394 ~ {delta} at the first visit, random-walk step SD {step} per "
                    f"{fmt_config_number(rs.get('random_walk_reference_months', 3.0))} months, "
                    f"\u03c4 ~ {tau_text} ({scale})")
            if pri["multipliers"]:
                text += "; s = the outcome's typical per-patient SD in the data"
            for k in ("delta_sd", "step_sd", "baseline_sd"):
                pput(k, _prior_number(pri, k))
        pput("tau_scale", _prior_number(pri, "tau_scale"))
        pput("text", text)
        rows.append({"Outcome": spec.label, "Scale": scale, "Pooled change \u0394 (first visit)": delta,
                     "Random-walk step SD": step, "Heterogeneity \u03c4": tau_text,
                     "Source": "; ".join(sorted(set(pri["sources"].values())))})
    return pd.DataFrame(rows)


def validation_warning_words(message: str, dictionary: Mapping, sheets: Mapping[str, str]) -> str:
    """A validation warning as a reader reads it: outcome ids as their labels, sheet paths as sheet names."""
    text = re.sub(r" \(config [\w.]+\)", " in the configuration", str(message))
    for path, name in sheets.items():
        text = text.replace(path, name)
    for key in sorted(dictionary, key=len, reverse=True):
        text = text.replace(f"'{key}'", dictionary[key].label)
    return text


def _warnings(c: _Collector, ctx: _Context) -> None:
    """The validation's warnings (plausibility a real study can legitimately break), for the data section."""
    path = ctx.files.warnings
    frame = _read_csv(path, dtype=str, keep_default_na=False)
    frame = frame if frame is not None else pd.DataFrame(columns=["message"])
    raw_dir = str(ctx.cfg["data"].get("raw_dir") or "")
    sheets = {f"{raw_dir}/{n}.csv": f"the {n} sheet" for n in ("studies", "outcomes", "appraisal")} if raw_dir else {}
    words = [validation_warning_words(m, ctx.dictionary, sheets) for m in frame["message"]]
    note = "warnings of the validation step (each names its file, sheet, row and column)"
    c.put("data.n_warnings", fmt_count(len(words)), kind="derived", files=[path], note=note)
    c.put("data.warnings", "; ".join(words) if words else "none", kind="derived", files=[path], note=note)


def _appraisal(c: _Collector, ctx: _Context) -> None:
    a = ctx.appraisal
    rows = [{"row_id": f"appraisal:{r['study_id']}:{r['item_id']}", "source_url": r.get("source_url", ""),
             "locator": r.get("locator", "")} for r in a.to_dict("records")]
    files = [ctx.files.appraisal]
    c.put("appraisal.n_studies", fmt_count(a["study_id"].nunique()), kind="data", files=files, raw_rows=rows)
    c.put("appraisal.n_items", fmt_count(len(a)), kind="data", files=files, raw_rows=rows)
    unclear = a[a["judgement"].isin(["unclear", "not_reported"])]
    c.put("appraisal.n_not_judged", fmt_count(len(unclear)), kind="data", files=files,
          raw_rows=[r for r in rows if r["row_id"] in {f"appraisal:{x['study_id']}:{x['item_id']}"
                                                       for x in unclear.to_dict("records")}])
    names = [tables.CHECKLIST_NAMES.get(x, x) for x in dict.fromkeys(a["checklist"])]
    c.put("appraisal.checklists", join_words(names) if names else "none", kind="data", files=files, raw_rows=rows)


# --------------------------------------------------------------------------------------------------- main

def build_variables(config_yml: str | Path, results_dir: str | Path = "results", root: str | Path = ".",
                    ) -> Variables:
    """All manuscript variables from the results under `results_dir` (layout: `results_files`). Paths in the
    lineage are written relative to `root` (the project root)."""
    root = Path(root).resolve()

    @functools.lru_cache(maxsize=None)
    def rel(p) -> str:
        p = Path(p).resolve()
        try:
            return p.relative_to(root).as_posix()
        except ValueError:
            return p.as_posix()

    ctx = _context(config_yml, results_dir, root)
    c = _Collector(rel)
    aliases = study_set_aliases(ctx.cfg)
    for s in ctx.cfg["study_sets"]:
        prefixes = [f"sets.{s}"] + [a for a, target in aliases.items() if target == s]
        _put_set(c, ctx, s, prefixes)
        counts = {"pooled": 0, "single": 0, "none": 0}
        pooled_names = []
        for outcome in ctx.cfg["outcomes"]:
            result = _continuous(c, ctx, s, outcome, prefixes)
            counts[result] += 1
            if result == "pooled":
                pooled_names.append(ctx.dictionary[outcome].label)
        for outcome in ctx.cfg["binary_outcomes"]:
            _binary(c, ctx, s, outcome, prefixes)
        files = [ctx.files.summaries[(s, o)] for o in ctx.cfg["outcomes"]] + \
                [ctx.files.key_visits[(s, o)] for o in ctx.cfg["outcomes"]]
        for suffix, value in (("n_outcomes", len(ctx.cfg["outcomes"])),
                              ("n_outcomes_data", counts["pooled"] + counts["single"]),
                              ("n_outcomes_pooled", counts["pooled"]), ("n_outcomes_single", counts["single"]),
                              ("n_outcomes_none", counts["none"])):
            c.put([f"{p}.{suffix}" for p in prefixes], fmt_count(value), kind="derived", files=files,
                  note="a count of outcomes (see each outcome's own variables for the data rows)")
        n_cont = len(ctx.cfg["outcomes"])
        if pooled_names:
            verb = "was" if len(pooled_names) == 1 else "were"
            sentence = (f"{fmt_count(len(pooled_names))} of {fmt_count(n_cont)} continuous outcomes {verb} reported "
                        f"by two or more studies at one visit and pooled there ({join_words(pooled_names)})")
        else:
            sentence = (f"no continuous outcome was reported by two or more studies at the same visit, so nothing "
                        "could be pooled")
        c.put([f"{p}.pooling_sentence" for p in prefixes], sentence, kind="derived", files=files,
              note="from each outcome's evidence at its key visit")
        _rct(c, ctx, s, prefixes)
        _diagnostics(c, ctx, s, prefixes)
        _claims(c, ctx, s, prefixes)
    priors = _methods(c, ctx)
    _appraisal(c, ctx)
    _warnings(c, ctx)
    return Variables(values=c.nested(), lineage=c.lineage, priors=priors)


HEADER = ("# Manuscript variables ({{< var key >}} in manuscript/index.qmd), generated by timecourse_meta.manuscript.variables from\n"
          "# the results files; do not edit. Where each value came from: lineage.json.\n")


def write_variables(config_yml: str | Path, out_yml: str | Path, out_lineage: str | Path, out_priors: str | Path,
                    results_dir: str | Path = "results", root: str | Path = ".") -> Variables:
    """Build the variables and write `_variables.yml`, `lineage.json` and the prior table `priors.md`."""
    v = build_variables(config_yml, results_dir, root)
    atomic.write_text(out_yml, HEADER + yaml.safe_dump(v.values, sort_keys=True, allow_unicode=True, width=100))
    atomic.write_text(out_lineage, json.dumps({"variables": v.lineage}, indent=1, ensure_ascii=False,
                                              sort_keys=True) + "\n")
    atomic.write_text(out_priors, tables.markdown_table(v.priors))
    return v


# -------------------------------------------------------------------------------------- the manuscript step
# What manuscript/index.qmd reads, and the rendering step. Conventions of index.qmd:
# * figures are referenced by paths relative to the project root (`results/...`; the renderer gets the project
#   root as its resource path), includes relative to the .qmd (`../results/...`: render.py resolves includes
#   from the including file);
# * results of a study set are read through the aliases `results/manuscript/main/` and
#   `results/manuscript/other/` (figures/ and tables/ below them, as under results/figures/S/ and
#   results/tables/S/), so that config `main_study_set` chooses the set without editing the .qmd;
#   `stage_assets` copies the configured sets' files there.

_INCLUDE = re.compile(r"^\s*\{\{<\s*include\s+(?P<path>\"[^\"]+\"|'[^']+'|\S+?)\s*>\}\}\s*$")
_IMAGE = re.compile(r"!\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?(?P<path>[^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_ALIAS = re.compile(r"^results/manuscript/(?P<alias>main|other)/(?P<kind>figures|tables)/(?P<rest>.+)$")


def manuscript_sources(qmd: str | Path, root: str | Path = ".") -> list[str]:
    """Files the .qmd includes or shows as figures, relative to `root`, in order of first use (fenced code and
    HTML comments are skipped; remote images are not files)."""
    qmd, root = Path(qmd), Path(root).resolve()
    text = re.sub(r"<!--.*?-->", "", qmd.read_text(encoding="utf-8"), flags=re.S)
    out: list[str] = []
    fence = None

    def add(path: Path) -> None:
        try:
            shown = path.resolve().relative_to(root).as_posix()
        except ValueError:
            shown = path.resolve().as_posix()
        if shown not in out:
            out.append(shown)

    for line in text.splitlines():
        m = _FENCE.match(line)
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            continue
        if m:
            fence = m.group(1)
            continue
        inc = _INCLUDE.match(line)
        if inc:
            add(qmd.parent / inc.group("path").strip("\"'"))
            continue
        for im in _IMAGE.finditer(line):
            target = im.group("path")
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                continue
            add(root / target if target.startswith("results/") else qmd.parent / target)
    return out


def asset_map(sources: Sequence[str], cfg: Mapping) -> dict[str, str]:
    """{alias path under results/manuscript/(main|other)/: the study set's own results file} for the sources."""
    aliases = study_set_aliases(cfg)
    out = {}
    for s in sources:
        m = _ALIAS.match(s)
        if m:
            out[s] = f"results/{m.group('kind')}/{aliases[m.group('alias')]}/{m.group('rest')}"
    return out


def stage_assets(pairs: Mapping[str | Path, str | Path]) -> None:
    """Copy each source (value) to its alias path (key), atomically."""
    for dest, src in pairs.items():
        with atomic.atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)


def run_manuscript(qmd: str | Path, variables_yml: str | Path, lineage: str | Path, bibliography: str | Path,
                   csl: str | Path, out_dir: str | Path, root: str | Path = ".",
                   formats: Sequence[str] = ("html", "docx", "pdf")) -> dict:
    """Lint the .qmd for hand-typed numbers (abstract and Results), then render it with every variable's
    lineage, figures resolved from the project root. Nothing is written if either step fails."""
    from timecourse_meta.manuscript import lint
    from timecourse_meta.manuscript import render

    lint.check_qmd(qmd)
    return render.render_manuscript(qmd, variables_yml, bibliography, out_dir, formats=formats, lineage=lineage,
                                    csl=csl, resource_path=[Path(root).resolve()])
