"""The safety block of a study set (`<set>.safety.*`), from its safety table (results/tables/S/safety.csv).

Counts only: the table itself is included in the text, and the pooled incidence of a pooled safety outcome is
its binary outcome's block (`<set>.<outcome>.summary`), from the same model.
"""

from __future__ import annotations

import pandas as pd

from timecourse_meta.manuscript.variables.context import Collector, Context, read_csv
from timecourse_meta.manuscript.variables.words import join_words
from timecourse_meta.report import safety
from timecourse_meta.report.format import fmt_count

KEYS = ("n_studies", "n_rows", "n_related", "n_not_related", "n_not_stated", "n_pooled_rows")


def put_safety(c: Collector, ctx: Context, s: str, prefixes: list[str]) -> None:
    """`safety.<count>` and `safety.studies` (the studies that report any adverse event, in words)."""
    path = ctx.files.safety.get(s)  # None: config safety.outcomes is empty
    frame = read_csv(path, dtype=str, keep_default_na=False) if path is not None else None

    def put(suffix, value, raw_rows=()):
        c.put([f"{p}.safety.{suffix}" for p in prefixes], value, kind="data",
              files=[path] if path is not None else [ctx.files.config], raw_rows=raw_rows)

    if frame is None:
        for key in (*KEYS, "studies"):
            put(key, "not reported (no safety table)")
        return
    rows = [ctx.raw_index.get(r, {"row_id": r}) for r in frame["row_id"]]
    numbers = safety.counts(frame if len(frame) else pd.DataFrame(columns=safety.EVENT_COLUMNS))
    for key in KEYS:
        put(key, fmt_count(numbers[key]), raw_rows=rows)
    names = [ctx.labels.get(i, i) for i in dict.fromkeys(frame["study_id"])]
    put("studies", join_words(names) if names else "none", raw_rows=rows)
