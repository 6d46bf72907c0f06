"""The living review's rules: the PRISMA flow of each study set, the run's snapshot and the what-changed report.

One `run_<rule>` per rule, keyword-only parameters named after the rule's files (see steps.runner).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from timecourse_meta.core import atomic  # noqa: E402
from timecourse_meta.core import review as review_mod  # noqa: E402
from timecourse_meta.report import prisma  # noqa: E402
from timecourse_meta.report import snapshot as snapshot_mod  # noqa: E402
from timecourse_meta.report import what_changed as what_changed_mod  # noqa: E402
from timecourse_meta.report.plots import common as plot_common  # noqa: E402
from timecourse_meta.report.plots.prisma import prisma_figure  # noqa: E402


def search_names(review: Mapping) -> dict[str, str]:
    """Search id -> its description (config `review.searches`; absent: none)."""
    out = {}
    for sid, spec in (review.get("searches") or {}).items():
        out[str(sid)] = str(spec.get("description") or spec.get("name") or sid) if isinstance(spec, Mapping) \
            else str(spec)
    return out


def run_prisma(*, studies: str, outcomes: str, table: str, vocabulary: str, study_set: str, png: str, csv: str,
               review: Mapping) -> None:
    """The set's PRISMA 2020 counts (CSV, every box with its definition) and its flow diagram (PNG + SVG)."""
    sheet = pd.read_csv(studies, dtype=str, keep_default_na=False)
    usable = prisma.usable_studies(pd.read_csv(outcomes, dtype=str, keep_default_na=False),
                                   pd.read_csv(table, dtype={"study_id": str}))
    flow = prisma.prisma_flow(sheet, usable, study_set)
    atomic.write_csv(csv, flow.table())
    fig = prisma_figure(flow, set_name=review_mod.set_name({"review": review}, study_set),
                        search_names=search_names(review), labels=prisma.exclusion_labels(vocabulary))
    plot_common.save_figure(fig, Path(png).with_suffix(""))
    plt.close(fig)


def run_snapshot(*, files: list, config: str, studies: str, outcomes: str, summaries: list, diagnostics: list,
                 pairs: list, out: str) -> None:
    """The run's snapshot (see timecourse_meta.report.snapshot)."""
    snap = snapshot_mod.build_snapshot(
        files=list(files), config=config, studies=studies, outcomes=outcomes,
        results={tuple(p): (s, d) for p, s, d in zip(pairs, summaries, diagnostics)})
    atomic.write_text(out, snapshot_mod.dumps(snap))


def run_what_changed(*, current: str, md: str, csv: str, compare_with: str | None = None) -> None:
    """The what-changed report between the current snapshot and `compare_with` (None or "": nothing to compare
    with)."""
    now = snapshot_mod.load(current)
    before = snapshot_mod.load(compare_with) if compare_with else None
    changes = what_changed_mod.compare(before, now) if before is not None else what_changed_mod.empty()
    atomic.write_csv(csv, changes)
    atomic.write_text(md, what_changed_mod.markdown(changes, before=compare_with, compared=before is not None))
