"""What each column of each extraction sheet must hold: the engine's columns and the review's codes.

The engine fixes the columns and their rules; the review's files give its own names and codes (config
review.arms: the outcomes sheet's arm ids and the studies sheet's patient-count columns; the vocabulary: designs,
appraisal checklists and judgements, and the studies-sheet columns only the review has). `sheet_columns` joins
the two; validation checks the sheets against the result. Numbers are read here too, never reinterpreting a
locale's separators.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from timecourse_meta.core.review import Arms, Vocabulary
from timecourse_meta.data import linkage

ID_PATTERN = r"^[a-z0-9_]+$"
# What kind of record a study was identified from (studies sheet, column `record_type`): the PRISMA flow counts
# records identified by these kinds.
RECORD_TYPES = ("journal_article", "conference_abstract", "thesis", "registry_record", "secondary_table",
                "news_summary")
# The authors' judgement of an adverse event's relation to the intervention (outcomes sheet, column `relation`)
RELATIONS = ("related", "possibly_related", "not_related", "not_stated")
TIME_UNITS = {"months": 1.0, "weeks": 12.0 / 52.0, "days": 12.0 / 365.25}

# statistic -> (required value columns, optional value columns)
STATISTICS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "mean_sd": (("mean", "sd"), ("n",)),
    "mean_se": (("mean", "se"), ("n",)),
    # an arm's estimate at a visit with only its standard error or variance (no n, no SD), as published
    # longitudinal meta-analyses often give it; the estimate goes in `mean`
    "estimate_se": (("mean", "se"), ()),
    "estimate_variance": (("mean", "variance"), ()),
    "mean_ci": (("mean", "ci_lower", "ci_upper"), ("n", "ci_level")),
    "median_iqr": (("median", "q1", "q3"), ("n",)),
    "median_range": (("median", "min", "max"), ("n",)),
    "median_iqr_range": (("median", "q1", "q3", "min", "max"), ("n",)),
    "median_only": (("median",), ("n",)),
    "mean_only": (("mean",), ("n",)),
    "events_total": (("events", "total"), ("percent", "n")),
    "percent": (("percent",), ("events", "n", "total")),
    "count": (("count",), ("n",)),
    "value": ((), ("value", "min", "max", "n")),  # a descriptive number, or a reported range of one
}
VALUE_COLUMNS = ("mean", "sd", "se", "variance", "ci_lower", "ci_upper", "ci_level", "median", "q1", "q3", "min",
                 "max", "events", "total", "percent", "count", "value")


@dataclass(frozen=True)
class Col:
    """What one column must hold."""

    kind: str = "text"  # text | number | integer
    required: bool = False
    allowed: tuple | None = None
    pattern: str | None = None
    minimum: float | None = None
    exclusive_minimum: bool = False
    maximum: float | None = None
    unique: bool = False
    in_header: bool = True  # False: a column added after sheets were made; a sheet without it reads it as empty
    note: str = ""  # where the allowed values come from, e.g. the review's vocabulary file

    def expected(self) -> str:
        parts = {"text": "text", "number": "a number", "integer": "a whole number"}[self.kind]
        if self.allowed:
            parts = "one of " + ", ".join(self.allowed)
        if self.pattern:
            parts += f" matching {self.pattern}"
        if self.minimum is not None:
            parts += f" {'>' if self.exclusive_minimum else '>='} {self.minimum:g}"
        if self.maximum is not None:
            parts += f" <= {self.maximum:g}"
        return f"{parts} ({self.note})" if self.note else parts


URL = Col(required=True, pattern=r"^https?://\S+$")
# The engine's own columns of each sheet. Columns filled from the review's files are marked REVIEW here and set by
# `sheet_columns`: the outcomes sheet's arm ids, the studies sheet's patient counts (one column per arm, named in
# config review.arms) and design codes, the appraisal codes, and the studies-sheet columns only the review has
# (vocabulary study_fields). Study-set ids are checked against config review.study_sets by validation.
REVIEW = Col(required=True)
ENGINE_COLUMNS: dict[str, dict[str, Col]] = {
    "studies": {
        "study_id": Col(required=True, pattern=ID_PATTERN, unique=True),
        "first_author": Col(required=True),
        "year": Col("integer", minimum=1900, maximum=2100),
        "journal": Col(),
        "volume_pages": Col(),
        "doi": Col(pattern=r"^10\.\S+/\S+$"),
        "design": REVIEW,
        "design_detail": Col(),
        "population": Col(required=True),
        "follow_up_months": Col("number", minimum=0),
        "study_sets": Col(required=True, pattern=r"^[a-z0-9_]+(;[a-z0-9_]+)*$"),
        "source_url": URL,
        "locator": Col(required=True),
        "notes": Col(),
        "patient_group": Col(required=True, pattern=ID_PATTERN),
        "overlap": Col(required=True, allowed=linkage.OVERLAPS),
        "overlap_basis": Col(required=True, allowed=linkage.BASES),
        "overlap_reason": Col(),
        "overlap_source": Col(pattern=r"^https?://\S+$"),
        # where the record came from and whether it is analysed (added with the first update of a review; a
        # sheet without them reads them as empty): `search` is checked against config review.searches,
        # `exclusion_reason` against the vocabulary's exclusion_reasons (empty = eligible for analysis)
        "record_type": Col(allowed=RECORD_TYPES, in_header=False, note="the record types of the engine"),
        "search": Col(pattern=ID_PATTERN, in_header=False),
        "exclusion_reason": REVIEW,
    },
    "outcomes": {
        "row_id": Col(required=True, pattern=r"^[a-z0-9_]+-[0-9]+$", unique=True),
        "study_id": Col(required=True, pattern=ID_PATTERN),
        "arm": REVIEW,
        "arm_label": Col(),
        "outcome": Col(required=True, pattern=ID_PATTERN),
        "outcome_reported": Col(required=True),
        "measure": Col(required=True, allowed=("absolute", "change_from_baseline")),
        "cohort": Col(required=True, pattern=ID_PATTERN),
        "time_value": Col("number", minimum=0),
        "time_unit": Col(allowed=tuple(TIME_UNITS)),
        "n": Col("integer", minimum=1),
        "statistic": Col(required=True, allowed=tuple(STATISTICS)),
        "mean": Col("number"),
        "sd": Col("number", minimum=0, exclusive_minimum=True),
        "se": Col("number", minimum=0, exclusive_minimum=True),
        "variance": Col("number", minimum=0, exclusive_minimum=True, in_header=False),
        "ci_lower": Col("number"),
        "ci_upper": Col("number"),
        "ci_level": Col("number", minimum=0, exclusive_minimum=True, maximum=0.999),
        "median": Col("number"),
        "q1": Col("number"),
        "q3": Col("number"),
        "min": Col("number"),
        "max": Col("number"),
        "events": Col("integer", minimum=0),
        "total": Col("integer", minimum=1),
        "percent": Col("number", minimum=0, maximum=100),
        "count": Col("integer", minimum=0),
        "value": Col("number"),
        "unit": Col(required=True),
        "p_value": Col(pattern=r"^(<|>|<=|>=|=)?\s?(0(\.\d+)?|1(\.0+)?|\.\d+)$"),
        "usable": Col(required=True, allowed=("yes", "no")),
        "not_usable_reason": Col(),
        "assumption": Col(),
        "source_url": URL,
        "locator": Col(required=True),
        "notes": Col(),
        # an adverse event's relation to the intervention as the authors judged it (safety table); a sheet
        # without the column reads it as empty (not an adverse event, or no judgement)
        "relation": Col(allowed=RELATIONS, in_header=False, note="the relations of the engine"),
    },
    "appraisal": {
        "study_id": Col(required=True, pattern=ID_PATTERN),
        "checklist": REVIEW,
        "item_id": Col(required=True, pattern=ID_PATTERN),
        "item": Col(required=True),
        "judgement": REVIEW,
        "rationale": Col(required=True),
        "judged_by": Col(required=True),
        "source_url": URL,
        "locator": Col(required=True),
    },
}


def sheet_columns(arms: Arms, vocabulary: Vocabulary) -> dict[str, dict[str, Col]]:
    """What each column of each sheet must hold, for this review: the engine's columns with the review's codes
    filled in, the two patient-count columns after `population`, and the vocabulary's study_fields after them."""
    source = vocabulary.source or "the vocabulary file"
    arm_ids = (arms.intervention.id, arms.comparator.id)
    studies: dict[str, Col] = {}
    for name, col in ENGINE_COLUMNS["studies"].items():
        studies[name] = col
        if name == "design":
            studies[name] = Col(required=True, allowed=tuple(vocabulary.designs),
                                note=f"the designs of {source}")
        if name == "population":
            # empty = not reported (a registry record, a study known only from another review's table);
            # validation warns when an analysed study leaves them empty
            studies[arms.intervention.n_column] = Col("integer", minimum=1,
                                                      note=f"patients in the {arms.intervention.id} arm")
            studies[arms.comparator.n_column] = Col("integer", minimum=0,
                                                    note=f"patients in the {arms.comparator.id} arm; 0 if none")
            for field_name, spec in vocabulary.study_fields.items():
                allowed = tuple(spec.get("allowed") or ()) or None
                studies[field_name] = Col(required=bool(spec.get("required")), allowed=allowed,
                                          note=f"study_fields of {source}" if allowed else "")
        if name == "exclusion_reason":
            reasons = tuple(vocabulary.exclusion_reasons)
            studies[name] = (Col(allowed=reasons, in_header=False, note=f"the exclusion_reasons of {source}")
                             if reasons else Col(pattern=r"^$", in_header=False,
                                                 note=f"empty: {source} defines no exclusion_reasons"))
    outcomes = dict(ENGINE_COLUMNS["outcomes"])
    outcomes["arm"] = Col(required=True, allowed=arm_ids, note="the arm ids of config review.arms")
    appraisal = dict(ENGINE_COLUMNS["appraisal"])
    appraisal["checklist"] = Col(required=True, allowed=tuple(vocabulary.checklists),
                                 note=f"the checklists of {source}")
    appraisal["judgement"] = Col(required=True, allowed=tuple(vocabulary.judgements),
                                 note=f"the judgements of {source}")
    return {"studies": studies, "outcomes": outcomes, "appraisal": appraisal}


NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def number_problem(text: str, col: Col) -> str | None:
    """What is wrong with the text of a numeric cell, or None. A comma, a space or an apostrophe inside a number
    is never reinterpreted: '1,234' is 1.234 in one locale and 1234 in another."""
    if text == "" or NUMBER.match(text) and math.isfinite(float(text)) and (
            col.kind != "integer" or float(text).is_integer()):
        return None
    body = text.strip().replace("\u2212", "-")
    if re.fullmatch(r"[+-]?[\d.,' \u00a0\u202f]*\d[\d.,' \u00a0\u202f]*", body) and re.search(r"[,' \u00a0\u202f]", body):
        digits = re.sub(r"[' \u00a0\u202f]", "", body)
        readings = sorted(r for r in {digits.replace(",", ""), digits.replace(",", ".")} if NUMBER.match(r))
        return (f"{col.expected()} with '.' as the decimal point and no thousands separator; '{text}' reads as a "
                f"different number in different locales, so it is not read: write "
                f"{' or '.join(readings) or 'the number'}, whichever the paper means")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?)?", body):
        return (f"{col.expected()}; the spreadsheet turned what was typed into a date ({body[:10]}): format the "
                "column as Number or Text and type the value again")
    if body.endswith("%") and NUMBER.match(body[:-1].strip()):
        return f"{col.expected()} without the % sign (write {body[:-1].strip()})"
    return col.expected()


def parse_number(text: str, kind: str) -> float | None:
    if text == "":
        return None
    if number_problem(text, Col(kind)) is not None:
        return math.nan
    return float(text)
