"""Reading and checking a review's claims file (the claims the check in `timecourse_meta.report.claims` judges).

The claims file (the config's `data.claims`) has one row per claim:

| column | meaning |
|---|---|
| claim_id | short id |
| claim_text | the claim, quoted from the review |
| outcome | an outcome of the dictionary, or several separated by `;` (e.g. pain = `pain_score;pain_vas`) |
| scope | `all_studies` (every study of the set), `at_least_k_studies` (k or more studies), `pooled` (the pooled estimate) |
| k | the k of `at_least_k_studies` (empty otherwise) |
| visits | months, `;`-separated; `>m` = every visit later than m months (a window); empty = every follow-up visit a study reported. For `decrease_then_not` one month: the last visit at which the decrease is claimed |
| visit_rule | optional: `all` (the direction must hold at every listed visit; default) or `any` (at one or more) |
| expected_direction | `improve`, `worsen` (relative to the outcome's direction of benefit), `inconsistent` (studies disagree), `decrease_then_not` (a fall up to the visit, none after it) |
| study_set | the study set the claim is about (e.g. `main_search`) |
| source, notes | optional: where the claim was read; how it was encoded |

Every problem of the file is reported at once, each naming its CSV line and claim id.
"""

from __future__ import annotations

from typing import Any, Mapping

import pandas as pd

from timecourse_meta.core.errors import EngineError

SCOPES = {"all_studies", "at_least_k_studies", "pooled"}
DIRECTIONS = {"improve", "worsen", "inconsistent", "decrease_then_not"}
VISIT_RULES = {"all", "any"}
CLAIM_COLUMNS = ["claim_id", "claim_text", "outcome", "scope", "k", "visits", "expected_direction", "study_set"]


class ClaimsError(EngineError, ValueError):
    """The claims table itself is malformed."""


def cell_text(x: Any) -> str:
    """A cell as stripped text; '' for a missing one."""
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
    text = cell_text(value)
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
        scope, direction = cell_text(r["scope"]), cell_text(r["expected_direction"])
        if scope not in SCOPES:
            problems.append(f"{where}: scope {scope!r} not one of {sorted(SCOPES)}")
        if direction not in DIRECTIONS:
            problems.append(f"{where}: expected_direction {direction!r} not one of {sorted(DIRECTIONS)}")
        if scope == "at_least_k_studies":
            try:
                k = float(cell_text(r["k"]))
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
        rule = cell_text(r.get("visit_rule")) or "all"
        if rule not in VISIT_RULES:
            problems.append(f"{where}: visit_rule {rule!r} not one of {sorted(VISIT_RULES)}")
        outcomes = [o.strip() for o in cell_text(r["outcome"]).split(";") if o.strip()]
        if not outcomes:
            problems.append(f"{where}: outcome is empty")
        if dictionary is not None:
            unknown = [o for o in outcomes if o not in dictionary]
            if unknown:
                problems.append(f"{where}: outcome(s) {unknown} not in the outcome dictionary")
        if not cell_text(r["claim_text"]):
            problems.append(f"{where}: claim_text is empty")
        if not cell_text(r["study_set"]):
            problems.append(f"{where}: study_set is empty")
    if problems:
        raise ClaimsError("Invalid claims table:\n  - " + "\n  - ".join(problems))
    return claims


def load_claims(path, dictionary: Mapping | None = None) -> pd.DataFrame:
    claims = pd.read_csv(path, dtype=str, keep_default_na=False)
    return validate_claims(claims, dictionary)
