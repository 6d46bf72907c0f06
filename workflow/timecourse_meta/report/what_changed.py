"""What changed between two snapshots (`timecourse_meta.report.snapshot`): the report a living review gives
with each update.

`compare(before, now)` lists, one row per change (columns `COLUMNS`), in this order:

* `file_changed`, `config_changed`: a raw sheet or review file, or the resolved config, whose SHA-256 differs
  (or which is new or gone);
* `study_added`, `study_removed`, `study_changed` (its studies-sheet row), `study_rows_changed` (its outcome
  rows), by study id; `row_added`, `row_removed`, `row_changed`, by outcome-row id;
* `estimate_moved`: an estimate (outcome x set x visit x quantity [x study]) whose difference exceeds its Monte
  Carlo error, |b - a| > 2 x sqrt(mcse_a^2 + mcse_b^2) (`moved_beyond_mc_error`); with both MCSEs 0 (a study's
  own estimate) any difference is a move; `estimate_added`, `estimate_removed`;
* `conclusion_changed`: P(improvement) >= 0.95 (clear improvement) or <= 0.05 (clear worsening) on one side
  and not the same on the other (`conclusion`);
* `became_poolable`, `stopped_poolable`: an outcome x set x visit reported by >= 2 studies now and by fewer
  before (or the reverse), the studies counted as the largest n_studies of its estimates.

`markdown(changes, ...)` writes the report; an unchanged rerun says "No change".
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from timecourse_meta.report.format import fmt_count, fmt_number

COLUMNS = ["kind", "item", "before", "after", "detail"]
CLEAR = 0.95
NOTHING_TO_COMPARE = "There is no earlier snapshot to compare with"
MC_RULE = ("an estimate moved when |after - before| > 2 x sqrt(MCSE_before^2 + MCSE_after^2), MCSE being the "
           "Monte Carlo standard error of each run's estimate")
SECTIONS = [
    ("Inputs", ("file_changed", "config_changed")),
    ("Studies", ("study_added", "study_removed", "study_changed", "study_rows_changed")),
    ("Outcome rows", ("row_added", "row_removed", "row_changed")),
    ("Conclusions", ("conclusion_changed",)),
    ("Poolable outcomes", ("became_poolable", "stopped_poolable")),
    ("Estimates", ("estimate_moved", "estimate_added", "estimate_removed")),
]
KIND_WORDS = {"file_changed": "file changed", "config_changed": "resolved config changed",
              "study_added": "study added", "study_removed": "study removed",
              "study_changed": "studies-sheet row changed", "study_rows_changed": "outcome rows changed",
              "row_added": "row added", "row_removed": "row removed", "row_changed": "row changed",
              "estimate_moved": "moved beyond Monte Carlo error", "estimate_added": "new estimate",
              "estimate_removed": "estimate gone", "conclusion_changed": "conclusion changed",
              "became_poolable": "became poolable", "stopped_poolable": "no longer poolable"}


def empty() -> pd.DataFrame:
    return pd.DataFrame(columns=COLUMNS)


def moved_beyond_mc_error(a: float, b: float, mcse_a: float, mcse_b: float) -> bool:
    """|b - a| > 2 x sqrt(mcse_a^2 + mcse_b^2) (both MCSEs 0: any difference)."""
    return abs(b - a) > 2.0 * math.sqrt(mcse_a ** 2 + mcse_b ** 2)


def conclusion(p_improvement) -> str | None:
    """'clear improvement' (P >= 0.95), 'clear worsening' (P <= 0.05), 'no clear change'; None without P."""
    if p_improvement is None or not math.isfinite(float(p_improvement)):
        return None
    p = float(p_improvement)
    return "clear improvement" if p >= CLEAR else "clear worsening" if p <= 1 - CLEAR else "no clear change"


def _keyed(kind: str, a: Mapping, b: Mapping, value=lambda x: x) -> list[dict]:
    rows = []
    for key in sorted(set(a) | set(b)):
        if key not in a:
            rows.append({"kind": kind.format("added"), "item": key, "before": "", "after": ""})
        elif key not in b:
            rows.append({"kind": kind.format("removed"), "item": key, "before": "", "after": ""})
        elif value(a[key]) != value(b[key]):
            rows.append({"kind": kind.format("changed"), "item": key, "before": "", "after": ""})
    return rows


def _f(x) -> float:
    return math.nan if x is None else float(x)


def _estimate_changes(a: Mapping, b: Mapping) -> list[dict]:
    rows = []
    for key in sorted(set(a) | set(b)):
        if key not in a or key not in b:
            kind, e = ("estimate_added", b[key]) if key not in a else ("estimate_removed", a[key])
            rows.append({"kind": kind, "item": key, "before": _g(a.get(key, {}).get("estimate")),
                         "after": _g(b.get(key, {}).get("estimate")), "detail": e.get("evidence", "")})
            continue
        x, y = a[key], b[key]
        ea, eb = _f(x.get("estimate")), _f(y.get("estimate"))
        ma, mb = _f(x.get("mcse")) if x.get("mcse") is not None else 0.0, \
            _f(y.get("mcse")) if y.get("mcse") is not None else 0.0
        if math.isfinite(ea) and math.isfinite(eb) and moved_beyond_mc_error(ea, eb, ma, mb):
            rows.append({"kind": "estimate_moved", "item": key, "before": _g(ea), "after": _g(eb),
                         "detail": f"difference {_g(eb - ea)}; Monte Carlo threshold "
                                   f"{_g(2 * math.sqrt(ma ** 2 + mb ** 2))}"})
        ca, cb = conclusion(x.get("p_improvement")), conclusion(y.get("p_improvement"))
        if ca and cb and ca != cb and "clear" in (ca + cb).replace("no clear", ""):
            rows.append({"kind": "conclusion_changed", "item": key, "before": ca, "after": cb,
                         "detail": f"P(improvement) {_g(x.get('p_improvement'))} -> {_g(y.get('p_improvement'))}"})
    return rows


def _poolable_changes(a: Mapping, b: Mapping) -> list[dict]:
    def studies_at(estimates):
        out: dict[str, int] = {}
        for e in estimates.values():
            v = e.get("visit_months")
            key = f"{e['outcome']}|{e['study_set']}|{'' if v is None else format(float(v), 'g')}"
            out[key] = max(out.get(key, 0), e.get("n_studies") or 0)
        return out

    na, nb = studies_at(a), studies_at(b)
    rows = []
    for key in sorted(set(na) | set(nb)):
        x, y = na.get(key, 0), nb.get(key, 0)
        if (x >= 2) != (y >= 2):
            rows.append({"kind": "became_poolable" if y >= 2 else "stopped_poolable", "item": key,
                         "before": fmt_count(x), "after": fmt_count(y), "detail": "studies at this visit"})
    return rows


def _g(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    return fmt_number(float(x), 4) if isinstance(x, float) else str(x)


def compare(before: Mapping, now: Mapping) -> pd.DataFrame:
    """Every change from snapshot `before` to snapshot `now` (see the module docstring)."""
    rows = _keyed("file_{}", before.get("files", {}), now.get("files", {}))
    for r in rows:
        r["kind"] = "file_changed"
        r["detail"] = "new" if r["item"] not in before.get("files", {}) else \
            "gone" if r["item"] not in now.get("files", {}) else "content changed"
    if before.get("config") != now.get("config"):
        rows.append({"kind": "config_changed", "item": "resolved config", "before": "", "after": ""})
    sa, sb = before.get("studies", {}), now.get("studies", {})
    rows += [r for r in _keyed("study_{}", sa, sb, lambda s: s.get("row")) if r["kind"] != "study_changed"
             or sa[r["item"]].get("row") != sb[r["item"]].get("row")]
    rows += [{"kind": "study_rows_changed", "item": k, "before": "", "after": ""} for k in sorted(set(sa) & set(sb))
             if sa[k].get("outcome_rows") != sb[k].get("outcome_rows")]
    ra, rb = before.get("rows", {}), now.get("rows", {})
    for r in _keyed("row_{}", ra, rb, lambda x: x.get("hash")):
        r["detail"] = f"study {(rb.get(r['item']) or ra.get(r['item']))['study_id']}"
        rows.append(r)
    ea, eb = before.get("estimates", {}), now.get("estimates", {})
    rows += _estimate_changes(ea, eb) + _poolable_changes(ea, eb)
    frame = pd.DataFrame(rows, columns=COLUMNS).fillna("")
    order = {k: i for i, (_, kinds) in enumerate(SECTIONS) for k in kinds}
    return frame.sort_values(["kind", "item"], key=lambda s: s.map(order) if s.name == "kind" else s,
                             kind="stable").reset_index(drop=True)


def _many(n: int, one: str, many: str) -> str:
    return f"{fmt_count(n)} {one if n == 1 else many}"


def counts_phrase(changes: pd.DataFrame) -> str:
    """The changes counted in words ('1 report added and 0 removed; ...')."""
    count = changes["kind"].value_counts() if len(changes) else pd.Series(dtype=int)

    def n(*kinds):
        return int(sum(count.get(k, 0) for k in kinds))

    return "; ".join([
        f"{_many(n('study_added'), 'report', 'reports')} added and {fmt_count(n('study_removed'))} removed",
        f"{_many(n('row_added'), 'outcome row', 'outcome rows')} added, {fmt_count(n('row_removed'))} removed and "
        f"{fmt_count(n('row_changed'))} changed",
        f"{_many(n('estimate_moved'), 'estimate', 'estimates')} moved beyond Monte Carlo error",
        f"{_many(n('conclusion_changed'), 'conclusion', 'conclusions')} changed",
        f"{_many(n('became_poolable'), 'outcome visit', 'outcome visits')} became poolable and "
        f"{fmt_count(n('stopped_poolable'))} stopped being poolable"])


def summary_sentence(changes: pd.DataFrame, *, compared: bool, before: str | None = None) -> str:
    """One sentence for the manuscript: what the report found."""
    if not compared:
        return ("there is no earlier recorded snapshot of this review to compare with, so nothing is reported as "
                "changed")
    if changes.empty:
        return f"nothing changed since the recorded snapshot {before}"
    return f"since the recorded snapshot {before}: {counts_phrase(changes)}"


def status_of(report_text: str) -> tuple[str, str | None]:
    """(status, snapshot compared with) of a what-changed report written by `markdown`: status `none` (nothing
    to compare with), `unchanged` or `changed`."""
    import re

    if report_text.startswith(NOTHING_TO_COMPARE):
        return "none", None
    found = re.search(r"snapshot `([^`]+)`", report_text)
    return ("unchanged" if report_text.startswith("No change") else "changed"), found.group(1) if found else None


def markdown(changes: pd.DataFrame, *, compared: bool, before: str | None = None) -> str:
    """The what-changed report as Markdown (readable alone and when included in the manuscript)."""
    if not compared:
        return (f"{NOTHING_TO_COMPARE}: none is recorded in the snapshots folder (config "
                "`update.snapshots_dir`) and config `update.compare_with` names none. Record this run's snapshot "
                "to compare the next update with it.\n")
    if changes.empty:
        return (f"No change: the sheets, the review files, the resolved config and every estimate are the same as "
                f"in the snapshot `{before}` (rule: {MC_RULE}).\n")
    lines = [f"Compared with the snapshot `{before}`: {counts_phrase(changes)}. Rule: {MC_RULE}; a conclusion "
             "is a clear improvement when P(improvement) >= 0.95 and a clear worsening when P(improvement) <= "
             "0.05. Estimates are named outcome|study set|visit (months)|quantity|study (empty for a pooled "
             "estimate); outcome visits outcome|study set|visit.", ""]
    for title, kinds in SECTIONS:
        part = changes[changes["kind"].isin(kinds)]
        if part.empty:
            continue
        lines += [f"**{title}**", ""]
        for r in part.to_dict("records"):
            facts = ", ".join(x for x in (f"{r['before']} -> {r['after']}" if r["before"] or r["after"] else "",
                                          r["detail"]) if x)
            lines.append(f"- {KIND_WORDS[r['kind']]}: `{r['item']}`" + (f" ({facts})" if facts else ""))
        lines.append("")
    return "\n".join(lines)
