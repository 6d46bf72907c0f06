"""Tables of the review: study characteristics (Table 1), critical appraisal, summary of findings, and the
per-study observed changes that the forest plots and the claims check read.

Every function takes plain pandas DataFrames (columns documented in its docstring) and returns a DataFrame of
display strings; nothing here reads the model's files. `write_table(frame, stem)` writes `stem.csv` and a
Markdown pipe table `stem.md` (for the manuscript) atomically.

Every number is formatted by `timecourse_meta.report.format`. Arm names, design, checklist and judgement
labels and the review's own columns of the characteristics table come from the review (`core.review`: `Arms`,
`Vocabulary`), never from this module.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from timecourse_meta.core import atomic
from timecourse_meta.core.review import Arms, Vocabulary
from timecourse_meta.report.format import DASH, fmt_months, fmt_number, months_text

# ----------------------------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------------------------

def _missing(x: Any) -> bool:
    if x is None:
        return True
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def _num(x: Any) -> float:
    if _missing(x):
        return math.nan
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _text(x: Any, default: str = "") -> str:
    """Stripped text; `default` for missing or blank cells."""
    return default if _missing(x) or not str(x).strip() else str(x).strip()


def _spec(dictionary: Mapping | None, outcome: str) -> dict:
    """label / canonical_unit / direction_of_benefit of one outcome, from an `dictionary.Outcome` or a dict."""
    entry = (dictionary or {}).get(outcome)
    out = {"label": outcome, "canonical_unit": "", "direction_of_benefit": "none", "kind": ""}
    if entry is None:
        return out
    for key in out:
        value = entry.get(key) if isinstance(entry, Mapping) else getattr(entry, key, None)
        if value is not None:
            out[key] = value
    return out


def midsentence(label: str) -> str:
    """'Pain score' -> 'pain score' inside a sentence; 'HbA1c', 'ANA titre' stay."""
    if len(label) > 1 and label[0].isupper() and label[1].islower():
        return label[0].lower() + label[1:]
    return label


# ----------------------------------------------------------------------------------------------------------------
# Markdown and writing
# ----------------------------------------------------------------------------------------------------------------

def _md_cell(x: Any) -> str:
    if _missing(x):
        return ""
    s = str(x).replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    return s.strip()


def column_widths(frame: pd.DataFrame, narrowest: int = 4, widest: int = 30, gutter: int = 2) -> list[int]:
    """Relative column widths for a pipe table, as dash counts of its separator line: Pandoc sizes the columns of
    a wide table in proportion to them (PDF, DOCX). Each column gets room for its longest word (header included),
    for its short cells (up to 14 characters, such as study labels) on one line, and for most of its typical
    cell, within [narrowest, widest], plus `gutter` for the space between columns."""
    out = []
    for c in frame.columns:
        texts = [str(c)] + ["" if _missing(v) else str(v) for v in frame[c]]
        longest_word = max((len(w) for t in texts for w in t.split()), default=1)
        typical = float(np.mean([len(t) for t in texts[1:]])) if len(texts) > 1 else len(str(c))
        short_cells = max((len(t) for t in texts[1:] if len(t) <= 14), default=0)  # e.g. 'Barbado 2018': one line
        out.append(int(min(widest, max(narrowest, longest_word, short_cells, 0.6 * typical))) + gutter)
    return out


def markdown_table(frame: pd.DataFrame) -> str:
    """The frame as a Pandoc/GitHub pipe table (numeric columns right-aligned, '|' escaped, no index; the
    separator's dash counts give the relative column widths, `column_widths`)."""
    headers = [_md_cell(c) for c in frame.columns]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in frame.columns]
    widths = column_widths(frame)
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join(("-" * (w - 1) + ":") if num else (":" + "-" * (w - 1))
                            for num, w in zip(numeric, widths)) + "|"]
    for row in frame.itertuples(index=False):
        cells = []
        for value, num in zip(row, numeric):
            if num and not _missing(value):
                v = float(value)
                cells.append(f"{int(v)}" if v.is_integer() else f"{v:g}")
            else:
                cells.append(_md_cell(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_table(frame: pd.DataFrame, stem: str | os.PathLike) -> list[str]:
    """Write `stem.csv` and `stem.md` (pipe table), each atomically; returns the two paths."""
    stem = str(stem)
    for ext in (".csv", ".md"):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
    atomic.write_csv(stem + ".csv", frame)
    atomic.write_text(stem + ".md", markdown_table(frame))
    return [stem + ".csv", stem + ".md"]


# ----------------------------------------------------------------------------------------------------------------
# Study labels and sets
# ----------------------------------------------------------------------------------------------------------------

def study_label(row: Mapping) -> str:
    """'Smith 2017' from first_author 'Smith J' and year 2017; a group name without a year keeps its study_id."""
    author = _text(row.get("first_author"))
    year = _num(row.get("year"))
    sid = _text(row.get("study_id"))
    if author.startswith("(") and author.endswith(")"):
        author = author[1:-1].strip()
        surname = author
    else:
        parts = author.split()
        # 'Smith J', 'Ng JX': drop trailing initials (all capitals, at most 3 letters)
        while len(parts) > 1 and parts[-1].isupper() and len(parts[-1]) <= 3:
            parts = parts[:-1]
        surname = " ".join(parts)
    if not surname:
        return sid
    if np.isfinite(year):
        return f"{surname} {int(year)}"
    return f"{surname} (n.d.)"


def study_labels(studies: pd.DataFrame) -> dict[str, str]:
    """study_id -> display label for every row of the studies sheet (labels made unique with a, b, ...)."""
    labels = {r["study_id"]: study_label(r) for r in studies.to_dict("records")}
    seen: dict[str, list[str]] = {}
    for sid, lab in labels.items():
        seen.setdefault(lab, []).append(sid)
    for lab, ids in seen.items():
        if len(ids) > 1:  # 'Wang 2014a', 'Wang 2014b' (sheet order), as in author-year citation
            for i, sid in enumerate(ids):
                labels[sid] = f"{lab}{chr(ord('a') + i)}"
    return labels


def _excluded(row) -> bool:
    from timecourse_meta.data.harmonise import excluded  # the one rule of which records are analysed

    return excluded(row)


def studies_in_set(studies: pd.DataFrame, study_set: str | None) -> pd.DataFrame:
    """Analysed rows of the studies sheet in `study_set` (the `;`-separated `study_sets` column; a row with an
    `exclusion_reason` is a record of the set, never analysed); all analysed rows if None."""
    if "exclusion_reason" in studies:
        studies = studies[~studies.apply(_excluded, axis=1)] if len(studies) else studies
    if study_set is None:
        return studies.copy()
    mask = studies["study_sets"].fillna("").astype(str).map(lambda s: study_set in [x.strip() for x in s.split(";")])
    return studies[mask].copy()


# ----------------------------------------------------------------------------------------------------------------
# Per-study observed changes (forest plots, trajectory points, claims check)
# ----------------------------------------------------------------------------------------------------------------

OBSERVED_COLUMNS = ["study_id", "label", "outcome", "arm", "cohort", "time_months", "n", "estimate", "lower",
                    "upper", "unit", "basis", "analysis_ids"]


def observed_changes(table: pd.DataFrame, study_ids: Iterable[str] | None = None, *, arm: str,
                     labels: Mapping[str, str] | None = None, level: float = 0.95,
                     include_median_only: bool = False) -> pd.DataFrame:
    """Each study's observed change from baseline per outcome, cohort and visit, with a t-based CI.

    Input: the harmonised analysis table (docs/analysis_table.md). Used rows: `arm == arm` (the review's
    intervention arm id, `Arms.intervention.id`), continuous,
    `measure == change_from_baseline`, `poolable`, time > 0 (reported and derived change scores: a derived one was
    computed by harmonisation from a baseline and a follow-up mean with the assumed within-person correlation,
    which `basis` says). CI: mean +/- t_{n-1} * sd / sqrt(n); for a change reported only as an estimate with its
    SE (no n, no SD), mean +/- z * se.

    With `include_median_only` (for the claims check, not for plots), a cohort reported only as medians without
    spread at baseline and at a visit adds a row with the difference of medians as `estimate`, no interval
    (`lower`/`upper` NaN) and `unit` 'as reported' (such medians may be in another unit or none), so that the check
    can say the study reported something that cannot be given an interval.

    Returns columns: study_id, label, outcome, arm, cohort, time_months, n, estimate, lower, upper, unit, basis,
    analysis_ids; sorted by outcome, label, time.
    """
    from scipy import stats

    t = table
    if study_ids is not None:
        t = t[t["study_id"].isin(list(study_ids))]
    t = t[t["arm"] == arm]
    labels = dict(labels or {})
    rows = []
    chg = t[(t["measure"] == "change_from_baseline") & (t["kind"] == "continuous")
            & t["poolable"].astype(bool) & (t["time_months"] > 0)]
    for r in chg.to_dict("records"):
        n, m, sd = _num(r["n"]), _num(r["mean"]), _num(r["sd"])
        lo = hi = math.nan
        se = _num(r.get("se"))
        if np.isfinite(n) and n >= 2 and np.isfinite(sd):
            half = stats.t.ppf(1 - (1 - level) / 2, n - 1) * sd / math.sqrt(n)
            lo, hi = m - half, m + half
        elif np.isfinite(se):  # reported as an estimate with its SE only (no n, no SD): a normal interval
            half = stats.norm.ppf(1 - (1 - level) / 2) * se
            lo, hi = m - half, m + half
        if r.get("origin") == "derived":
            basis = "derived from baseline and follow-up means"
            assumptions = list(dict.fromkeys(a.strip() for a in _text(r.get("assumption")).split("; ")
                                             if a.strip()))
            if assumptions:
                basis += f" ({'; '.join(assumptions)})"
        else:
            basis = "change score as reported"
        rows.append({
            "study_id": r["study_id"], "label": labels.get(r["study_id"], r["study_id"]), "outcome": r["outcome"],
            "arm": r["arm"], "cohort": _text(r.get("cohort"), "all"), "time_months": _num(r["time_months"]),
            "n": n, "estimate": m, "lower": lo, "upper": hi, "unit": _text(r.get("unit")), "basis": basis,
            "analysis_ids": r["analysis_id"],
        })
    if include_median_only:
        med = t[(t["measure"] == "absolute") & (t["method"] == "median_only") & t["median"].notna()]
        for (sid, outcome, cohort), g in med.groupby(["study_id", "outcome", "cohort"], dropna=False):
            base = g[g["time_months"] == 0]
            if base.empty:
                continue
            b = base.iloc[0]
            for r in g[g["time_months"] > 0].to_dict("records"):
                rows.append({
                    "study_id": sid, "label": labels.get(sid, sid), "outcome": outcome, "arm": arm,
                    "cohort": _text(cohort, "all"), "time_months": _num(r["time_months"]), "n": _num(r["n"]),
                    "estimate": _num(r["median"]) - _num(b["median"]), "lower": math.nan, "upper": math.nan,
                    "unit": "as reported",
                    "basis": (f"medians only, no spread: {b['median']:g} at baseline, {r['median']:g} at "
                              f"{months_text(r['time_months'])} (as reported); no interval"),
                    "analysis_ids": f"{b['analysis_id']};{r['analysis_id']}",
                })
    out = pd.DataFrame(rows, columns=OBSERVED_COLUMNS)
    return out.sort_values(["outcome", "label", "time_months", "cohort"], kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------------------------------------------
# Table 1: study characteristics
# ----------------------------------------------------------------------------------------------------------------

_E_NOTATION = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)[eE]\+?(-?\d+)(?![\w.])")
_SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")


def scientific_text(text: str) -> str:
    """Numbers in E notation as a reader writes them: '1e6 cells/kg' -> '1 \u00d7 10\u2076 cells/kg' (plain Unicode, so
    that CSV, Markdown, HTML, DOCX and PDF all show it)."""
    return _E_NOTATION.sub(lambda m: f"{m.group(1)} \u00d7 10{str(int(m.group(2))).translate(_SUPERSCRIPT)}", text)


def characteristics_columns(*, arms: Arms, vocabulary: Vocabulary) -> list[str]:
    """The columns of Table 1: the engine's own, with the review's arm names ('n (<short>/<short>)') and its
    `characteristics` columns: the first (what the intervention was, e.g. 'Drug; dose; route') right after 'n',
    the others after 'Outcomes reported' (the order the published characteristics tables of the field use)."""
    return (["Study", "Design", "Population", f"n ({arms.intervention.short}/{arms.comparator.short})"]
            + [c["header"] for c in vocabulary.characteristics][:1]
            + ["Follow-up (months)", "Outcomes reported"]
            + [c["header"] for c in vocabulary.characteristics][1:]
            + ["Shares patients with"])


def _review_cell(row: Mapping, column: Mapping, vocabulary: Vocabulary) -> str:
    """One review-defined cell (vocabulary `characteristics`): its fields joined with '; ', each coded value
    (a field with `allowed` values) with spaces for underscores, each free text with its E notation typeset,
    and the `confidence` field's value as '(<value> confidence)', unless it repeats a field's value."""
    fields = column["fields"]
    missing = list(column.get("missing") or [])
    parts = []
    for i, name in enumerate(fields):
        default = missing[i] if i < len(missing) else "not reported"
        coded = bool((vocabulary.study_fields.get(name) or {}).get("allowed"))
        value = _text(row.get(name))
        if coded:
            parts.append(value.replace("_", " ") if value else default)
        else:
            parts.append(scientific_text(value) if value else default)
    text = "; ".join(parts)
    confidence = _text(row.get(column["confidence"])) if column.get("confidence") else ""
    if confidence and confidence in (_text(row.get(name)) for name in fields):
        confidence = ""  # e.g. 'not_applicable' in both: the confidence adds nothing
    return f"{text} ({confidence.replace('_', ' ')} confidence)" if confidence else text


def _shared_text(group: str | None, row: Mapping) -> str:
    """'City Hospital programme: subset (judgement)', or for a report alone in its group 'no other report'
    (its open overlap, e.g. 'unclear (judgement)', where the sheet records one)."""
    from timecourse_meta.data import linkage

    overlap = _text(row.get("overlap"))
    words = linkage.OVERLAP_WORDS.get(overlap, overlap) or "not recorded"
    basis = _text(row.get("overlap_basis"))
    detail = f"{words} ({basis})" if basis else words
    if group:
        return f"{group}: {detail}"
    return "no other report" if overlap in ("", "none") else detail


def characteristics_table(studies: pd.DataFrame, analysis_table: pd.DataFrame | None = None,
                          study_set: str | None = None, dictionary: Mapping | None = None,
                          labels: Mapping[str, str] | None = None, *, arms: Arms,
                          vocabulary: Vocabulary) -> pd.DataFrame:
    """Table 1: one row per study in `study_set` (all studies if None), in the sheet's order.

    `studies`: the validated studies sheet (docs/extraction_sheets.md): study_id, first_author, year, design,
    design_detail, population, the arms' n columns (`arms.intervention.n_column`, `arms.comparator.n_column`),
    follow_up_months, study_sets and the review's own fields. Design labels come from `vocabulary.designs`; the
    review's own columns (`vocabulary.characteristics`, e.g. a dose column) from its study fields
    (`_review_cell`); the first of them follows 'n', the others 'Outcomes reported'.
    `analysis_table`: the harmonised table; its outcomes (kind other than `characteristic`) per study become
    'Outcomes reported', labelled from `dictionary`, with '(not poolable)' where no row of that outcome is poolable.
    Missing facts are written 'not reported', never left looking like a zero.
    'Shares patients with' names the patient group of reports that describe the same patients (studies-sheet
    `patient_group`, e.g. 'City Hospital programme: later follow-up (judgement)'; the text and the validation
    report list the group's reports), or 'no other report' ('unclear (judgement)' where the sheet leaves it
    open); sheets without the linkage columns give 'not recorded'. The table is one study set's, so it shows
    no set names.
    """
    from timecourse_meta.data import linkage

    columns = characteristics_columns(arms=arms, vocabulary=vocabulary)
    extra = [(c["header"], c) for c in vocabulary.characteristics]
    part = studies_in_set(studies, study_set)
    labels = dict(labels or study_labels(studies))
    linked = "patient_group" in part
    group_text = {}
    if linked:
        groups = linkage.study_groups(studies)
        for g in groups.to_dict("records"):
            one = g["n_reports"] == 1 and g["study_ids"] == g["patient_group"]
            for sid in g["study_ids"].split(";"):
                group_text[sid] = None if one else f"{g['label']} programme"
    order = list((dictionary or {}).keys())
    rows = []
    for r in part.to_dict("records"):
        sid = r["study_id"]
        design = vocabulary.design_label(_text(r.get("design")))
        detail = _text(r.get("design_detail"))
        if detail:
            design = f"{design} ({detail})"
        n_m, n_c = _num(r.get(arms.intervention.n_column)), _num(r.get(arms.comparator.n_column))
        n_text = (f"{int(n_m)}" if np.isfinite(n_m) else "not reported") + " / " + (
            f"{int(n_c)}" if np.isfinite(n_c) and n_c > 0 else DASH)
        fu = _num(r.get("follow_up_months"))
        outcomes_text = ""
        if analysis_table is not None:
            own = analysis_table[(analysis_table["study_id"] == sid) & (analysis_table["kind"] != "characteristic")]
            names = list(dict.fromkeys(own["outcome"]))
            names.sort(key=lambda o: (order.index(o) if o in order else len(order), o))
            parts = []
            for o in names:
                lab = _spec(dictionary, o)["label"]
                if not own.loc[own["outcome"] == o, "poolable"].astype(bool).any():
                    lab += " (not poolable)"
                parts.append(lab)
            outcomes_text = "; ".join(parts) if parts else "none extracted"
        rows.append({
            "Study": labels.get(sid, sid),
            "Design": design,
            "Population": _text(r.get("population"), "not reported"),
            columns[3]: n_text,
            "Follow-up (months)": fmt_months(fu) if np.isfinite(fu) else "not reported",
            "Outcomes reported": outcomes_text,
            **{header: _review_cell(r, spec, vocabulary) for header, spec in extra},
            "Shares patients with": _shared_text(group_text.get(sid, ""), r) if linked else "not recorded",
        })
    return pd.DataFrame(rows, columns=columns)


# ----------------------------------------------------------------------------------------------------------------
# Critical appraisal table
# ----------------------------------------------------------------------------------------------------------------

def _judgement_label(vocabulary: Vocabulary, code: str) -> str:
    judgement = vocabulary.judgements.get(code)
    return judgement.label if judgement is not None else code


def appraisal_table(appraisal: pd.DataFrame, labels: Mapping[str, str] | None = None,
                    checklist: str | None = None, *, vocabulary: Vocabulary) -> pd.DataFrame:
    """Study x item matrix of judgements in words (the labels of `vocabulary.judgements`, e.g. 'Yes', 'Unclear').

    `appraisal`: columns study_id, item_id, judgement, optional checklist, item (the question). One table per
    checklist: pass `checklist` to select one (required when the sheet mixes checklists, as items differ).
    Columns: Study, then one column per item, headed 'Q1 <question>' ... in the sheet's order.
    """
    a = appraisal
    if "checklist" in a.columns:
        lists = list(dict.fromkeys(a["checklist"]))
        if checklist is None and len(lists) > 1:
            raise ValueError(f"the appraisal sheet mixes checklists {lists}; pass checklist= one of them")
        if checklist is not None:
            a = a[a["checklist"] == checklist]
    labels = dict(labels or {})
    items = list(dict.fromkeys(a["item_id"]))
    questions = {}
    for i, item in enumerate(items, 1):
        q = _text(a.loc[a["item_id"] == item, "item"].iloc[0]) if "item" in a.columns else item
        questions[item] = f"Q{i} {q}".strip()
    rows = []
    for sid in dict.fromkeys(a["study_id"]):
        own = a[a["study_id"] == sid].set_index("item_id")["judgement"]
        row = {"Study": labels.get(sid, sid)}
        for item in items:
            j = own.get(item)
            row[questions[item]] = _judgement_label(vocabulary, _text(j)) if not _missing(j) else DASH
        rows.append(row)
    return pd.DataFrame(rows, columns=["Study"] + [questions[i] for i in items])


# ----------------------------------------------------------------------------------------------------------------
# Convergence diagnostics (supplement)
# ----------------------------------------------------------------------------------------------------------------

DIAGNOSTICS_COLUMNS = ["Outcome", "Parameters checked", "Max R-hat", "Min bulk ESS", "Min tail ESS", "Divergences",
                       "Min E-BFMI", "Gate"]


def _stat(x, digits: int) -> str:
    """A diagnostic's value; 'not computed' where the sampler gave none (e.g. R-hat of a constant)."""
    return fmt_number(x, digits) if np.isfinite(_num(x)) else "not computed"


def diagnostics_table(gates: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per outcome from its gate report (diagnostics.run_diagnostics: one row per parameter with rhat,
    ess_bulk, ess_tail; sampler rows `divergences` and `e_bfmi_chain_*` with their value; `passed`).
    An outcome without any parameter (no data) reads 'no model'; one drawn exactly without a sampler (a single
    study) reads 'not sampled' for the sampler's checks. 'Gate' is the report's own `gate` column (passed,
    failed, or "not sampled (study's own estimate)": an outcome without a model never reads 'passed')."""
    rows = []
    for label, d in gates.items():
        kind = d["kind"] if "kind" in d else pd.Series("parameter", index=d.index)
        params = d[kind == "parameter"]
        sampler = d[kind == "sampler"].set_index("parameter")["value"] if (kind == "sampler").any() else pd.Series()
        bfmi = sampler[[i for i in sampler.index if str(i).startswith("e_bfmi")]]
        none = "no model"
        rows.append({
            "Outcome": label,
            "Parameters checked": len(params),
            "Max R-hat": _stat(params["rhat"].max(), 3) if len(params) else none,
            "Min bulk ESS": _stat(params["ess_bulk"].min(), 0) if len(params) else none,
            "Min tail ESS": _stat(params["ess_tail"].min(), 0) if len(params) else none,
            "Divergences": (_stat(sampler["divergences"], 0) if "divergences" in sampler
                            else "not sampled" if len(params) else none),
            "Min E-BFMI": _stat(bfmi.min(), 2) if len(bfmi) else "not sampled" if len(params) else none,
            "Gate": (str(d["gate"].iloc[0]) if "gate" in d and len(d) else
                     "passed" if (d["passed"].astype(str).str.lower() != "false").all() else "failed"),
        })
    return pd.DataFrame(rows, columns=DIAGNOSTICS_COLUMNS)
