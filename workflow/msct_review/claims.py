"""Check a review's claims, held as data, against the per-study observed changes and the pooled summaries.

The claims file (e.g. data/claims/review_2023_claims.csv) has one row per claim:

| column | meaning |
|---|---|
| claim_id | short id |
| claim_text | the claim, quoted from the review |
| outcome | an outcome of the dictionary, or several separated by `;` (e.g. renal function = `gfr;egfr;...`) |
| scope | `all_studies` (every study of the set), `at_least_k_studies` (k or more studies), `pooled` (the pooled estimate) |
| k | the k of `at_least_k_studies` (empty otherwise) |
| visits | months, `;`-separated; `>m` = every visit later than m months; empty = every follow-up visit a study reported. For `decrease_then_not` one month: the last visit at which the decrease is claimed |
| visit_rule | optional: `all` (the direction must hold at every listed visit; default) or `any` (at one or more) |
| expected_direction | `improve`, `worsen` (relative to the outcome's direction of benefit), `inconsistent` (studies disagree), `decrease_then_not` (a fall up to the visit, none after it) |
| study_set | the study set the claim is about (e.g. `review_2023`) |
| source, notes | optional: where the claim was read; how it was encoded |

Evidence rules (per estimate, on the change-from-baseline scale where 0 = no change):
* an interval wholly on the side of benefit = *improvement*; wholly on the side of harm = *worsening*; an interval
  that includes no change = *no clear change*; an estimate without an interval (e.g. medians without spread) =
  *no interval*: it cannot support or contradict anything.
* `improve` / `worsen` for one study (or the pooled estimate): at the visits of the claim (a study's time matches a
  visit within `visit_tolerance` months), `visit_rule = all`: supported if every listed visit shows the expected
  direction; contradicted if any assessed visit shows the opposite or no clear change (the 2023 review's claims are
  of significant changes, so an interval that includes no change does not support them); otherwise not assessable.
  `visit_rule = any`: supported if at least one visit shows the expected direction; contradicted if every listed
  visit was assessed (or, with no visits listed, at least one was) and none shows it.
* `decrease_then_not` (literal decrease, whatever the direction of benefit): supported if an interval wholly below
  zero at a visit up to the claimed month and none wholly below zero after it (at least one later visit
  assessed); contradicted if a decrease persists after the month, or no early visit shows a decrease although
  all early estimates have intervals; otherwise not assessable.
* `inconsistent`: the studies' estimates (at the visits, over the listed outcomes) fall in at least two different
  classes (improvement / worsening / no clear change) in two different studies -> supported; two or more studies
  assessed and all in one class -> contradicted; fewer than two studies with an interval -> not assessable.
* Scope `all_studies`: supported if every study of the set is; contradicted if any is; else not assessable.
  `at_least_k_studies`: supported if k or more are; contradicted if fewer than k could still be (supported plus
  not assessable < k); else not assessable. `pooled`: the verdict of the pooled rows for the outcome.

The verdicts are the strings in VERDICTS; every verdict has a reason in words naming the studies and numbers.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from .tables import _spec, fmt_interval, months_text

SUPPORTED = "supported"
CONTRADICTED = "contradicted"
NOT_ASSESSABLE = "not assessable from the available data"
VERDICTS = (SUPPORTED, CONTRADICTED, NOT_ASSESSABLE)

SCOPES = {"all_studies", "at_least_k_studies", "pooled"}
DIRECTIONS = {"improve", "worsen", "inconsistent", "decrease_then_not"}
VISIT_RULES = {"all", "any"}
CLAIM_COLUMNS = ["claim_id", "claim_text", "outcome", "scope", "k", "visits", "expected_direction", "study_set"]

RESULT_COLUMNS = ["claim_id", "level", "study_id", "study", "claim_text", "outcome", "scope", "study_set",
                  "verdict", "reason"]

# classes of one estimate
IMPROVEMENT, WORSENING, NO_CLEAR, NO_INTERVAL = "improvement", "worsening", "no clear change", "no interval"


class ClaimsError(ValueError):
    """The claims table itself is malformed."""


# ----------------------------------------------------------------------------------------------------------------
# Reading and checking the claims table
# ----------------------------------------------------------------------------------------------------------------

def _text(x: Any) -> str:
    if x is None:
        return ""
    try:
        if pd.isna(x):
            return ""
    except (TypeError, ValueError):
        pass
    return str(x).strip()


def parse_visits(value: Any) -> list:
    """'1;3;6' -> [1.0, 3.0, 6.0]; '>1' -> [('after', 1.0)] (every visit later than 1 month); '' -> []."""
    text = _text(value)
    out: list = []
    for part in text.split(";") if text else []:
        part = part.strip()
        if not part:
            continue
        if part.startswith(">"):
            out.append(("after", float(part[1:].strip())))
        else:
            out.append(float(part))
    return out


def _visit_text(v) -> str:
    return f"after {months_text(v[1])}" if isinstance(v, tuple) else months_text(v)


def validate_claims(claims: pd.DataFrame, dictionary: Mapping | None = None) -> pd.DataFrame:
    """Check the claims table; raise ClaimsError listing every problem (row number = CSV line)."""
    missing = [c for c in CLAIM_COLUMNS if c not in claims.columns]
    if missing:
        raise ClaimsError(f"claims table lacks column(s) {missing}; expected {CLAIM_COLUMNS}")
    problems = []
    ids = claims["claim_id"].astype(str)
    for dup in sorted(set(ids[ids.duplicated()])):
        problems.append(f"claim_id {dup!r} is used more than once")
    for i, r in enumerate(claims.to_dict("records")):
        where = f"line {i + 2} (claim {r['claim_id']!r})"
        scope, direction = _text(r["scope"]), _text(r["expected_direction"])
        if scope not in SCOPES:
            problems.append(f"{where}: scope {scope!r} not one of {sorted(SCOPES)}")
        if direction not in DIRECTIONS:
            problems.append(f"{where}: expected_direction {direction!r} not one of {sorted(DIRECTIONS)}")
        if scope == "at_least_k_studies":
            try:
                k = float(_text(r["k"]))
                if k < 1 or not k.is_integer():
                    raise ValueError
            except ValueError:
                problems.append(f"{where}: scope at_least_k_studies needs a whole k >= 1 (got {r['k']!r})")
        try:
            visits = parse_visits(r["visits"])
        except ValueError:
            problems.append(f"{where}: visits {r['visits']!r} must be months (or '>m') separated by ';'")
            visits = []
        if direction == "decrease_then_not" and (len(visits) != 1 or isinstance(visits[0], tuple)):
            problems.append(f"{where}: decrease_then_not needs exactly one visit (the last month of the decrease)")
        if direction == "inconsistent" and scope == "pooled":
            problems.append(f"{where}: 'inconsistent' is about studies; it cannot have scope pooled")
        rule = _text(r.get("visit_rule")) or "all"
        if rule not in VISIT_RULES:
            problems.append(f"{where}: visit_rule {rule!r} not one of {sorted(VISIT_RULES)}")
        outcomes = [o.strip() for o in _text(r["outcome"]).split(";") if o.strip()]
        if not outcomes:
            problems.append(f"{where}: outcome is empty")
        if dictionary is not None:
            unknown = [o for o in outcomes if o not in dictionary]
            if unknown:
                problems.append(f"{where}: outcome(s) {unknown} not in the outcome dictionary")
        if not _text(r["claim_text"]):
            problems.append(f"{where}: claim_text is empty")
        if not _text(r["study_set"]):
            problems.append(f"{where}: study_set is empty")
    if problems:
        raise ClaimsError("Invalid claims table:\n  - " + "\n  - ".join(problems))
    return claims


def load_claims(path, dictionary: Mapping | None = None) -> pd.DataFrame:
    claims = pd.read_csv(path, dtype=str, keep_default_na=False)
    return validate_claims(claims, dictionary)


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


def _f(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _describe(row: Mapping, cls: str | None = None) -> str:
    """'-2.10 [-3.24, -0.96] g/24 h at 6 months (improvement)'; the basis text when there is no interval."""
    est, lo, hi = _f(row.get("estimate")), _f(row.get("lower")), _f(row.get("upper"))
    when = months_text(row.get("time_months"))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        basis = _text(row.get("basis"))
        return f"at {when}: {basis or 'estimate without an interval'}"
    u = _text(row.get("unit"))
    notes = [cls] if cls and cls != NO_INTERVAL else []
    if _text(row.get("basis")).startswith("derived"):
        notes.append("derived change, within-person r assumed")
    tail = f" ({'; '.join(notes)})" if notes else ""
    return f"{fmt_interval(est, lo, hi)}{(' ' + u) if u and u != 'as reported' else ''} at {when}{tail}"


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


def _study_verdict(rows: pd.DataFrame, outcomes: list[str], direction: str, visits: list[float], rule: str,
                   tol: float, dictionary: Mapping | None) -> tuple[str, str, list[str]]:
    """(verdict, reason, classes) of one study (or of the pooled rows) for an improve/worsen/decrease claim."""
    if rows.empty:
        names = " or ".join(_spec(dictionary, o)["label"] for o in outcomes)
        return NOT_ASSESSABLE, f"no change from baseline of {names} in the data (none reported or derivable)", []
    parts, classes = [], []
    if direction == "decrease_then_not":
        cut = visits[0]
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
        if late_dec:
            return CONTRADICTED, f"the decrease persists after {months_text(cut)}: {desc}", classes
        if ec and all(c != NO_INTERVAL for c in ec) and not early_dec:
            return CONTRADICTED, f"no decrease up to {months_text(cut)}: {desc}", classes
        if early_dec and late_assessed:
            return SUPPORTED, f"decrease up to {months_text(cut)}, none after: {desc}", classes
        missing = []
        if not early_dec:
            missing.append(f"no estimate with an interval up to {months_text(cut)}")
        if not late_assessed:
            missing.append(f"no estimate with an interval after {months_text(cut)}")
        return NOT_ASSESSABLE, "; ".join(missing) + (f" ({desc})" if desc else ""), classes

    expected = IMPROVEMENT if direction == "improve" else WORSENING
    matched = _match_visits(rows, visits, tol)
    per_visit = {}
    for v, part in matched.items():
        cls = []
        for r in part.to_dict("records"):
            spec = _spec(dictionary, r["outcome"])
            c = classify(_f(r["lower"]), _f(r["upper"]), spec["direction_of_benefit"])
            cls.append(c)
            label = spec["label"] if len(outcomes) > 1 else ""
            parts.append(f"{label + ' ' if label else ''}{_describe(r, c)}")
        per_visit[v] = cls
        classes += cls
    if not parts:
        listed = ", ".join(_visit_text(v) for v in visits)
        return NOT_ASSESSABLE, f"no estimate at {listed} (reported at " + ", ".join(
            months_text(t) for t in sorted(rows["time_months"].astype(float).unique())) + ")", classes
    desc = "; ".join(parts)
    opposite = {WORSENING, NO_CLEAR} if expected == IMPROVEMENT else {IMPROVEMENT, NO_CLEAR}
    shown = {v: (expected in c) for v, c in per_visit.items()}
    against = {v: any(x in opposite for x in c) for v, c in per_visit.items()}
    assessed = {v: any(x != NO_INTERVAL for x in c) for v, c in per_visit.items()}
    word = "improvement" if expected == IMPROVEMENT else "worsening"
    if rule == "all":
        if any(against.values()):
            bad = [_visit_text(v) for v, a in against.items() if a]
            return CONTRADICTED, f"no {word} shown at {', '.join(bad)}: {desc}", classes
        if per_visit and all(shown.values()):
            return SUPPORTED, f"{word} at every claimed visit: {desc}", classes
        gaps = [_visit_text(v) for v, a in assessed.items() if not a]
        return NOT_ASSESSABLE, f"no estimate with an interval at {', '.join(gaps)} \u2014 {desc}", classes
    # rule == "any"
    if any(shown.values()):
        return SUPPORTED, f"{word} shown: {desc}", classes
    complete = all(assessed.values()) if visits else any(assessed.values())
    if complete:
        return CONTRADICTED, f"no {word} at any assessed visit: {desc}", classes
    return NOT_ASSESSABLE, f"no estimate with an interval \u2014 {desc}", classes


def _combine(scope: str, k: int | None, per_study: list[tuple[str, str, str]], set_name: str) -> tuple[str, str]:
    """Claim verdict from per-study verdicts [(label, verdict, reason)]."""
    n = len(per_study)
    sup = [s for s, v, _ in per_study if v == SUPPORTED]
    con = [s for s, v, _ in per_study if v == CONTRADICTED]
    na = [s for s, v, _ in per_study if v == NOT_ASSESSABLE]
    tally = (f"supported in {len(sup)} of {n} studies of {set_name}"
             + (f" ({', '.join(sup)})" if sup else "")
             + (f"; contradicted in {len(con)} ({', '.join(con)})" if con else "")
             + (f"; not assessable in {len(na)} ({', '.join(na)})" if na else ""))
    if n == 0:
        return NOT_ASSESSABLE, f"the study set {set_name} has no studies"
    if scope == "all_studies":
        if con:
            return CONTRADICTED, tally
        if len(sup) == n:
            return SUPPORTED, tally
        return NOT_ASSESSABLE, tally
    kk = int(k or 1)
    if len(sup) >= kk:
        return SUPPORTED, tally + f"; the claim needs {kk}"
    if len(sup) + len(na) < kk:
        return CONTRADICTED, tally + f"; the claim needs {kk}, which the remaining studies cannot reach"
    return NOT_ASSESSABLE, tally + f"; the claim needs {kk}"


def _inconsistency(per_study_rows: dict[str, pd.DataFrame], labels: Mapping[str, str], outcomes: list[str],
                   visits: list[float], tol: float, dictionary: Mapping | None) -> tuple[str, str]:
    classes_by_study: dict[str, set] = {}
    parts = []
    for sid, rows in per_study_rows.items():
        lab = labels.get(sid, sid)
        if rows.empty:
            parts.append(f"{lab}: no data")
            continue
        matched = _match_visits(rows, visits, tol)
        descs, cls = [], set()
        for part in matched.values():
            for r in part.to_dict("records"):
                spec = _spec(dictionary, r["outcome"])
                c = classify(_f(r["lower"]), _f(r["upper"]), spec["direction_of_benefit"])
                descs.append(f"{spec['label']} {_describe(r, c)}")
                if c != NO_INTERVAL:
                    cls.add(c)
        parts.append(f"{lab}: " + ("; ".join(descs) if descs else "no estimate at the claimed visits"))
        if cls:
            classes_by_study[lab] = cls
    detail = " | ".join(parts)
    if len(classes_by_study) < 2:
        return NOT_ASSESSABLE, (f"fewer than two studies with an interval at the claimed visits "
                                f"({len(classes_by_study)}): {detail}")
    seen = set().union(*classes_by_study.values())  # two or more studies have an interval here
    if len(seen) > 1:
        return SUPPORTED, f"the studies disagree: {detail}"
    return CONTRADICTED, f"all {len(classes_by_study)} studies with data agree ({next(iter(seen))}): {detail}"


# ----------------------------------------------------------------------------------------------------------------
# Main entry point
# ----------------------------------------------------------------------------------------------------------------

def check_claims(claims: pd.DataFrame, study_changes: pd.DataFrame, pooled: pd.DataFrame | None,
                 dictionary: Mapping | None, *, study_sets: Mapping[str, Iterable[str]] | None = None,
                 labels: Mapping[str, str] | None = None, visit_tolerance: float = 0.5,
                 study_set_override: str | None = None) -> pd.DataFrame:
    """Verdict per claim (level `claim`) and, for per-study claims, per study of the set (level `study`).

    `claims`: the claims table (module docstring). `study_changes`: per-study observed changes from baseline, one
    row per study, outcome and visit: columns study_id, outcome, time_months, estimate, lower, upper (95% CI; NaN
    when none, e.g. medians only), optional label, unit, basis, n (`tables.observed_changes(...,
    include_median_only=True)` builds it from the analysis table). `pooled`: pooled summaries, columns outcome,
    time_months, estimate, lower, upper (95% CrI on the change scale, 0 = no change), optional study_set (rows of
    other sets are ignored), n_studies, unit; None when no model has run. `dictionary`: outcome -> Outcome (or dict)
    giving label and direction_of_benefit. `study_sets`: set name -> study ids; without it the set is the studies
    present in `study_changes` (and the reason says so). `study_set_override` checks every claim against another
    set (e.g. `all_candidates`).
    Returns columns RESULT_COLUMNS; verdicts are SUPPORTED / CONTRADICTED / NOT_ASSESSABLE.
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
        cid = _text(claim["claim_id"])
        scope = _text(claim["scope"])
        direction = _text(claim["expected_direction"])
        outcomes = [o.strip() for o in _text(claim["outcome"]).split(";") if o.strip()]
        visits = parse_visits(claim["visits"])
        rule = _text(claim.get("visit_rule")) or "all"
        set_name = study_set_override or _text(claim["study_set"])
        k = int(float(_text(claim["k"]))) if _text(claim["k"]) else None
        base = {"claim_id": cid, "claim_text": _text(claim["claim_text"]), "outcome": ";".join(outcomes),
                "scope": scope, "study_set": set_name}

        if scope == "pooled":
            rows = pooled if pooled is not None else pd.DataFrame(columns=["outcome", "time_months"])
            rows = rows[rows["outcome"].isin(outcomes)]
            if "study_set" in rows.columns:
                rows = rows[rows["study_set"] == set_name]
            if pooled is None:
                verdict, reason = NOT_ASSESSABLE, "no pooled summaries were given (no model results)"
            else:
                verdict, reason, _ = _study_verdict(rows, outcomes, direction, visits, rule, visit_tolerance,
                                                    dictionary)
                reason = f"pooled estimate ({set_name}): {reason}"
            results.append({**base, "level": "claim", "study_id": "", "study": "", "verdict": verdict,
                            "reason": reason})
            continue

        if study_sets is not None and set_name in study_sets:
            ids = list(dict.fromkeys(study_sets[set_name]))
            caveat = ""
        elif study_sets is not None:
            ids, caveat = [], ""
        else:
            ids = list(dict.fromkeys(sc["study_id"]))
            caveat = " (study-set membership not given: judged over the studies with data only)"
        per_rows = {sid: sc[(sc["study_id"] == sid) & sc["outcome"].isin(outcomes)] for sid in ids}

        if direction == "inconsistent":
            verdict, reason = _inconsistency(per_rows, labels, outcomes, visits, visit_tolerance, dictionary)
            results.append({**base, "level": "claim", "study_id": "", "study": "", "verdict": verdict,
                            "reason": reason + caveat})
            continue

        per_study = []
        study_results = []
        for sid in ids:
            v, why, _ = _study_verdict(per_rows[sid], outcomes, direction, visits, rule, visit_tolerance,
                                       dictionary)
            lab = labels.get(sid, sid)
            per_study.append((lab, v, why))
            study_results.append({**base, "level": "study", "study_id": sid, "study": lab, "verdict": v,
                                  "reason": why})
        verdict, reason = _combine(scope, k, per_study, set_name)
        results.append({**base, "level": "claim", "study_id": "", "study": "", "verdict": verdict,
                        "reason": reason + caveat})
        results.extend(study_results)
    return pd.DataFrame(results, columns=RESULT_COLUMNS)


def claims_table(results: pd.DataFrame) -> pd.DataFrame:
    """Display form for the manuscript: one row per claim (its verdict over the set or the pooled estimate),
    followed by one row per study of the set for per-study claims."""
    rows = []
    for r in results.to_dict("records"):
        if r["level"] == "claim":
            where = "pooled estimate" if r["scope"] == "pooled" else f"studies of {r['study_set']}"
            rows.append({"Claim": f"\u201c{r['claim_text']}\u201d", "Assessed over": where,
                         "Verdict": r["verdict"], "Reason": r["reason"]})
        else:
            rows.append({"Claim": "", "Assessed over": r["study"], "Verdict": r["verdict"], "Reason": r["reason"]})
    return pd.DataFrame(rows, columns=["Claim", "Assessed over", "Verdict", "Reason"])
