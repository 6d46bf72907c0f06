"""The study-selection and update blocks: each study set's PRISMA 2020 counts (`<set>.prisma.*`, from
`results/tables/S/prisma_counts.csv`) and what changed since the recorded snapshot (`update.*`, from
`results/update/what_changed.csv` and `.md`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from timecourse_meta.manuscript.variables.context import Collector, Context, VariablesError
from timecourse_meta.manuscript.variables.words import join_words
from timecourse_meta.report import what_changed
from timecourse_meta.report.format import fmt_count
from timecourse_meta.report.prisma import label_of

TOTALS = {"n_records": "records", "n_reports_collated": "overlap", "n_studies_assessed": "studies",
          "n_excluded": "excluded"}


def put_prisma(c: Collector, ctx: Context, s: str, prefixes: list[str], labels: dict[str, str]) -> None:
    """`prisma.box.<box>` for every box (dots as underscores), the totals over the searches (`n_records`,
    `n_reports_collated`, `n_studies_assessed`, `n_excluded`, `n_included`, `n_included_reports`, `n_searches`),
    `records_by_type` and `excluded_reasons` in words, and `sentence`, the flow in one sentence."""
    path = ctx.files.prisma[s]
    counts = pd.read_csv(path, dtype={"box": str, "search": str, "definition": str})
    if not {"box", "count"} <= set(counts.columns):
        raise VariablesError(f"{path}: expected the columns box and count of the prisma rule's table")
    boxes = dict(zip(counts["box"], counts["count"].astype(int)))
    searches = list(dict.fromkeys(b.split(".")[0] for b in boxes if b.count(".") == 1 and b.endswith(".records")))

    rows = ctx.study_rows(ctx.studies["study_id"].tolist())  # the flow counts every row of the studies sheet

    def put(suffix, value):
        c.put([f"{p}.prisma.{suffix}" for p in prefixes], value, kind="data", files=[path, ctx.files.studies],
              raw_rows=rows,
              note="PRISMA 2020 flow counts of the studies sheet (prisma_counts.csv gives each box's definition)")

    for box, n in boxes.items():
        put(f"box.{box.replace('.', '_')}", fmt_count(n))
    for key, part in TOTALS.items():
        put(key, fmt_count(sum(boxes.get(f"{x}.{part}", 0) for x in searches)))
    included = boxes.get("total.included", sum(boxes.get(f"{x}.included", 0) for x in searches))
    reports = boxes.get("total.included_reports", sum(boxes.get(f"{x}.included_reports", 0) for x in searches))
    put("n_included", fmt_count(included))
    put("n_included_reports", fmt_count(reports))
    put("n_searches", fmt_count(len(searches)))
    by_type = _summed(boxes, searches, "records")
    put("records_by_type", join_words([f"{fmt_count(n)} {label_of(k, labels)}" for k, n in by_type.items()]))
    reasons = _summed(boxes, searches, "excluded")
    reason_words = join_words([f"{label_of(k, labels).lower()} ({fmt_count(n)})" for k, n in reasons.items()])
    put("excluded_reasons", reason_words if reasons else "none")
    total = sum(boxes.get(f"{x}.records", 0) for x in searches)
    overlap = sum(boxes.get(f"{x}.overlap", 0) for x in searches)
    studies = sum(boxes.get(f"{x}.studies", 0) for x in searches)
    excluded = sum(boxes.get(f"{x}.excluded", 0) for x in searches)
    search_words = "" if len(searches) < 2 else " (" + join_words(
        [f"{fmt_count(boxes[f'{x}.records'])} from the {x} search" for x in searches]) + ")"
    put("sentence", f"{fmt_count(total)} records{search_words} were reports of {fmt_count(studies)} studies "
                    f"({fmt_count(overlap)} reports of a patient group already counted were collated into its "
                    f"study); {fmt_count(excluded)} studies were excluded or not analysed"
                    + (f" ({reason_words})" if reasons else "")
                    + f", and {fmt_count(included)} studies with {fmt_count(reports)} reports were included")


def _summed(boxes: dict, searches: list[str], part: str) -> dict[str, int]:
    """Sub-box (record type or reason) -> its count summed over the searches, in first-seen order."""
    out: dict[str, int] = {}
    for x in searches:
        for box, n in boxes.items():
            if box.startswith(f"{x}.{part}."):
                key = box.split(".", 2)[2]
                out[key] = out.get(key, 0) + n
    return {k: n for k, n in out.items() if n}


def put_update(c: Collector, ctx: Context) -> None:
    """`update.status` (none | unchanged | changed), `update.sentence`, and the counts `update.n_changes`,
    `update.n_studies_added`, `update.n_estimates_moved`, `update.n_conclusions_changed`."""
    md, csv = ctx.files.what_changed_md, ctx.files.what_changed_csv
    text = Path(md).read_text(encoding="utf-8")
    changes = pd.read_csv(csv, dtype=str, keep_default_na=False)
    status, before = what_changed.status_of(text)
    files = [md, csv]

    def put(key, value):
        c.put(f"update.{key}", value, kind="derived", files=files,
              note="the what-changed report against the recorded snapshot (config update.compare_with)")

    put("status", status)
    put("sentence", what_changed.summary_sentence(changes, compared=status != "none", before=before))
    counts = changes["kind"].value_counts() if len(changes) else pd.Series(dtype=int)
    put("n_changes", fmt_count(len(changes)))
    for key, kind in (("n_studies_added", "study_added"), ("n_estimates_moved", "estimate_moved"),
                      ("n_conclusions_changed", "conclusion_changed")):
        put(key, fmt_count(int(counts.get(kind, 0))))
