"""PRISMA 2020 flow counts of one study set, from the sheets.

One row of the studies sheet is one report (and one record: the sheets hold the records kept after screening);
reports sharing a `patient_group` are one study (`timecourse_meta.data.linkage`). The flow has one column per
search of the studies sheet's `search` column (`original`, `update`): with one search the plain PRISMA 2020
layout, with both the layout for updated reviews ("previous studies" from the original search, "new studies"
from the update). The flow of a study set covers the searches its reports came from (a set of the original
search alone has the plain layout; the update search's records are not part of its flow). A study belongs to the
original search's column when any of its reports came from it (a new report of an earlier study is a report of
an earlier study, counted once with it).

Each column's boxes (`box` ids, with `c` the search):

* `c.records` and `c.records.<record_type>`: records (reports) identified, by source type;
* `c.overlap`: reports of a patient group already counted (the column's reports minus its studies);
* `c.studies`: studies (patient groups) assessed;
* `c.excluded` and `c.excluded.<reason>`: studies excluded or not analysed, each in exactly one reason, taken in
  this order: the sheet's `exclusion_reason` (when no report of the study is eligible: the first report's
  reason), then `no_usable_rows` (no eligible report of the study has a usable outcome row that reached the
  harmonised analysis table; the recorded reason `no_usable_data` is the team's decision), then `not_in_set` (the study is eligible but no report of it names this study set);
* `c.included` and `c.included_reports`: studies in this set's analysis and their reports;
* with two searches, `total.included` and `total.included_reports`.

Columns read tolerantly (the sheets may predate them): a missing `record_type` is `journal_article`, a missing
`search` is `original`, a missing `exclusion_reason` is empty (eligible).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from timecourse_meta.data.linkage import groups_of

SEARCHES = ("original", "update")
RECORD_TYPES = ("journal_article", "conference_abstract", "thesis", "registry_record", "secondary_table",
                "news_summary")
REASONS = ("registry_no_results", "outside_question", "no_usable_data")
NO_USABLE_ROWS = "no_usable_rows"  # derived from the outcomes sheet, not a recorded exclusion_reason
NOT_IN_SET = "not_in_set"
RECORD_WORDS = {"journal_article": "journal articles", "conference_abstract": "conference abstracts",
                "thesis": "theses", "registry_record": "trial registry records",
                "secondary_table": "another review's tables", "news_summary": "news summaries"}
REASON_WORDS = {"registry_no_results": "registry record only (ongoing or no results)",
                "outside_question": "outside the review question",
                "no_usable_data": "no usable data (the review team's decision)",
                NO_USABLE_ROWS: "no usable outcome row in the sheets",
                NOT_IN_SET: "not in this study set"}
SEARCH_WORDS = {"original": "previous studies", "update": "new studies"}
COLUMNS = ["box", "search", "stage", "count", "definition"]


@dataclass(frozen=True)
class Flow:
    """The counts of one study set: `boxes` (box id -> count, in drawing order), `definitions` (box id -> words),
    `final` (study -> its one final box), `searches` (the columns, in order)."""

    study_set: str
    searches: tuple[str, ...]
    boxes: dict
    definitions: dict
    final: dict

    def table(self) -> pd.DataFrame:
        """prisma_counts.csv: every box's count with its definition."""
        rows = [{"box": b, "search": b.split(".")[0], "stage": _stage(b), "count": int(n),
                 "definition": self.definitions[b]} for b, n in self.boxes.items()]
        return pd.DataFrame(rows, columns=COLUMNS)


def _stage(box: str) -> str:
    part = box.split(".")[1]
    return {"records": "identification", "overlap": "screening", "studies": "screening",
            "excluded": "screening"}.get(part, "included")


def _cell(row: Mapping, column: str, default: str) -> str:
    value = row.get(column)
    text = "" if value is None or (isinstance(value, float) and value != value) else str(value).strip()
    return text if text and text.lower() != "nan" else default


def usable_studies(outcomes: pd.DataFrame, analysis_table: pd.DataFrame | None = None) -> set[str]:
    """Reports with at least one outcome row marked usable (`usable` = yes) that reached the analysis table."""
    usable = outcomes["usable"].astype(str).str.strip().str.lower().isin(["yes", "true", "1"]) \
        if "usable" in outcomes else pd.Series(True, index=outcomes.index)
    ids = set(outcomes.loc[usable, "study_id"].astype(str))
    if analysis_table is not None:
        ids &= set(analysis_table["study_id"].astype(str))
    return ids


def _members(sets_cell: str) -> set[str]:
    return {s.strip() for s in str(sets_cell).split(";") if s.strip()}


def prisma_flow(studies: pd.DataFrame, usable: Iterable[str], study_set: str) -> Flow:
    """The PRISMA 2020 counts of `study_set` (see the module docstring for each box)."""
    usable = {str(u) for u in usable}
    records = studies.to_dict("records")
    groups = groups_of(studies)
    report = {str(r["study_id"]): {
        "search": _cell(r, "search", "original"), "type": _cell(r, "record_type", "journal_article"),
        "reason": _cell(r, "exclusion_reason", ""), "sets": _members(r.get("study_sets", "")),
    } for r in records}
    drawn_from = {x["search"] for x in report.values() if study_set in x["sets"]} or \
        {x["search"] for x in report.values()}
    report = {sid: x for sid, x in report.items() if x["search"] in drawn_from}
    searches = tuple(s for s in SEARCHES if s in drawn_from) or ("original",)
    searches += tuple(sorted(drawn_from - set(searches)))
    by_group: dict[str, list[str]] = {}
    for sid in report:
        by_group.setdefault(groups[sid], []).append(sid)
    column_of = {g: next((s for s in searches if any(report[m]["search"] == s for m in ms)), searches[0])
                 for g, ms in by_group.items()}
    final = {g: _final_box(ms, report, usable, study_set) for g, ms in by_group.items()}
    boxes, words = {}, {}
    for c in searches:
        _column(c, report, by_group, column_of, final, boxes, words, study_set)
    if len(searches) > 1:
        inc = [g for g, box in final.items() if box == "included"]
        boxes["total.included"] = len(inc)
        words["total.included"] = f"studies in the analysis of study set {study_set}, from all searches"
        boxes["total.included_reports"] = sum(len(by_group[g]) for g in inc)
        words["total.included_reports"] = "reports of those studies"
    final_box = {g: f"{column_of[g]}.{'included' if b == 'included' else 'excluded.' + b}" for g, b in final.items()}
    return Flow(study_set=study_set, searches=searches, boxes=boxes, definitions=words, final=final_box)


def _final_box(members: list[str], report: Mapping, usable: set, study_set: str) -> str:
    """One study's final box: a recorded exclusion reason, no usable data, not in the set, or included."""
    eligible = [m for m in members if not report[m]["reason"]]
    if not eligible:
        return report[members[0]]["reason"]
    if not any(m in usable for m in eligible):
        return NO_USABLE_ROWS
    if not any(study_set in report[m]["sets"] for m in eligible):
        return NOT_IN_SET
    return "included"


def _column(c: str, report: Mapping, by_group: Mapping, column_of: Mapping, final: Mapping, boxes: dict,
            words: dict, study_set: str) -> None:
    """The boxes of one search's column."""
    mine = [sid for sid, x in report.items() if x["search"] == c]
    studies = [g for g in by_group if column_of[g] == c]
    boxes[f"{c}.records"] = len(mine)
    words[f"{c}.records"] = (f"records identified by the {c} search and kept after screening (rows of the "
                             "studies sheet; each record is one report)")
    seen_types = [t for t in RECORD_TYPES if any(report[s]["type"] == t for s in mine)]
    seen_types += sorted({report[s]["type"] for s in mine} - set(RECORD_TYPES))
    for t in seen_types:
        boxes[f"{c}.records.{t}"] = sum(report[s]["type"] == t for s in mine)
        words[f"{c}.records.{t}"] = f"records of source type {t} ({RECORD_WORDS.get(t, t)})"
    boxes[f"{c}.overlap"] = len(mine) - len(studies)
    words[f"{c}.overlap"] = ("reports of a patient group already counted (the same, overlapping or later-followed "
                             "patients of another report): collated into one study")
    boxes[f"{c}.studies"] = len(studies)
    words[f"{c}.studies"] = "studies (patient groups) assessed for this study set"
    known = (*REASONS, NO_USABLE_ROWS, NOT_IN_SET)
    reasons = [r for r in known if any(final[g] == r for g in studies)]
    reasons += sorted({final[g] for g in studies} - {*known, "included"})
    boxes[f"{c}.excluded"] = sum(final[g] != "included" for g in studies)
    words[f"{c}.excluded"] = "studies excluded or not analysed in this study set (each with one reason)"
    for r in reasons:
        boxes[f"{c}.excluded.{r}"] = sum(final[g] == r for g in studies)
        words[f"{c}.excluded.{r}"] = f"studies excluded or not analysed: {REASON_WORDS.get(r, r)}"
    included = [g for g in studies if final[g] == "included"]
    boxes[f"{c}.included"] = len(included)
    words[f"{c}.included"] = f"studies included in the analysis of study set {study_set}"
    boxes[f"{c}.included_reports"] = sum(len(by_group[g]) for g in included)
    words[f"{c}.included_reports"] = "reports of the included studies"


def label_of(box: str, labels: Mapping[str, str] | None = None) -> str:
    """A reader's words for a record type or exclusion reason box (the vocabulary's labels first, for the
    recorded reasons)."""
    key = box.split(".")[-1]
    labels = labels or {}
    return labels.get(key) or RECORD_WORDS.get(key) or REASON_WORDS.get(key) or key.replace("_", " ")


def exclusion_labels(vocabulary: str | Path) -> dict[str, str]:
    """Exclusion reason -> its label (the vocabulary file's `exclusion_reasons`; a vocabulary without it: none)."""
    data = yaml.safe_load(Path(vocabulary).read_text(encoding="utf-8")) or {}
    out = {}
    for code, spec in (data.get("exclusion_reasons") or {}).items():
        out[str(code)] = str(spec.get("label", code)) if isinstance(spec, Mapping) else str(spec)
    return out
