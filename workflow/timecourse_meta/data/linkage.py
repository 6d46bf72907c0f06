"""Studies, not reports: which reports describe the same patients, and how each patient is counted once.

The studies sheet has one row per report (`study_id` = report). Its linkage columns (docs/extraction_sheets.md)
say which patient group (a cohort, trial or treatment programme) each report's patients belong to and how they
relate to the other reports of that group. The Cochrane Handbook (chapter 5) makes the study, not the report, the
unit of a review: reports are collated and each patient counts once. This module

* checks the linkage columns across rows (`check_studies`, called by validation) and lists the overlap the sheets
  leave open (`overlap_warnings`: `unclear`, or `partial` inside a group), which is a warning, not an error;
* selects, per outcome and visit, one report per patient group before a model is built (`select_reports`), so
  that no pooled estimate holds two reports of the same patients; the dropped rows are returned with a reason
  naming the report kept;
* counts studies (patient groups), reports and unique patients (`study_groups`, `unique_patients`,
  `set_counts`) for tables and the manuscript.

Rules of `select_reports` (config key `reports.rule`):

* `most_complete_per_visit` (default): within one patient group, per outcome and visit, the report with the most
  complete data at that visit is kept: most patients at that visit (largest `n`, or `total` for events/total
  rows, over its poolable rows there; an estimate reported with only its SE has no n and counts 0); ties: more visits of that outcome; then the row nearer the visit (only
  differs from zero when times are binned, see below); then the later report (year; a report without a year
  counts as the earliest); then `study_id` (so that the choice is deterministic). For a continuous outcome the
  baseline (time 0) is not a visit of its own: a report keeps its baseline rows when it is kept at any follow-up
  visit and loses them otherwise, because a follow-up mean without its own baseline says nothing about change
  and a baseline without follow-up adds nothing to a pooled change.
* `one_report_per_group`: the single most complete report of the group across all visits of the outcome is kept:
  most patient-visits (the sum over its follow-up visits of its patients there), ties as above.

Visits are the analysis-table `time_months` (rounded as the model rounds them). Binary outcomes are pooled by the
model in bins of the configured visit grid (each time goes to the nearest grid point); `visit_grid` makes the
selection use the same bins, so that, e.g., a 60-month survival and a 12-month survival of one programme, which
the model would put in the same 12-month bin, are never pooled together. Rows without a time form their own
visit ("time not reported"). Only poolable rows compete; a report's non-poolable rows at a visit where another
report of its group is kept are dropped with it (they are never pooled, and leaving them would show the group
twice in the listed rows).
"""

from __future__ import annotations

import math
import re
from typing import Iterable

import numpy as np
import pandas as pd

from timecourse_meta.core.review import Arms
from timecourse_meta.core.values import to_float

OVERLAPS = ("none", "same_patients", "subset", "later_follow_up", "partial", "unclear")
BASES = ("stated", "judgement")
RULES = ("most_complete_per_visit", "one_report_per_group")
DEFAULT_RULE = "most_complete_per_visit"
LINKED = ("same_patients", "subset", "later_follow_up", "partial")  # overlap that needs another report in the group
OVERLAP_WORDS = {"none": "none", "same_patients": "same patients", "subset": "subset",
                 "later_follow_up": "later follow-up", "partial": "partial overlap", "unclear": "unclear"}
TIME_DECIMALS = 3  # as the model rounds visit times
ROW = "_row"
DROPPED_COLUMNS = ["analysis_id", "study_id", "outcome", "arm", "cohort", "measure", "origin", "time_months",
                   "visit_months", "patient_group", "kept_study_id", "rule", "reason"]


# ----------------------------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------------------------

def _text(x, default: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return default
    s = str(x).strip()
    return s if s and s.lower() != "nan" else default


_num = to_float  # a cell as a number, NaN when it is not one (core.values)


def _truthy(x) -> bool:
    if isinstance(x, str):
        return x.strip().lower() in ("true", "yes", "1")
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return False
    return bool(x)


def groups_of(studies: pd.DataFrame) -> dict[str, str]:
    """study_id -> patient_group; a report without a patient_group is alone in its own group."""
    out = {}
    for r in studies.to_dict("records"):
        sid = _text(r.get("study_id"))
        if sid:
            out[sid] = _text(r.get("patient_group"), sid)
    return out


def group_label(group: str, members: list[str], labels: dict[str, str]) -> str:
    """A group named after one of its reports (its study_id) is named by that report ('Ames 2017'); another
    group by its id in words ('north_clinic' -> 'North Clinic')."""
    if group in members:
        return labels.get(group, group)
    return " ".join(w[:1].upper() + w[1:] for w in group.replace("_", " ").split())


def _labels(studies: pd.DataFrame) -> dict[str, str]:
    from timecourse_meta.report.tables import study_labels

    return study_labels(studies) if "first_author" in studies else {s: s for s in studies["study_id"]}


def _patients(row, arms: Arms) -> float:
    """Patients of one report: intervention plus comparator arm, from the studies-sheet columns config
    review.arms names (a missing comparator counts 0; a missing intervention count -> NaN, not reported)."""
    a, b = _num(row.get(arms.intervention.n_column)), _num(row.get(arms.comparator.n_column))
    if not np.isfinite(a):
        return math.nan
    return (a if np.isfinite(a) else 0.0) + (b if np.isfinite(b) else 0.0)


def _year(row) -> float:
    y = _num(row.get("year"))
    return y if np.isfinite(y) else -math.inf


def months_text(t: float) -> str:
    if not np.isfinite(t):
        return "time not reported"
    if t == 0:
        return "baseline"
    return f"{t:g} months" if t != 1 else "1 month"


# ----------------------------------------------------------------------------------------------------------------
# validation across rows (called from validation.validate)
# ----------------------------------------------------------------------------------------------------------------

def check_studies(sheet, table: pd.DataFrame) -> list:
    """Cross-row rules of the linkage columns; returns validation Problems naming file, row, column and value.

    * overlap_basis `judgement` (or `stated`) needs an overlap_reason; an overlap other than `none` needs an
      overlap_source (the page the judgement rests on);
    * a report alone in its patient group uses its own study_id as the group id, and a group id that is another
      report's study_id must be that report's group too;
    * `none` means no other report shares the patients, so it cannot stand in a group of several reports; and
      `same_patients`, `subset`, `later_follow_up`, `partial` need another report in the group.
    """
    from timecourse_meta.data.validation import Problem  # validation imports this module

    if "patient_group" not in table or "study_id" not in table:
        return []  # a missing column is reported by the column check
    where = sheet.where()
    problems = []
    rows = [r for r in table.to_dict("records") if _text(r.get("study_id"))]
    members: dict[str, list[str]] = {}
    for r in rows:
        g = _text(r.get("patient_group"))
        if g:
            members.setdefault(g, []).append(_text(r["study_id"]))
    group_of = {_text(r["study_id"]): _text(r.get("patient_group")) for r in rows}
    for r in rows:
        row, sid = int(r[ROW]), _text(r["study_id"])
        group, overlap = _text(r.get("patient_group")), _text(r.get("overlap"))
        basis, reason, source = _text(r.get("overlap_basis")), _text(r.get("overlap_reason")), _text(
            r.get("overlap_source"))
        if basis in BASES and not reason:
            problems.append(Problem(where, row, "overlap_reason", "",
                                    f"a reason (one sentence, with the source's words where stated), because "
                                    f"overlap_basis is '{basis}'"))
        if overlap and overlap != "none" and overlap in OVERLAPS and not source:
            problems.append(Problem(where, row, "overlap_source", "",
                                    f"the URL of the source the overlap '{overlap}' rests on"))
        if not re.fullmatch(r"[a-z0-9_]+", group):
            continue  # empty or not an id: reported by the column check
        others = [m for m in members[group] if m != sid]
        if not others and group != sid:
            problems.append(Problem(where, row, "patient_group", group,
                                    f"'{sid}' (a report alone in its patient group uses its own study_id), or a "
                                    f"group id that other reports share"))
        elif group in group_of and group != sid and group_of[group] != group:
            problems.append(Problem(where, row, "patient_group", group,
                                    f"a group id that is not the study_id of a report outside the group "
                                    f"('{group}' is in patient group '{group_of[group]}')"))
        if overlap == "none" and others:
            problems.append(Problem(where, row, "overlap", overlap,
                                    f"an overlap other than 'none': reports {', '.join(others)} share patient "
                                    f"group '{group}'"))
        if overlap in LINKED and not others:
            problems.append(Problem(where, row, "overlap", overlap,
                                    f"'none' or 'unclear': no other report is in patient group '{group}'"))
    return problems


def overlap_warnings(studies: pd.DataFrame) -> list[str]:
    """Overlap the sheets leave open, one line per report: `unclear` anywhere, `partial` inside a group."""
    if "overlap" not in studies:
        return []
    labels = _labels(studies)
    groups = groups_of(studies)
    members: dict[str, list[str]] = {}
    for sid, g in groups.items():
        members.setdefault(g, []).append(sid)
    out = []
    for r in studies.to_dict("records"):
        sid, overlap = _text(r.get("study_id")), _text(r.get("overlap"))
        group = groups.get(sid, sid)
        others = [m for m in members.get(group, []) if m != sid]
        if overlap == "unclear" or (overlap == "partial" and others):
            shared = (f"other reports of patient group '{group}': "
                      + ", ".join(f"{labels.get(m, m)} ({m})" for m in others)) if others else \
                f"no other report of it is in the sheets (patient group '{group}')"
            out.append(f"{labels.get(sid, sid)} ({sid}): overlap {overlap}; {shared}. "
                       f"{_text(r.get('overlap_reason'), 'No reason given.')}")
    return out


def warnings_markdown(studies: pd.DataFrame) -> str:
    """The validation report's section on overlap left open (empty when there is none)."""
    lines = overlap_warnings(studies)
    if not lines:
        return ""
    return ("\n## Warnings: reports whose overlap with other reports is open\n\n"
            "Not errors: these reports may share patients with other reports in ways the sources do not settle. "
            "Each analysis counts each patient group once (config `reports.rule`).\n\n"
            + "".join(f"- WARNING: {line}\n" for line in lines))


def report_section(studies: pd.DataFrame, *, arms: Arms) -> str:
    """The validation report's account of reports and patient groups: each group with its reports and the
    patients counted once, then the warnings of `warnings_markdown`."""
    from timecourse_meta.data.harmonise import excluded  # harmonise -> columns -> this module

    if "patient_group" not in studies:
        return ""
    listed = studies[studies.apply(excluded, axis=1)] if len(studies) else studies
    analysed = studies.drop(index=listed.index)
    groups = study_groups(analysed, arms=arms)
    lines = ["", "## Reports and patient groups (studies)", "",
             f"{len(analysed)} analysed reports in {len(groups)} patient groups; patients counted once per group "
             f"(its largest report): {unique_patients(analysed, arms=arms)}.", "",
             "| patient group | reports (patients, overlap) | patients counted |", "|---|---|---|"]
    for g in groups.to_dict("records"):
        n = f"{int(g['patients'])}" if np.isfinite(g["patients"]) else "not reported"
        lines.append(f"| {g['label']} | {g['reports']} | {n} |")
    if len(listed):
        labels = _labels(studies)
        lines += ["", f"{len(listed)} further records are listed, not analysed (column `exclusion_reason`): "
                  + "; ".join(f"{labels.get(r['study_id'], r['study_id'])} ({r['study_id']}): {r['exclusion_reason']}"
                              for r in listed.to_dict("records")) + "."]
    return "\n".join(lines) + "\n" + warnings_markdown(studies)


# ----------------------------------------------------------------------------------------------------------------
# selection of reports per outcome and visit
# ----------------------------------------------------------------------------------------------------------------

def _visits(times: pd.Series, visit_grid: Iterable[float] | None, tolerance: float = 0.5) -> np.ndarray:
    """Each row's visit: its own time, or (binary outcomes, `visit_grid` given) the follow-up duration the
    model summarises it at (`model_data.binary_duration`: the nearest grid visit within `tolerance`, else its
    own duration), so that reports are compared exactly where the model would pool them."""
    from timecourse_meta.model.binary_data import binary_duration

    t = np.round(pd.to_numeric(times, errors="coerce").to_numpy(dtype=float), TIME_DECIMALS)
    if visit_grid is None:
        return t
    grid = sorted({float(g) for g in visit_grid})
    return np.array([binary_duration(v, grid, tolerance) if np.isfinite(v) else np.nan for v in t], dtype=float)


def _row_patients(r) -> float:
    for column in ("n", "total"):
        v = _num(r.get(column))
        if np.isfinite(v):
            return v
    return 0.0


def select_reports(table: pd.DataFrame, studies: pd.DataFrame, study_ids: Iterable[str],
                   rule: str = DEFAULT_RULE, visit_grid: Iterable[float] | None = None,
                   tolerance: float = 0.5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep one report per patient group, per outcome and visit (or per outcome), among `study_ids`.

    `table`: analysis-table rows (docs/analysis_table.md; columns study_id, outcome, time_months, n, total,
    poolable, kind, arm, cohort, measure, analysis_id). `studies`: the studies sheet with `patient_group`.
    `visit_grid`: when given, times are binned to the follow-up durations the binary model uses (the nearest
    grid visit within `tolerance` months, else the row's own duration; see the module docstring). Returns (kept rows: the table without the dropped rows, same columns and order; dropped rows with
    `DROPPED_COLUMNS`, each with a reason naming the report kept; `kept_study_id` of a dropped baseline lists the
    reports kept at the follow-up visits, ';'-joined). Rows of reports outside `study_ids` are kept untouched (the
    model selects its study set itself).

    (Longer than most functions on purpose: the per-group ranking closes over the group's visits, and both rules
    share that pass; splitting it would pass six arrays around.)
    """
    if rule not in RULES:
        raise ValueError(f"reports.rule = {rule!r}; expected one of {', '.join(RULES)}")
    ids = [str(s) for s in study_ids]
    groups = groups_of(studies)
    labels = _labels(studies)
    year = {_text(r.get("study_id")): _year(r) for r in studies.to_dict("records")}
    members: dict[str, list[str]] = {}
    for sid in ids:
        members.setdefault(groups.get(sid, sid), []).append(sid)

    t = table.reset_index(drop=True)
    sid_col = t["study_id"].astype(str)
    visit = _visits(t["time_months"], visit_grid, tolerance)
    raw_time = np.round(pd.to_numeric(t["time_months"], errors="coerce").to_numpy(dtype=float), TIME_DECIMALS)
    distance = np.where(np.isfinite(visit), np.abs(raw_time - visit), 0.0)
    poolable = np.array([_truthy(p) for p in (t["poolable"] if "poolable" in t else [True] * len(t))])
    kinds = t["kind"].astype(str).to_numpy() if "kind" in t else np.array(["continuous"] * len(t))
    visit_key = np.where(np.isfinite(visit), visit, -1.0)  # -1: time not reported
    drop: dict[int, tuple[str, str, float]] = {}  # row index -> (kept report, group, visit)

    for group, sids in members.items():
        if len(sids) < 2:
            continue
        in_group = sid_col.isin(sids).to_numpy()
        for outcome in pd.unique(t.loc[in_group, "outcome"]):
            rows = np.flatnonzero(in_group & (t["outcome"].to_numpy() == outcome))
            present = [s for s in sids if (sid_col.iloc[rows] == s).any()]
            if len(present) < 2:
                continue
            # per report and visit: (most patients, nearest distance to the visit) over its poolable rows
            data: dict[str, dict[float, tuple[float, float]]] = {s: {} for s in present}
            for i in rows:
                if poolable[i]:
                    s, v = sid_col.iloc[i], float(visit_key[i])
                    p, d = _row_patients(t.iloc[i]), float(distance[i])
                    old = data[s].get(v)
                    data[s][v] = (max(p, old[0]), min(d, old[1])) if old else (p, d)
            baseline_apart = all(k == "continuous" for k in kinds[rows]) and any(
                v != 0.0 for visits in data.values() for v in visits)
            follow = {s: {v: x for v, x in data[s].items() if not (baseline_apart and v == 0.0)} for s in present}
            competitors = [s for s in present if follow[s]]
            if not competitors:
                continue

            def rank(s, v=None, follow=follow):
                """(patients, visits, -distance, year, study_id): the largest wins."""
                visits = follow[s]
                if v is None:  # one report per group: patient-visits over all its visits
                    patients, dist = sum(p for p, _ in visits.values()), sum(d for _, d in visits.values())
                else:
                    patients, dist = visits[v]
                return (patients, len(visits), -dist, year.get(s, -math.inf), s)

            if rule == "one_report_per_group":
                kept = max(competitors, key=rank)
                for i in rows:
                    if sid_col.iloc[i] != kept:
                        drop[i] = (kept, group, math.nan)
                continue
            kept_at = {v: max((s for s in competitors if v in follow[s]), key=lambda s, v=v: rank(s, v))
                       for v in sorted({v for s in competitors for v in follow[s]})}
            kept_reports = sorted(set(kept_at.values()), key=lambda k: labels.get(k, k))
            for i in rows:
                s, v = sid_col.iloc[i], float(visit_key[i])
                if baseline_apart and v == 0.0:
                    if s not in kept_reports:
                        drop[i] = (";".join(kept_reports), group, 0.0)
                elif v in kept_at and kept_at[v] != s:
                    drop[i] = (kept_at[v], group, v)

    kept_mask = np.ones(len(t), dtype=bool)
    kept_mask[list(drop)] = False
    kept_table = table.reset_index(drop=True)[kept_mask]
    kept_table.index = table.index[kept_mask]
    return kept_table, _dropped_rows(t, drop, visit_key, members, labels, rule)


def _dropped_rows(t: pd.DataFrame, drop: dict, visit_key: np.ndarray, members: dict, labels: dict,
                  rule: str) -> pd.DataFrame:
    """The rows select_reports left out, each with the report used instead and the reason in words."""
    records = []
    for i, (kept, group, v) in sorted(drop.items()):
        r = t.iloc[i]
        row_visit = float(visit_key[i]) if visit_key[i] >= 0 else math.nan
        name = group_label(group, members[group], labels)
        kept_names = " and ".join(labels.get(k, k) for k in kept.split(";"))
        if rule == "one_report_per_group":
            reason = f"overlapping patients: {name}, {kept_names} used (one report per patient group)"
        elif v == 0.0:
            reason = (f"overlapping patients: {name}, baseline of a report not used at any follow-up visit "
                      f"({kept_names} used at the follow-up visits)")
        else:
            reason = f"overlapping patients: {name}, {kept_names} used at {months_text(row_visit)}"
        records.append({
            "analysis_id": r.get("analysis_id"), "study_id": r["study_id"], "outcome": r["outcome"],
            "arm": r.get("arm"), "cohort": r.get("cohort"), "measure": r.get("measure"), "origin": r.get("origin"),
            "time_months": r.get("time_months"),
            "visit_months": row_visit,
            "patient_group": group, "kept_study_id": kept, "rule": rule, "reason": reason,
        })
    return pd.DataFrame(records, columns=DROPPED_COLUMNS)


# ----------------------------------------------------------------------------------------------------------------
# counts: studies (patient groups), reports, unique patients
# ----------------------------------------------------------------------------------------------------------------

GROUP_COLUMNS = ["patient_group", "label", "study_ids", "n_reports", "reports", "largest_report", "patients"]


def study_groups(studies: pd.DataFrame, study_ids: Iterable[str] | None = None, *,
                 arms: Arms | None = None) -> pd.DataFrame:
    """The patient groups of `study_ids` (all reports if None), each with its reports, in the sheet's order.

    Columns: patient_group, label ('North Clinic' for group id north_clinic, or the lone report's label),
    study_ids (';'-joined, oldest first), n_reports, reports ('Ames 2014 (81, partial overlap), Berg 2018 (81,
    later follow-up)'; a lone report without overlap shows its patients only), largest_report (study_id),
    patients (intervention + comparator patients of the largest report: each patient counted once per group; a
    lower bound where reports only partly overlap). Without `arms` (config review.arms, which names the
    patient-count columns) only the membership is given: no counts in `reports`, `patients` empty and the
    largest report the latest one.
    """
    ids = list(studies["study_id"]) if study_ids is None else [str(s) for s in study_ids]
    part = studies[studies["study_id"].astype(str).isin(ids)]
    labels = _labels(studies)
    groups = groups_of(studies)
    by_group: dict[str, list[dict]] = {}
    for r in part.to_dict("records"):
        by_group.setdefault(groups[_text(r["study_id"])], []).append(r)
    patients = (lambda r: _patients(r, arms)) if arms is not None else (lambda r: math.nan)  # noqa: E731
    rows = []
    for group, recs in by_group.items():
        recs = sorted(recs, key=lambda r: (_year(r), labels.get(r["study_id"], r["study_id"])))
        sids = [r["study_id"] for r in recs]
        texts = []
        for r in recs:
            n = patients(r)
            facts = ([f"{int(n)}" if np.isfinite(n) else "n not reported"] if arms is not None else [])
            overlap = _text(r.get("overlap"))
            if overlap and overlap != "none":
                facts.append(OVERLAP_WORDS.get(overlap, overlap))
            label = labels.get(r["study_id"], r["study_id"])
            texts.append(f"{label} ({', '.join(facts)})" if facts else label)
        sizes = [(patients(r) if np.isfinite(patients(r)) else -1.0, _year(r), r["study_id"]) for r in recs]
        largest = max(sizes)
        rows.append({
            "patient_group": group, "label": group_label(group, sids, labels),
            "study_ids": ";".join(sids), "n_reports": len(sids), "reports": ", ".join(texts),
            "largest_report": largest[2], "patients": largest[0] if largest[0] >= 0 else math.nan,
        })
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


def unique_patients(studies: pd.DataFrame, study_ids: Iterable[str] | None = None, *, arms: Arms) -> int:
    """Patients counted once per patient group: the largest report (both arms) of each group, summed."""
    g = study_groups(studies, study_ids, arms=arms)
    return int(pd.to_numeric(g["patients"], errors="coerce").fillna(0).sum())


def set_counts(studies: pd.DataFrame, study_ids: Iterable[str] | None = None, *, arms: Arms) -> dict:
    """Counts a manuscript states for one study set.

    n_studies: patient groups (the Cochrane unit 'study'); n_reports: rows of the studies sheet;
    n_patients_unique: `unique_patients`; n_patients_reports: patients summed over reports (counts overlapping
    patients more than once; for comparison only); patients_basis: how the unique count was made, in words.
    """
    g = study_groups(studies, study_ids, arms=arms)
    ids = list(studies["study_id"]) if study_ids is None else [str(s) for s in study_ids]
    part = studies[studies["study_id"].astype(str).isin(ids)]
    per_report = [_patients(r, arms) for r in part.to_dict("records")]
    return {
        "n_studies": int(len(g)),
        "n_reports": int(len(part)),
        "n_patients_unique": unique_patients(studies, ids, arms=arms),
        "n_patients_reports": int(sum(p for p in per_report if np.isfinite(p))),
        "patients_basis": "each patient group counted once, by its largest report",
    }
