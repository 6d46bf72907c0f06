"""A run's snapshot: what went in and the key results, small and text-based, so that a review team can commit it
and a later run can say what changed (`timecourse_meta.report.what_changed`).

Content (JSON, sorted keys, no timestamps: an unchanged run writes the same bytes):

* `files`: SHA-256 of each raw sheet and review file (paths as the workflow names them), `config`: SHA-256 of the
  resolved config (without its `update` section), `sheets`: one SHA-256 over the raw sheets' hashes (it names
  a recorded snapshot);
* `studies`: per report (`study_id`) a hash of its studies-sheet row and of its outcome rows together;
  `rows`: per outcome row (`row_id`) its study and a hash of the row. A row's hash is over its non-empty cells,
  so a new empty column changes nothing;
* `estimates`: per outcome x study set x visit, the pooled rows (`delta`, `delta_percent`, `proportion`) and the
  studies' own estimates (`evidence` study_estimate) of `results/models/S/O/summary.csv`: estimate (posterior
  median, or the study's own estimate), lower, upper (95% interval), p_improvement, n_studies, n_patients,
  evidence, and `mcse`, the Monte Carlo standard error of the estimate.

The MCSE comes from the effective sample size: sd / sqrt(ess_bulk), with sd the 95% interval's width / 3.92 (the
posterior sd of a normal posterior) and ess_bulk the smallest bulk ESS of the model's parameters in
`diagnostics.csv` (a conservative, i.e. large, MCSE: the quantity's own ESS is at least that in most fits). A row
that was not sampled (a study's own estimate, exact draws, no model) has MCSE 0.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd
import yaml

from timecourse_meta.core import atomic
from timecourse_meta.core.errors import EngineError

FORMAT = 1
POOLED_QUANTITIES = ("delta", "delta_percent", "proportion")
STUDY_ESTIMATE = "study_estimate"
Z95 = 1.959963984540054
DIGITS = 6  # significant digits kept: the same run gives the same file on any machine


class SnapshotError(EngineError, ValueError):
    """A snapshot file cannot be read as one."""


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def config_hash(resolved_config: str | Path) -> str:
    """SHA-256 of the resolved config without its `update` section (which snapshot to compare with is not an
    input of the analysis)."""
    data = yaml.safe_load(Path(resolved_config).read_text(encoding="utf-8")) or {}
    data.pop("update", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _row_hash(row: Mapping) -> str:
    cells = {str(k): str(v) for k, v in row.items() if str(v).strip() not in ("", "nan")}
    return hashlib.sha256(json.dumps(cells, sort_keys=True).encode()).hexdigest()[:16]


def _round(x) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(x):
        return None
    return float(f"{x:.{DIGITS}g}")


def min_ess_bulk(diagnostics: pd.DataFrame) -> float:
    """The smallest bulk ESS of the sampled parameters (NaN when nothing was sampled)."""
    if "kind" not in diagnostics or "ess_bulk" not in diagnostics:
        return math.nan
    ess = pd.to_numeric(diagnostics.loc[diagnostics["kind"] == "parameter", "ess_bulk"], errors="coerce").dropna()
    return float(ess.min()) if len(ess) else math.nan


def mcse_from_interval(lower: float, upper: float, ess_bulk: float) -> float:
    """sd / sqrt(ESS) with sd = (upper - lower) / (2 x 1.96); 0 when there is no ESS (not sampled)."""
    if not (math.isfinite(ess_bulk) and ess_bulk > 0 and math.isfinite(lower) and math.isfinite(upper)):
        return 0.0
    return (upper - lower) / (2 * Z95) / math.sqrt(ess_bulk)


def estimate_rows(summary: pd.DataFrame, diagnostics: pd.DataFrame) -> dict[str, dict]:
    """key 'outcome|set|visit|quantity|study' -> the row's numbers (see the module docstring)."""
    ess = min_ess_bulk(diagnostics)
    out = {}
    for r in summary.to_dict("records"):
        evidence = str(r.get("evidence", ""))
        if r.get("quantity") not in POOLED_QUANTITIES and evidence != STUDY_ESTIMATE:
            continue
        lower, upper = _num(r.get("lower")), _num(r.get("upper"))
        visit = _num(r.get("visit_months"))
        study = "" if pd.isna(r.get("study_id")) else str(r.get("study_id"))
        key = "|".join([str(r["outcome"]), str(r["study_set"]), f"{visit:g}" if math.isfinite(visit) else "",
                        str(r["quantity"]), study])
        sampled = evidence != STUDY_ESTIMATE
        out[key] = {
            "outcome": str(r["outcome"]), "study_set": str(r["study_set"]), "visit_months": _round(visit),
            "quantity": str(r["quantity"]), "study_id": study, "evidence": evidence,
            "estimate": _round(r.get("median")), "lower": _round(lower), "upper": _round(upper),
            "p_improvement": _round(r.get("p_improvement")),
            "n_studies": _count(r.get("n_studies")), "n_patients": _count(r.get("n_patients")),
            "mcse": _round(mcse_from_interval(lower, upper, ess) if sampled else 0.0),
        }
    return out


def _num(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _count(x) -> int | None:
    x = _num(x)
    return int(round(x)) if math.isfinite(x) else None


def build_snapshot(*, files: Iterable[str], config: str, studies: str, outcomes: str,
                   results: Mapping[tuple, tuple[str, str]], sheets: Iterable[str] | None = None) -> dict:
    """The snapshot of a run: `files` (raw sheets and review files), the resolved `config`, the validated
    `studies` and `outcomes` sheets, and `results` ((study set, outcome) -> (summary.csv, diagnostics.csv)).
    `sheets`: the files whose hashes make `sheets` (default: the files under a `raw` folder, else all)."""
    files = sorted(dict.fromkeys(str(f) for f in files))
    hashes = {f: sha256_file(f) for f in files}
    sheet_files = list(sheets) if sheets is not None else [f for f in files if "raw" in Path(f).parts] or files
    sheets_hash = hashlib.sha256("".join(f"{f}:{hashes.get(f) or sha256_file(f)}\n"
                                         for f in sorted(sheet_files)).encode()).hexdigest()
    study_frame = pd.read_csv(studies, dtype=str, keep_default_na=False)
    outcome_frame = pd.read_csv(outcomes, dtype=str, keep_default_na=False)
    rows = {str(r["row_id"]): {"study_id": str(r["study_id"]), "hash": _row_hash(r)}
            for r in outcome_frame.to_dict("records")}
    per_study = {}
    for r in study_frame.to_dict("records"):
        sid = str(r["study_id"])
        mine = sorted(f"{k}:{v['hash']}" for k, v in rows.items() if v["study_id"] == sid)
        per_study[sid] = {"row": _row_hash(r),
                          "outcome_rows": hashlib.sha256("\n".join(mine).encode()).hexdigest()[:16]}
    estimates = {}
    for (study_set, outcome), (summary_csv, diagnostics_csv) in sorted(results.items()):
        estimates.update(estimate_rows(pd.read_csv(summary_csv), pd.read_csv(diagnostics_csv)))
    return {"format": FORMAT, "files": hashes, "config": config_hash(config), "sheets": sheets_hash,
            "studies": per_study, "rows": rows, "estimates": estimates,
            "mcse_rule": "sd / sqrt(min ess_bulk), sd = 95% interval width / 3.92; 0 when not sampled"}


def dumps(snapshot: Mapping) -> str:
    """The snapshot's text: sorted keys, one key per line, no timestamps (an unchanged run, the same bytes)."""
    return json.dumps(snapshot, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def load(path: str | Path) -> dict:
    """A snapshot file (SnapshotError naming the file when it is not one)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"{path}: not a readable snapshot ({exc}); expected the JSON written by the "
                            "snapshot rule") from None
    missing = [k for k in ("files", "studies", "rows", "estimates") if k not in data]
    if missing:
        raise SnapshotError(f"{path}: snapshot without the key(s) {', '.join(missing)}; expected the JSON "
                            "written by the snapshot rule (format {FORMAT})")
    return data


def recorded_name(snapshot: Mapping, date: str) -> str:
    """The file name a recorded snapshot gets: `<date>_<first 12 characters of the sheets' hash>.json`."""
    return f"{date}_{str(snapshot.get('sheets', ''))[:12]}.json"


def latest(folder: str | Path) -> Path | None:
    """The latest recorded snapshot of a folder (names start with the date, so the last by name), or None."""
    folder = Path(folder)
    found = sorted(folder.glob("*.json")) if folder.is_dir() else []
    return found[-1] if found else None


def record(current: str | Path, folder: str | Path, date: str) -> tuple[Path, bool]:
    """Copy the current snapshot into the snapshots folder as `recorded_name`; (path, False) when a file of that
    name with the same content is there already. A file of that name with other content is an error."""
    text = Path(current).read_text(encoding="utf-8")
    snap = load(current)
    target = Path(folder) / recorded_name(snap, date)
    if target.is_file():
        if target.read_text(encoding="utf-8") == text:
            return target, False
        raise SnapshotError(f"{target}: a recorded snapshot of that date and sheets exists with other content "
                            "(the results changed without a change of the sheets); remove it or record another day")
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(target, text)
    return target, True
