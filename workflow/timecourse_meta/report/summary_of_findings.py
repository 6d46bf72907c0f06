"""The summary-of-findings table: the randomised comparison first, then each outcome's change after the
intervention.

One row per randomised between-arm difference (a controlled study's intervention arm against its comparator
arm) and one
per outcome at its key visit. Every row says what its number is, in the vocabulary of the model summaries
(`evidence`): a study's own estimate, pooled at the visit from k studies, a model-based interpolation, or
prior-dominated; a prediction interval and P(improvement) are shown only for pooled rows. Numbers are
formatted by `timecourse_meta.report.format` with the outcome's reporting precision, exactly as the manuscript text
formats them, so a number in this table and the same number in the text agree to the last digit.

The "Certainty (GRADE)" column gives each row's rating (`timecourse_meta.report.certainty`) with footnote
letters; the footnotes (why it started where it did, each downgrade, each domain that could not be assessed)
are the CSV's "Certainty footnotes" column and, in the Markdown, lines under the table.

The "In words" column has no numbers: it names the direction and how sure it is (GRADE-style wording by
P(improvement) for pooled rows; whether the 95% interval excludes no change for a single study or a
randomised difference). The arms are named by the review (`core.review.Arms`, their `short` names).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import pandas as pd

from timecourse_meta.core import atomic
from timecourse_meta.core.review import Arms
from timecourse_meta.core.values import to_float
from timecourse_meta.report import certainty as certainty_mod
from timecourse_meta.report import safety
from timecourse_meta.report import tables
from timecourse_meta.report.figure_data import DISPLAY_UNITS
from timecourse_meta.report.format import (DASH, fmt_count, fmt_estimate, fmt_interval, fmt_months, fmt_number,
                                           fmt_probability, outcome_digits, sig_digits)

COLUMNS = ["Outcome", "Visit (months)", "Studies (patients)", "Estimate (95% interval)", "What the estimate is",
           "95% prediction interval", "P(improvement)", "In words"]
CERTAINTY, FOOTNOTES = "Certainty (GRADE)", "Certainty footnotes"
# thresholds on P(improvement) for the words of a pooled row: >= 0.975 (the 95% CrI excludes no change) "fell";
# >= 0.90 "probably fell"; >= 0.75 "may have fallen"; 0.25-0.75 "no clear change"; mirror images for worsening
PROB_CLEAR, PROB_PROBABLY, PROB_MAY = 0.975, 0.90, 0.75
_VERBS = {"fall": ("fell", "probably fell", "may have fallen"), "rise": ("rose", "probably rose", "may have risen")}


_num = to_float  # a cell as a number, NaN when it is not one (core.values)


def _finite(*xs) -> bool:
    return all(math.isfinite(_num(x)) for x in xs)


def _unit(spec) -> str:
    if spec.analysis_scale == "log" and spec.kind == "continuous":
        return "%"
    return DISPLAY_UNITS.get(spec.canonical_unit, spec.canonical_unit)


def _studies_patients(k, n) -> str:
    """'k (n)', or 'k' without a patient count, or '0'."""
    if _finite(k, n):
        return f"{fmt_count(int(k))} ({fmt_count(int(n))})"
    return fmt_count(int(k)) if _finite(k) else "0"


def _digits(spec) -> int:
    return sig_digits("%") if spec.analysis_scale in ("log", "logit") else outcome_digits(spec)


def _estimate(est, lo, hi, digits: int, unit: str, interval: str) -> str:
    if not _finite(est):
        return "not estimable"
    if not _finite(lo, hi):
        return fmt_number(est, digits) + (unit if unit == "%" else "") + " (no interval)"
    return fmt_estimate(est, lo, hi, digits, level=95, interval=interval, percent=unit == "%")


def change_words(evidence: str, p_improvement, lower, upper, direction: str, *, arms: Arms) -> str:
    """The direction of a change after the intervention and how sure it is, without numbers."""
    after = f"after {arms.intervention.short}"
    good = "fall" if direction == "decrease" else "rise"
    bad = "rise" if good == "fall" else "fall"
    if direction not in ("decrease", "increase"):
        return "no direction of benefit defined"
    if evidence == "pooled":
        p = _num(p_improvement)
        if not math.isfinite(p):
            return "pooled estimate without a probability"
        for threshold, i in ((PROB_CLEAR, 0), (PROB_PROBABLY, 1), (PROB_MAY, 2)):
            if p >= threshold:
                return f"{_VERBS[good][i]} {after}"
            if p <= 1 - threshold:
                return f"{_VERBS[bad][i]} {after} (worsening)"
        return f"no clear change {after}"
    if evidence == "prior_dominated":
        return "the data barely inform this estimate"
    lo, hi = _num(lower), _num(upper)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "no interval reported"
    improved = hi < 0 if direction == "decrease" else lo > 0
    worsened = lo > 0 if direction == "decrease" else hi < 0
    where = "in one study" if evidence == "study_estimate" else "in the model"
    if improved:
        return f"{_VERBS[good][0]} {where} (95% interval excludes no change)"
    if worsened:
        return f"{_VERBS[bad][0]} {where} (worsening; 95% interval excludes no change)"
    return f"no clear change {where}"


def difference_words(lower, upper, direction: str, *, arms: Arms) -> str:
    """A randomised difference (intervention minus comparator) in words, without numbers."""
    a, b = arms.intervention.short, arms.comparator.short
    lo, hi = _num(lower), _num(upper)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "no interval"
    if hi < 0 or lo > 0:
        side = "lower" if hi < 0 else "higher"
        better = (side == "lower") == (direction == "decrease")
        return (f"{side} with {a} than with {b} ({'favourable' if better else 'unfavourable'}; 95% CI "
                "excludes no difference)")
    return f"no clear difference between {a} and {b}"


def basis_text(finding: Mapping, study_label: str = "") -> str:
    """What a change row's number is, in words (the shared vocabulary of the model summaries)."""
    ev = str(finding.get("evidence", "") or "")
    k, n = _num(finding.get("n_studies")), _num(finding.get("n_patients"))
    km, nm = _num(finding.get("n_studies_model")), _num(finding.get("n_patients_model"))
    model = (f"; time course fitted to {fmt_count(int(km))} studies ({fmt_count(int(nm))} patients)"
             if _finite(km, nm) and km > k else "")
    if ev == "pooled":
        return f"pooled at this visit from {fmt_count(int(k))} studies{model}"
    if ev == "study_estimate":
        return f"{study_label}'s own estimate" if study_label else "the study's own estimate"
    if ev == "interpolated":
        return f"model-based interpolation{model}"
    if ev == "prior_dominated":
        return "prior-dominated (the data barely narrow the prior)"
    return str(finding.get("label", "") or DASH)


def change_row(finding: Mapping, spec, study_label: str = "", *, arms: Arms) -> dict:
    """One outcome at its key visit (a `figure_data.finding` record)."""
    unit, digits = _unit(spec), _digits(spec)
    ev = str(finding.get("evidence", "") or "")
    k, n = _num(finding.get("n_studies")), _num(finding.get("n_patients"))
    pooled = ev == "pooled"
    interval = "CrI" if ev in ("pooled", "interpolated", "prior_dominated") else "CI"
    est = _estimate(finding.get("estimate"), finding.get("lower"), finding.get("upper"), digits, unit, interval)
    pi = DASH
    if pooled and _finite(finding.get("pi_lower"), finding.get("pi_upper")):
        pi = fmt_interval(finding["pi_lower"], finding["pi_upper"], digits, percent=unit == "%")
    p = (fmt_probability(finding["p_improvement"]) if pooled and _finite(finding.get("p_improvement")) else DASH)
    return {
        "Outcome": f"{spec.label} ({'% change' if unit == '%' else unit})",
        "Visit (months)": fmt_months(finding["time_months"]),
        "Studies (patients)": _studies_patients(k, n),
        "Estimate (95% interval)": est,
        "What the estimate is": basis_text(finding, study_label),
        "95% prediction interval": pi,
        "P(improvement)": p,
        "In words": change_words(ev, finding.get("p_improvement"), finding.get("lower"), finding.get("upper"),
                                 spec.direction_of_benefit, arms=arms),
    }


def between_arm_row(rec: Mapping, spec, study_label: str, n_intervention, n_comparator, *, arms: Arms) -> dict:
    """One randomised difference (a `between_arm.comparisons` record); `n_intervention`, `n_comparator`: the
    study's patients per arm (the studies sheet's `arms.<arm>.n_column`)."""
    unit = "percentage points" if spec.kind == "binary" else _unit(spec)
    estimand = rec.get("primary_estimand", "")
    return {
        "Outcome": (f"{spec.label} ({'% difference' if unit == '%' else unit}): {arms.intervention.short} vs "
                    f"{arms.comparator.short}"),
        "Visit (months)": fmt_months(rec["visit_months"]),
        "Studies (patients)": f"1 ({fmt_count(int(float(n_intervention)))} vs {fmt_count(int(float(n_comparator)))})",
        "Estimate (95% interval)": rec["primary"],
        "What the estimate is": f"randomised comparison in {study_label} ({estimand})",
        "95% prediction interval": DASH,
        "P(improvement)": DASH,
        "In words": difference_words(rec.get("primary_lower"), rec.get("primary_upper"), spec.direction_of_benefit,
                                     arms=arms),
    }


def safety_rows(events: pd.DataFrame, pooled: pd.DataFrame, *, arms: Arms) -> list[dict]:
    """The safety rows (not rated for certainty): every reported adverse-event number of the set's studies in
    one row (the safety table's counts), then each pooled safety outcome at the follow-up with most studies
    (the safety table's pooled incidence, labelled as the model labels it). `events`, `pooled`: the safety
    rule's tables (`safety.events_table`, `safety.pooled_table`)."""
    if events.empty:
        return []
    c = safety.counts(events)
    judged = (f"the authors judged {fmt_count(c['n_related'])} of {fmt_count(c['n_rows'])} related or possibly "
              f"related to {arms.intervention.short}, {fmt_count(c['n_not_related'])} not related and gave no "
              f"judgement for {fmt_count(c['n_not_stated'])}")
    rows = [{"Outcome": "Adverse events (as reported)", "Visit (months)": "during follow-up",
             "Studies (patients)": fmt_count(c["n_studies"]), "Estimate (95% interval)": DASH,
             "What the estimate is": f"{fmt_count(c['n_rows'])} reported numbers, not pooled (most have no "
                                     "denominator)",
             "95% prediction interval": DASH, "P(improvement)": DASH, "In words": judged}]
    if pooled.empty:
        return rows
    frame = pooled.assign(_k=pooled["n_studies"].map(_num), _t=pooled["follow_up_months"].map(_num))
    for outcome, part in frame.groupby("outcome", sort=False):
        best = part.sort_values(["_k", "_t"], ascending=[False, False], kind="stable").iloc[0]
        k, n = best["_k"], _num(best["n_patients"])
        rows.append({"Outcome": f"{outcome} (% of patients)", "Visit (months)": str(best["follow_up_months"]),
                     "Studies (patients)": _studies_patients(k, n),
                     "Estimate (95% interval)": str(best["estimate"]),
                     "What the estimate is": str(best["what_it_is"]) or DASH, "95% prediction interval": DASH,
                     "P(improvement)": DASH,
                     "In words": f"share of patients with the event by the follow-up shown ({outcome.lower()})"})
    return rows


def summary_of_findings(change_rows: Iterable[dict], between_rows: Iterable[dict] = (),
                        safety_findings: Iterable[dict] = ()) -> pd.DataFrame:
    """The table: randomised differences first, then the changes after the intervention, then safety."""
    rows = list(between_rows) + list(change_rows) + list(safety_findings)
    return pd.DataFrame(rows, columns=COLUMNS)


def with_certainty(frame: pd.DataFrame, ratings) -> tuple[pd.DataFrame, list[str]]:
    """The table with the certainty column (rating and footnote letters) and each row's footnotes, and the
    table's footnote lines; `ratings`: one `certainty.Rating` (or None: not rated) per row, in row order."""
    ratings = list(ratings)
    if len(ratings) != len(frame):
        raise ValueError(f"{len(ratings)} certainty ratings for {len(frame)} table rows")
    cells, lines = certainty_mod.footnotes(ratings)
    by_letter = {line.split(". ", 1)[0]: line for line in lines}
    row_notes = []
    for cell in cells:
        letters = cell[cell.find("(") + 1:-1].split(", ") if cell.endswith(")") else []
        row_notes.append(" ".join(by_letter[x] for x in letters))
    return frame.assign(**{CERTAINTY: cells, FOOTNOTES: row_notes}), lines


def write(frame: pd.DataFrame, footnote_lines: list[str], stem: str) -> None:
    """`stem.csv` (every column) and `stem.md` (the table without the footnotes column, then one line per
    footnote), each written atomically."""
    atomic.write_csv(f"{stem}.csv", frame)
    text = tables.markdown_table(frame.drop(columns=[FOOTNOTES], errors="ignore"))
    if footnote_lines:
        text = text.rstrip("\n") + "\n\n" + "\n".join(footnote_lines) + "\n"
    atomic.write_text(f"{stem}.md", text)
