"""The safety table of a study set (rule `safety_table`)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

from timecourse_meta.core import atomic
from timecourse_meta.core import review as review_mod
from timecourse_meta.data import dictionary as dictionary_mod
from timecourse_meta.data import harmonise
from timecourse_meta.report import safety, tables

EVENT_HEADERS = {"study": "Study", "arm": "Arm", "event": "Event (as reported)", "count": "Count",
                 "timing": "Timing", "relation": "Relation (authors' judgement)", "pooled": "Pooled",
                 "row_id": "Row"}
POOLED_HEADERS = {"outcome": "Event", "follow_up_months": "Follow-up (months)", "estimate": "Incidence",
                  "what_it_is": "What the number is", "n_studies": "Studies", "n_patients": "Patients"}


def run_safety_table(*, outcomes: str, studies: str, dictionary: str, summaries: list, study_set: str, csv: str,
                     md: str, pooled_csv: str, pooled_md: str, review: Mapping, safety_outcomes: list,
                     pooled_outcomes: list) -> None:
    """Adverse events by study (CSV and Markdown) and the pooled incidence of the pooled safety outcomes."""
    sheet = pd.read_csv(outcomes, dtype=str, keep_default_na=False)
    study_sheet = pd.read_csv(studies, dtype=str, keep_default_na=False)
    ids = harmonise.study_sets(study_sheet).get(study_set, [])
    labels = tables.study_labels(study_sheet)
    spec = dictionary_mod.load(dictionary)
    outcome_labels = {name: o.label for name, o in spec.items()}
    events = safety.events_table(sheet, ids, safety_outcomes, labels=labels, outcome_labels=outcome_labels,
                                 arms=review_mod.arms({"review": review}), pooled_outcomes=pooled_outcomes)
    read = {o: (pd.read_csv(p, dtype={"study_id": str}) if Path(p).is_file() else None)
            for o, p in zip(pooled_outcomes, summaries)}
    pooled = safety.pooled_table(read, outcome_labels)
    atomic.write_csv(csv, events)
    atomic.write_text(md, tables.markdown_table(events.drop(columns=["study_id", "outcome"]).rename(
        columns=EVENT_HEADERS)))
    atomic.write_csv(pooled_csv, pooled)
    atomic.write_text(pooled_md, tables.markdown_table(pooled.rename(columns=POOLED_HEADERS)))
