"""Check a review's claims, held as data, against the per-study observed changes and the pooled summaries.

The claims file's columns are described in `timecourse_meta.report.claims_file`, which reads and checks it.

The principle: absence of evidence is not a contradiction. Data at a visit or of a measure the claim does not
name never contradict it; the verdict is then "not assessable".

Evidence rules (per estimate, on the change-from-baseline scale where 0 = no change):
* an interval wholly on the side of benefit = *improvement*; wholly on the side of harm = *worsening*; an interval
  that includes no change = *no clear change*. An estimate without an interval (e.g. a difference of medians
  reported without spread) only has a direction: it *leans* to improvement or to worsening (or to neither when 0).
* `improve` / `worsen` for one study (or the pooled estimate); a study's time matches a visit within
  `visit_tolerance` months. Reviews' claims are usually of significant changes, so an interval that includes no
  change does not support them.
  `visit_rule = all`: a study lacking an estimate at any named visit is not assessable (never contradicted);
  contradicted if an interval at a claimed visit shows the opposite or no clear change; supported if every
  claimed visit shows the expected direction with an interval; otherwise, when every claimed visit has an estimate
  and those without an interval lean the expected way, CONSISTENT_NO_INTERVAL; when one leans the other way,
  OPPOSITE_NO_INTERVAL. A window (`>m`) or no visit named means the visits the study has in it.
  `visit_rule = any`: supported if an interval at one visit shows the expected direction; else
  CONSISTENT_NO_INTERVAL if an estimate without an interval leans the expected way; contradicted only if every
  named visit (or, with no visits named, every visit the study reported) has an interval and none shows it. A
  window under `any` ("at some visit after m months") is not contradicted by the visits the data hold: a change
  at a window visit the data do not hold is not ruled out, so it is not assessable (OPPOSITE_NO_INTERVAL when the
  only estimates lean the other way without an interval).
* `decrease_then_not` (literal decrease, whatever the direction of benefit): supported if an interval wholly below
  zero at a visit up to the claimed month and none wholly below zero after it (at least one later visit
  assessed); contradicted if a decrease persists after the month, or no early visit shows a decrease although
  all early estimates have intervals; otherwise not assessable.
* `inconsistent`: compared only like with like: two studies, the same outcome (measure), visits within
  `visit_tolerance` months of each other, both with an interval. Supported if a pair of studies falls in
  different classes (improvement / worsening / no clear change), the reason naming that comparison;
  contradicted if there are comparable pairs and all agree; not assessable when no two studies can be compared
  (different measures or visits are not a disagreement).

Claim level (combination of the per-study verdicts):
* Scope `all_studies`: contradicted if any study is contradicted; supported if every study is supported;
  otherwise not assessable.
* `at_least_k_studies`: supported if k or more studies are supported; contradicted if fewer than k studies remain
  that are not contradicted; otherwise not assessable.
* `pooled`: the verdict of the pooled rows for the outcome.
* The two no-interval verdicts are per-study only. They cannot support or contradict a claim on their own or
  together with others: at claim level they count like "not assessable" (a study that could still show the
  claimed change), and the claim's reason counts them separately, so a reader sees that, e.g., a median-only
  study moved the claimed way. The claim-level verdict is always one of SUPPORTED, CONTRADICTED, NOT_ASSESSABLE.

Reasons are for readers: study labels ("Smith 2014"), outcome labels and plain words, no identifiers.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from timecourse_meta.core import review
from timecourse_meta.report.claims_file import parse_visits, validate_claims
from timecourse_meta.report.claims_file import cell_text as _text
from timecourse_meta.report.format import fmt_bracketed, months_text
from timecourse_meta.report.tables import _spec, midsentence

SUPPORTED = "supported"
CONTRADICTED = "contradicted"
NOT_ASSESSABLE = "not assessable from the available data"
CONSISTENT_NO_INTERVAL = "consistent in direction (no interval)"
OPPOSITE_NO_INTERVAL = "opposite in direction (no interval)"
VERDICTS = (SUPPORTED, CONTRADICTED, NOT_ASSESSABLE, CONSISTENT_NO_INTERVAL, OPPOSITE_NO_INTERVAL)
CLAIM_VERDICTS = (SUPPORTED, CONTRADICTED, NOT_ASSESSABLE)

RESULT_COLUMNS = ["claim_id", "level", "study_id", "study", "claim_text", "outcome", "scope", "study_set",
                  "verdict", "reason"]

# classes of one estimate
IMPROVEMENT, WORSENING, NO_CLEAR, NO_INTERVAL = "improvement", "worsening", "no clear change", "no interval"
LEANS_IMPROVEMENT, LEANS_WORSENING = "improvement, no interval", "worsening, no interval"


# ----------------------------------------------------------------------------------------------------------------
# Classifying estimates
# ----------------------------------------------------------------------------------------------------------------

def classify(lower: float, upper: float, direction_of_benefit: str) -> str:
    """improvement / worsening / no clear change / no interval, for an interval of change (0 = no change)."""
    if not (np.isfinite(lower) and np.isfinite(upper)):
        return NO_INTERVAL
    if lower <= 0 <= upper:
        return NO_CLEAR
    down = upper < 0
    if direction_of_benefit == "decrease":
        return IMPROVEMENT if down else WORSENING
    if direction_of_benefit == "increase":
        return WORSENING if down else IMPROVEMENT
    return NO_CLEAR


def lean(estimate: float, direction_of_benefit: str) -> str:
    """The direction of an estimate without an interval: LEANS_IMPROVEMENT / LEANS_WORSENING, or NO_INTERVAL
    when it is 0, missing, or the outcome has no direction of benefit."""
    if not np.isfinite(estimate) or estimate == 0 or direction_of_benefit not in ("increase", "decrease"):
        return NO_INTERVAL
    better = (estimate < 0) == (direction_of_benefit == "decrease")
    return LEANS_IMPROVEMENT if better else LEANS_WORSENING


def _f(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _row_class(row: Mapping, dictionary: Mapping | None, direction_of_benefit: str | None = None) -> str:
    """Class of one estimate; an estimate without an interval gets its lean."""
    dob = direction_of_benefit or _spec(dictionary, row["outcome"])["direction_of_benefit"]
    c = classify(_f(row.get("lower")), _f(row.get("upper")), dob)
    return lean(_f(row.get("estimate")), dob) if c == NO_INTERVAL else c


def _cohort_words(cohort: Any) -> str:
    """'seen_at_1m' -> 'subgroup seen at 1 month'; '' / 'all' -> ''."""
    text = _text(cohort)
    if text in ("", "all"):
        return ""
    text = re.sub(r"\b(\d+(?:\.\d+)?)m\b", lambda m: months_text(float(m.group(1))), text.replace("_", " "))
    return f"subgroup {text}"


def _describe(row: Mapping, cls: str | None = None) -> str:
    """'−2.10 [−3.24, −0.96] g/24 h at 6 months (improvement)'; the basis text when there is no interval."""
    est, lo, hi = _f(row.get("estimate")), _f(row.get("lower")), _f(row.get("upper"))
    when = months_text(row.get("time_months"))
    sub = _cohort_words(row.get("cohort"))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        basis = _text(row.get("basis")).removesuffix("; no interval")
        if basis:
            text = basis if when in basis else f"at {when}: {basis}"
        else:
            text = f"{fmt_bracketed(est, lo, hi)} at {when}, without an interval"
        return text + (f" ({sub})" if sub else "")
    u = _text(row.get("unit"))
    notes = [cls] if cls and cls not in (NO_INTERVAL, LEANS_IMPROVEMENT, LEANS_WORSENING) else []
    if sub:
        notes.append(sub)
    if _text(row.get("basis")).startswith("derived"):
        notes.append("derived change, within-person r assumed")
    tail = f" ({'; '.join(notes)})" if notes else ""
    return f"{fmt_bracketed(est, lo, hi)}{(' ' + u) if u and u != 'as reported' else ''} at {when}{tail}"


def _match_visits(rows: pd.DataFrame, visits: list, tol: float) -> dict:
    """visit -> rows measured within tol months of it. Empty `visits`: every visit of the rows. A visit
    ('after', m) stands for every visit of the rows later than m + tol months (each its own key)."""
    t = rows["time_months"].astype(float) if not rows.empty else pd.Series(dtype=float)
    if not visits:
        return {float(v): rows[t == v] for v in sorted(t.unique())}
    out: dict = {}
    for v in visits:
        if isinstance(v, tuple):
            later = sorted(x for x in t.unique() if x > v[1] + tol)
            if not later:
                out[v] = rows.iloc[0:0]
            for x in later:
                out[float(x)] = rows[t == x]
        else:
            out[v] = rows[(t - v).abs() <= tol] if not rows.empty else rows
    return out


def _visit_text(v) -> str:
    return f"after {months_text(v[1])}" if isinstance(v, tuple) else months_text(v)


def _visits_list(vs: list) -> str:
    """'6 months', '6 and 9 months', '1, 3 and 6 months' (windows: 'after 3 months')."""
    plain = [v for v in vs if not isinstance(v, tuple)]
    texts = [_visit_text(v) for v in vs if isinstance(v, tuple)]
    if plain:
        nums = [months_text(v).rsplit(" ", 1)[0] for v in plain]
        unit = "month" if nums == ["1"] else "months"
        nums_text = nums[0] if len(nums) == 1 else ", ".join(nums[:-1]) + " and " + nums[-1]
        texts.insert(0, f"{nums_text} {unit}")
    return " and ".join(texts) if len(texts) <= 2 else ", ".join(texts)


def _reported_at(rows: pd.DataFrame) -> str:
    return _visits_list(sorted(rows["time_months"].astype(float).unique()))


def _study_verdict(rows: pd.DataFrame, outcomes: list[str], direction: str, visits: list, rule: str,
                   tol: float, dictionary: Mapping | None) -> tuple[str, str, list[str]]:
    """(verdict, reason, classes) of one study (or of the pooled rows) for an improve/worsen/decrease claim."""
    if rows.empty:
        names = " or ".join(midsentence(_spec(dictionary, o)["label"]) for o in outcomes)
        return NOT_ASSESSABLE, f"no change from baseline of {names} in the data (none reported or derivable)", []
    if direction == "decrease_then_not":
        return _decrease_then_not(rows, visits[0], tol)

    expected = IMPROVEMENT if direction == "improve" else WORSENING
    lean_exp = LEANS_IMPROVEMENT if expected == IMPROVEMENT else LEANS_WORSENING
    lean_opp = LEANS_WORSENING if expected == IMPROVEMENT else LEANS_IMPROVEMENT
    opposite = {WORSENING, NO_CLEAR} if expected == IMPROVEMENT else {IMPROVEMENT, NO_CLEAR}
    word = "improvement" if expected == IMPROVEMENT else "worsening"
    window = any(isinstance(v, tuple) for v in visits)

    matched = _match_visits(rows, visits, tol)
    parts, classes, per_visit = [], [], {}
    for v, part in matched.items():
        cls = []
        for r in part.to_dict("records"):
            c = _row_class(r, dictionary)
            cls.append(c)
            label = _spec(dictionary, r["outcome"])["label"] if len(outcomes) > 1 else ""
            parts.append(f"{label + ' ' if label else ''}{_describe(r, c)}")
        per_visit[v] = cls
        classes += cls
    if not parts:
        return NOT_ASSESSABLE, (f"no estimate at {_visits_list(visits)} in the data (estimates at "
                                f"{_reported_at(rows)})"), classes
    desc = "; ".join(parts)
    missing = [v for v, c in per_visit.items() if not c]
    shown = {v: expected in c for v, c in per_visit.items()}
    against = {v: any(x in opposite for x in c) for v, c in per_visit.items()}
    assessed = {v: any(x in (IMPROVEMENT, WORSENING, NO_CLEAR) for x in c) for v, c in per_visit.items()}
    leans_exp = {v: lean_exp in c for v, c in per_visit.items()}
    leans_opp = {v: lean_opp in c for v, c in per_visit.items()}
    no_interval = f"the claimed direction, but without an interval: {desc}"

    if rule == "all":
        if missing:
            return NOT_ASSESSABLE, f"no estimate at {_visits_list(missing)} in the data: {desc}", classes
        if any(against.values()):
            bad = [v for v, a in against.items() if a]
            return CONTRADICTED, f"no {word} at {_visits_list(bad)}: {desc}", classes
        if all(shown.values()):
            return SUPPORTED, f"{word} at every claimed visit: {desc}", classes
        rest = [v for v in per_visit if not shown[v]]
        if any(leans_opp[v] for v in rest):
            return OPPOSITE_NO_INTERVAL, f"moves against {no_interval}", classes
        if all(leans_exp[v] for v in rest):
            return CONSISTENT_NO_INTERVAL, f"moves in {no_interval}", classes
        return NOT_ASSESSABLE, f"no estimate with an interval or a direction at {_visits_list(rest)}: {desc}", \
            classes
    # rule == "any"
    if any(shown.values()):
        return SUPPORTED, f"{word} shown: {desc}", classes
    if any(leans_exp.values()):
        return CONSISTENT_NO_INTERVAL, f"moves in {no_interval}", classes
    if window:
        window_text = _visits_list([v for v in visits if isinstance(v, tuple)])
        if any(leans_opp.values()) and not any(assessed.values()):
            return OPPOSITE_NO_INTERVAL, f"moves against {no_interval}", classes
        held = [v for v, c in per_visit.items() if c and not isinstance(v, tuple)]
        return NOT_ASSESSABLE, (f"no {word} at {_visits_list(held)} (the visits {window_text} in the data); one at "
                                f"other visits {window_text} is not ruled out: {desc}"), classes
    complete = all(assessed.values()) if visits else any(assessed.values())
    if complete:
        return CONTRADICTED, f"no {word} at any visit: {desc}", classes
    if any(leans_opp.values()):
        return OPPOSITE_NO_INTERVAL, f"moves against {no_interval}", classes
    gaps = missing or [v for v, a in assessed.items() if not a]
    return NOT_ASSESSABLE, f"no estimate with an interval at {_visits_list(gaps)}: {desc}", classes


def _decrease_then_not(rows: pd.DataFrame, cut: float, tol: float) -> tuple[str, str, list[str]]:
    t = rows["time_months"].astype(float)
    early, late = rows[t <= cut + tol], rows[t > cut + tol]
    ec = [classify(_f(r["lower"]), _f(r["upper"]), "decrease") for r in early.to_dict("records")]
    lc = [classify(_f(r["lower"]), _f(r["upper"]), "decrease") for r in late.to_dict("records")]
    desc = "; ".join(_describe(r, c.replace("improvement", "decrease").replace("worsening", "increase"))
                     for r, c in zip(list(early.to_dict("records")) + list(late.to_dict("records")), ec + lc))
    classes = ec + lc
    early_dec = IMPROVEMENT in ec
    late_dec = IMPROVEMENT in lc
    late_assessed = any(c != NO_INTERVAL for c in lc)
    when = months_text(cut)
    if late_dec:
        return CONTRADICTED, f"the decrease persists after {when}: {desc}", classes
    if ec and all(c != NO_INTERVAL for c in ec) and not early_dec:
        return CONTRADICTED, f"no decrease up to {when}: {desc}", classes
    if early_dec and late_assessed:
        return SUPPORTED, f"decrease up to {when}, none after: {desc}", classes
    missing = []
    if not early_dec:
        missing.append(f"no estimate with an interval up to {when}")
    if not late_assessed:
        missing.append(f"no estimate with an interval after {when}")
    return NOT_ASSESSABLE, "; ".join(missing) + (f" ({desc})" if desc else ""), classes


def _combine(scope: str, k: int | None, per_study: list[tuple[str, str, str]], set_words: str) -> tuple[str, str]:
    """Claim verdict from per-study verdicts [(label, verdict, reason)]; the no-interval verdicts count as
    not assessable (module docstring)."""
    n = len(per_study)
    if n == 0:
        return NOT_ASSESSABLE, f"{set_words} has no studies"
    by = {v: [s for s, vv, _ in per_study if vv == v] for v in VERDICTS}
    sup, con = by[SUPPORTED], by[CONTRADICTED]
    tally = f"supported in {len(sup)} of {n} studies" + (f" ({', '.join(sup)})" if sup else "")
    for verdict, words in ((CONTRADICTED, "contradicted"),
                           (CONSISTENT_NO_INTERVAL, "consistent in direction without an interval"),
                           (OPPOSITE_NO_INTERVAL, "opposite in direction without an interval"),
                           (NOT_ASSESSABLE, "not assessable")):
        if by[verdict]:
            tally += f"; {words} in {len(by[verdict])} ({', '.join(by[verdict])})"
    if scope == "all_studies":
        if con:
            return CONTRADICTED, tally
        if len(sup) == n:
            return SUPPORTED, tally
        return NOT_ASSESSABLE, tally
    kk = int(k or 1)
    need = f"; the claim needs {kk}"
    if len(sup) >= kk:
        return SUPPORTED, tally + need
    if n - len(con) < kk:
        return CONTRADICTED, tally + need + ", which the remaining studies cannot reach"
    return NOT_ASSESSABLE, tally + need


def _inconsistency(per_study_rows: dict[str, pd.DataFrame], labels: Mapping[str, str], outcomes: list[str],
                   visits: list, tol: float, dictionary: Mapping | None) -> tuple[str, str]:
    """Disagreement judged only between two studies on the same outcome at visits within `tol` months."""
    entries = []  # (study label, outcome, time, class, description)
    seen_by_study: dict[str, list[str]] = {}
    no_data = []
    for sid, rows in per_study_rows.items():
        lab = labels.get(sid, sid)
        if rows.empty:
            no_data.append(lab)
            continue
        have: dict[str, list[float]] = {}
        for part in _match_visits(rows, visits, tol).values():
            for r in part.to_dict("records"):
                c = classify(_f(r["lower"]), _f(r["upper"]), _spec(dictionary, r["outcome"])["direction_of_benefit"])
                have.setdefault(r["outcome"], []).append(float(r["time_months"]))
                if c != NO_INTERVAL:
                    entries.append((lab, r["outcome"], float(r["time_months"]), c, _describe(r, c)))
        if have:
            seen_by_study[lab] = [f"{midsentence(_spec(dictionary, o)['label'])} at {_visits_list(sorted(set(ts)))}"
                                  for o, ts in have.items()]
        else:
            seen_by_study[lab] = [f"nothing at {_visits_list(visits) if visits else 'the claimed visits'}"]
    pairs = [(a, b) for i, a in enumerate(entries) for b in entries[i + 1:]
             if a[0] != b[0] and a[1] == b[1] and abs(a[2] - b[2]) <= tol]

    def pair_text(a, b):
        return f"{_spec(dictionary, a[1])['label']}: {a[0]} {a[4]} vs {b[0]} {b[4]}"

    disagree = [p for p in pairs if p[0][3] != p[1][3]]
    if disagree:
        more = f" (and {len(disagree) - 1} more such comparison{'s' if len(disagree) > 2 else ''})" \
            if len(disagree) > 1 else ""
        return SUPPORTED, f"two studies disagree on the same measure at comparable visits: {pair_text(*disagree[0])}{more}"
    if pairs:
        return CONTRADICTED, ("the studies agree in every comparison of the same measure at comparable visits: "
                              + "; ".join(f"{pair_text(a, b)} ({a[3]})" for a, b in pairs))
    available = "; ".join(f"{lab}: {', '.join(what)}" for lab, what in seen_by_study.items())
    if no_data:
        available += ("; " if available else "") + f"no data from {', '.join(no_data)}"
    return NOT_ASSESSABLE, ("no two studies report the same measure with an interval at comparable visits, and "
                            f"different measures or visits are not a disagreement ({available})")


# ----------------------------------------------------------------------------------------------------------------
# Main entry point
# ----------------------------------------------------------------------------------------------------------------

def _pooled_claim(pooled: pd.DataFrame | None, outcomes: list[str], set_name: str, direction: str, visits: list,
                  rule: str, tol: float, dictionary: Mapping | None) -> tuple[str, str]:
    """(verdict, reason) of a claim about the pooled estimate of the set."""
    if pooled is None:
        return NOT_ASSESSABLE, "no pooled summaries were given (no model results)"
    rows = pooled[pooled["outcome"].isin(outcomes)]
    if "study_set" in rows.columns:
        rows = rows[rows["study_set"] == set_name]
    verdict, reason, _ = _study_verdict(rows, outcomes, direction, visits, rule, tol, dictionary)
    return verdict, f"pooled estimate: {reason}"


def _set_members(study_sets: Mapping[str, Iterable[str]] | None, set_name: str,
                 sc: pd.DataFrame) -> tuple[list[str], str]:
    """(study ids of the set, caveat for the reason); without membership, the studies with data."""
    if study_sets is not None:
        return list(dict.fromkeys(study_sets.get(set_name, []))), ""
    return (list(dict.fromkeys(sc["study_id"])),
            " (study-set membership not given: judged over the studies with data only)")


def check_claims(claims: pd.DataFrame, study_changes: pd.DataFrame, pooled: pd.DataFrame | None,
                 dictionary: Mapping | None, *, config: Mapping,
                 study_sets: Mapping[str, Iterable[str]] | None = None,
                 labels: Mapping[str, str] | None = None, visit_tolerance: float = 0.5,
                 study_set_override: str | None = None) -> pd.DataFrame:
    """Verdict per claim (level `claim`) and, for per-study claims, per study of the set (level `study`).

    `claims`: the claims table (`claims_file`). `study_changes`: per-study observed changes from baseline, one
    row per study, outcome and visit: columns study_id, outcome, time_months, estimate, lower, upper (95% CI; NaN
    when none, e.g. medians only), optional label, unit, basis, n (`tables.observed_changes(...,
    include_median_only=True)` builds it from the analysis table). `pooled`: pooled summaries, columns outcome,
    time_months, estimate, lower, upper (95% CrI on the change scale, 0 = no change), optional study_set (rows of
    other sets are ignored), n_studies, unit; None when no model has run. `dictionary`: outcome -> Outcome (or dict)
    giving label and direction_of_benefit. `config`: the resolved config, for the study sets' names in reasons
    (`review.study_sets`). `study_sets`: set name -> study ids; without it the set is the studies
    present in `study_changes` (and the reason says so). `study_set_override` checks every claim against another
    set (e.g. a wider set of candidate studies).
    Returns columns RESULT_COLUMNS; claim rows have a verdict of CLAIM_VERDICTS, study rows one of VERDICTS.
    """
    validate_claims(claims, dictionary)
    labels = dict(labels or {})
    sc = study_changes.copy() if study_changes is not None else pd.DataFrame(
        columns=["study_id", "outcome", "time_months", "estimate", "lower", "upper"])
    if "label" in sc.columns:
        for sid, lab in zip(sc["study_id"], sc["label"]):
            labels.setdefault(sid, lab)
    sc = sc[sc["time_months"].astype(float) > 0]
    results = []
    for claim in claims.to_dict("records"):
        scope = _text(claim["scope"])
        direction = _text(claim["expected_direction"])
        outcomes = [o.strip() for o in _text(claim["outcome"]).split(";") if o.strip()]
        visits = parse_visits(claim["visits"])
        rule = _text(claim.get("visit_rule")) or "all"
        set_name = study_set_override or _text(claim["study_set"])
        k = int(float(_text(claim["k"]))) if _text(claim["k"]) else None
        base = {"claim_id": _text(claim["claim_id"]), "claim_text": _text(claim["claim_text"]),
                "outcome": ";".join(outcomes), "scope": scope, "study_set": set_name}
        claim_row = {**base, "level": "claim", "study_id": "", "study": ""}

        if scope == "pooled":
            verdict, reason = _pooled_claim(pooled, outcomes, set_name, direction, visits, rule, visit_tolerance,
                                            dictionary)
            results.append({**claim_row, "verdict": verdict, "reason": reason})
            continue
        ids, caveat = _set_members(study_sets, set_name, sc)
        per_rows = {sid: sc[(sc["study_id"] == sid) & sc["outcome"].isin(outcomes)] for sid in ids}
        if direction == "inconsistent":
            verdict, reason = _inconsistency(per_rows, labels, outcomes, visits, visit_tolerance, dictionary)
            results.append({**claim_row, "verdict": verdict, "reason": reason + caveat})
            continue
        per_study, study_results = [], []
        for sid in ids:
            v, why, _ = _study_verdict(per_rows[sid], outcomes, direction, visits, rule, visit_tolerance,
                                       dictionary)
            lab = labels.get(sid, sid)
            per_study.append((lab, v, why))
            study_results.append({**base, "level": "study", "study_id": sid, "study": lab, "verdict": v,
                                  "reason": why})
        verdict, reason = _combine(scope, k, per_study, set_words(set_name, config))
        results.append({**claim_row, "verdict": verdict, "reason": reason + caveat})
        results.extend(study_results)
    return pd.DataFrame(results, columns=RESULT_COLUMNS)


def set_words(name: str, config: Mapping) -> str:
    """How a reader is told the study set ("the studies of the first search"), not its id: the review's
    `review.study_sets.<id>.name` (core.review.set_name)."""
    return review.set_name(config, name)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def claims_table(results: pd.DataFrame, *, config: Mapping) -> pd.DataFrame:
    """Display form for the manuscript: one row per claim (its verdict over the set or the pooled estimate),
    followed by one row per study of the set for per-study claims."""
    rows = []
    for r in results.to_dict("records"):
        if r["level"] == "claim":
            where = "pooled estimate" if r["scope"] == "pooled" else _capital(set_words(r["study_set"], config))
            rows.append({"Claim": f"\u201c{r['claim_text']}\u201d", "Assessed over": where,
                         "Verdict": r["verdict"], "Reason": r["reason"]})
        else:
            rows.append({"Claim": "", "Assessed over": r["study"], "Verdict": r["verdict"], "Reason": r["reason"]})
    return pd.DataFrame(rows, columns=["Claim", "Assessed over", "Verdict", "Reason"])
