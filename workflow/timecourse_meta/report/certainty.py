"""Certainty of the evidence (GRADE) for one summary-of-findings row, from the data and stated rules.

A row is one outcome at its key visit in one study set (a change after the intervention: before-after
evidence) or one randomised between-arm difference. Every threshold is a key of config `certainty`
(workflow/schemas/config.schema.yaml, defaults there), so a review author reads and changes the rules there;
docs/certainty.md says the same in short. The rules, in GRADE's order of domains:

* Starting level: a between-arm difference of a study whose design is in `starting_level.randomised_designs`
  starts at `randomised` (high); of another controlled study at `non_randomised` (low); a change from
  baseline in the intervention arm (before-after) at `before_after` (low). Nothing is rated up.
* Risk of bias (appraisal sheet; each judgement's `concern` in the vocabulary): a study is at high risk when
  any of its items is of high concern, at unclear risk when more than `unclear_share` of its items that apply
  (concern not `none`) are unclear, else at low risk; a study without appraisal counts as `unappraised`.
  Items in `ignore_items` are not counted. Downgrade twice when studies at high risk hold at least
  `very_serious_share` of the row's patients, once when studies at high or unclear risk hold more than
  `serious_share`.
* Inconsistency (pooled rows from `min_studies` studies only; otherwise not assessable, not downgraded): once
  when the 95% credible interval excludes no change but the 95% prediction interval includes it (and, given
  an important difference, also reaches an important effect in the same direction); twice when, given an
  important difference, the prediction interval holds both an important benefit and an important harm.
* Imprecision: with the outcome's `important_difference` (outcome dictionary), once per threshold (an
  important benefit or an important harm) that the 95% interval crosses; without it, once when the interval
  includes no change. Once more when the row's patients are fewer than the optimal information size
  (`min_patients` per kind); at most twice. A prior-dominated estimate is downgraded twice.
* Indirectness: once when more than `serious_share` of the patients come from studies the review marks as
  indirect (`indirectness.studies`) or from rows whose source matches `secondary_source_pattern`; nothing
  marked, nothing downgraded.
* Publication bias: fewer than `min_studies` studies: not assessable, not downgraded; an outcome in
  `suspected` is downgraded once (the review's judgement, with its reason). No small-study test is run.

The final level is the starting level lowered by the sum of the downgrades, never below very low.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from timecourse_meta.core.config import load_schema
from timecourse_meta.core.errors import EngineError
from timecourse_meta.report.figure_data import DISPLAY_UNITS
from timecourse_meta.report.format import fmt_count, fmt_number

LEVELS = ("high", "moderate", "low", "very low")
CONFIG_LEVELS = {"high": 0, "moderate": 1, "low": 2, "very_low": 3}
DOMAINS = ("risk of bias", "inconsistency", "indirectness", "imprecision", "publication bias")
RANDOMISED, NON_RANDOMISED, BEFORE_AFTER = "randomised", "non_randomised", "before_after"
TIMES = {1: "once", 2: "twice"}


class CertaintyError(EngineError, ValueError):
    """A certainty setting or input cannot be read."""


@dataclass(frozen=True)
class Contribution:
    """One study's patients in a row; `secondary`: its numbers come from a secondary source."""
    study_id: str
    label: str
    n: float
    secondary: bool = False


@dataclass(frozen=True)
class Evidence:
    """What a rating reads: the row's numbers on the display scale (percent change for a log-scale outcome,
    percentage points for a binary difference) and the studies behind it."""
    design: str  # RANDOMISED, NON_RANDOMISED or BEFORE_AFTER
    evidence: str  # pooled, study_estimate, interpolated, prior_dominated, randomised
    estimate: float
    lower: float
    upper: float
    contributions: tuple[Contribution, ...]
    pi_lower: float = math.nan
    pi_upper: float = math.nan
    tau: float = math.nan
    percent: bool = False  # the numbers are percent changes of the mean (log-scale outcome)


@dataclass(frozen=True)
class Domain:
    domain: str
    downgrade: int
    reason: str
    assessed: bool = True


@dataclass(frozen=True)
class Rating:
    start: str
    level: str
    domains: tuple[Domain, ...] = field(default_factory=tuple)
    start_design: str = ""  # RANDOMISED, NON_RANDOMISED or BEFORE_AFTER

    def notes(self) -> list[str]:
        """The footnote sentences of this rating: the starting level when it is not high, each downgrade and
        each domain that could not be assessed."""
        out = []
        if self.start != "high":
            out.append(f"Started at {self.start} certainty: {START_REASONS[self.start_design]}.")
        for d in self.domains:
            if d.downgrade:
                out.append(f"Downgraded {TIMES[d.downgrade]} for {d.domain}: {d.reason}.")
            elif not d.assessed:
                out.append(f"{d.domain.capitalize()} not assessable: {d.reason}; not downgraded.")
        return out


START_REASONS = {BEFORE_AFTER: "a change from baseline in the treated arm without a comparator (before-after "
                               "evidence, observational)",
                 RANDOMISED: "a randomised comparison",
                 NON_RANDOMISED: "a non-randomised comparison between arms (observational)"}


# ---------------------------------------------------------------------------------------------- settings

def _defaults(schema: Mapping) -> dict:
    out = copy.deepcopy(schema.get("default", {}))
    for name, sub in schema.get("properties", {}).items():
        if sub.get("type") == "object" and "properties" in sub:
            out[name] = {**_defaults(sub), **out.get(name, {})}
        elif "default" in sub and name not in out:
            out[name] = copy.deepcopy(sub["default"])
    return out


def settings(certainty: Mapping | None = None) -> dict:
    """The `certainty` settings with every missing key at its schema default (the workflow passes the resolved
    config, already complete; tests pass a few keys)."""
    return _merge(_defaults(load_schema()["properties"]["certainty"]), certainty or {})


def _merge(base: dict, given: Mapping) -> dict:
    for name, value in given.items():
        known = base.get(name)
        base[name] = _merge(known, value) if isinstance(value, Mapping) and isinstance(known, dict) and known \
            else copy.deepcopy(value)
    return base


# ---------------------------------------------------------------------------------------------- scales

def _sign(spec) -> int:
    if spec.direction_of_benefit not in ("decrease", "increase"):
        raise CertaintyError(f"outcome '{spec.name}': direction_of_benefit = {spec.direction_of_benefit!r}; a "
                             "certainty rating needs 'decrease' or 'increase'")
    return -1 if spec.direction_of_benefit == "decrease" else 1


def _benefit(x: float, spec, percent: bool) -> float:
    """`x` on a scale where positive is an improvement (a log ratio for percent changes)."""
    x = float(x)
    if percent:
        x = math.log1p(x / 100.0) if x > -100 else -math.inf  # a fall of 100% or more: no ratio left
    return _sign(spec) * x


def _interval(lo, hi, spec, percent: bool) -> tuple[float, float]:
    a, b = _benefit(lo, spec, percent), _benefit(hi, spec, percent)
    return (a, b) if a <= b else (b, a)


def threshold(spec, percent: bool) -> float | None:
    """The important difference on the benefit scale (`_benefit`), or None without one. A percent
    difference d is the log ratio of a change of d% in the direction of benefit; the same ratio the other way
    is an important harm."""
    d = getattr(spec, "important_difference", None)
    if not d:
        return None
    value, scale = float(d["value"]), d.get("scale", "absolute")
    if (scale == "percent") != percent:
        raise CertaintyError(f"outcome '{spec.name}': important_difference.scale = {scale!r} but this row is "
                             f"reported {'as a percent change' if percent else 'in absolute units'}; expected "
                             f"{'percent' if percent else 'absolute'}")
    return abs(math.log1p(_sign(spec) * value / 100.0)) if percent else value


def _difference_text(spec) -> str:
    d = spec.important_difference
    unit = "%" if d.get("scale") == "percent" else f" {DISPLAY_UNITS.get(spec.canonical_unit, spec.canonical_unit)}"
    return f"{d['value']:g}{unit}"


def _finite(*xs) -> bool:
    try:
        return all(math.isfinite(float(x)) for x in xs)
    except (TypeError, ValueError):
        return False


def _n(contributions: Sequence[Contribution]) -> float:
    return sum(c.n for c in contributions if _finite(c.n))


def _shares(contributions: Sequence[Contribution], chosen: Iterable[str]) -> float:
    """Share of the row's patients in the `chosen` studies (equal weights when no n is known)."""
    chosen = set(chosen)
    if not contributions:
        return 0.0
    total = _n(contributions)
    if total > 0:
        return sum(c.n for c in contributions if c.study_id in chosen and _finite(c.n)) / total
    return sum(c.study_id in chosen for c in contributions) / len(contributions)


def _share_text(share: float) -> str:
    """'All', or the percent, of the patients (the start of a reason sentence)."""
    return "all" if share >= 1 else f"{fmt_number(100 * share, 0)}% of the"


def _names(contributions: Sequence[Contribution], chosen: Iterable[str]) -> str:
    chosen = set(chosen)
    return ", ".join(c.label for c in contributions if c.study_id in chosen)


# ---------------------------------------------------------------------------------------------- domains

def study_risk(items: Sequence[str], cfg: Mapping) -> str:
    """One study's risk of bias from the concerns of its appraisal items (see the module docstring)."""
    counted = [c for c in items if c != "none"]
    if not counted:
        return cfg["unappraised"]
    if "high" in counted:
        return "high"
    return "unclear" if counted.count("unclear") / len(counted) > cfg["unclear_share"] else "low"


def study_risks(appraisal, vocabulary, cfg: Mapping) -> dict[str, str]:
    """study_id -> high / unclear / low, from the validated appraisal sheet (rows: study_id, item_id,
    judgement) and the vocabulary's judgement concerns."""
    concerns: dict[str, list[str]] = {}
    ignore = set(cfg["ignore_items"])
    for _, row in appraisal.iterrows():
        if row["item_id"] in ignore:
            continue
        judgement = vocabulary.judgements.get(row["judgement"])
        if judgement is None:
            raise CertaintyError(f"appraisal sheet, study '{row['study_id']}', item '{row['item_id']}': judgement "
                                 f"{row['judgement']!r} is not in the vocabulary's judgements "
                                 f"({', '.join(vocabulary.judgements)})")
        concerns.setdefault(str(row["study_id"]), []).append(judgement.concern)
    return {study: study_risk(items, cfg) for study, items in concerns.items()}


def risk_of_bias(ev: Evidence, risks: Mapping[str, str], cfg: Mapping) -> Domain:
    cs = ev.contributions
    if not cs:
        return Domain("risk of bias", 0, "no study is named for this estimate", assessed=False)
    risk = {c.study_id: risks.get(c.study_id, cfg["unappraised"]) for c in cs}
    high = [s for s, r in risk.items() if r == "high"]
    unclear = [s for s, r in risk.items() if r == "unclear"]
    high_share, any_share = _shares(cs, high), _shares(cs, high + unclear)
    parts = []
    for chosen, text in ((high, "an appraisal item of high concern"), (unclear, "most appraisal items unclear")):
        for appraised in (True, False):
            group = [s for s in chosen if (s in risks) == appraised]
            if group:
                parts.append(f"{_names(cs, group)} ({text if appraised else 'not appraised'})")
    if high and high_share >= cfg["very_serious_share"]:
        return Domain("risk of bias", 2, f"{_share_text(high_share)} patients come from studies at high risk of "
                                         f"bias: {'; '.join(parts)}")
    if any_share > cfg["serious_share"]:
        return Domain("risk of bias", 1, f"{_share_text(any_share)} patients come from studies at high or "
                                         f"unclear risk of bias: {'; '.join(parts)}")
    return Domain("risk of bias", 0, "most patients come from studies at low risk of bias")


def inconsistency(ev: Evidence, spec, cfg: Mapping) -> Domain:
    k = len(ev.contributions)
    if ev.evidence != "pooled" or k < cfg["min_studies"]:
        return Domain("inconsistency", 0, "a single study" if k <= 1 else f"not pooled from "
                      f"{fmt_count(cfg['min_studies'])} or more studies", assessed=False)
    if not _finite(ev.lower, ev.upper, ev.pi_lower, ev.pi_upper):
        return Domain("inconsistency", 0, "no prediction interval", assessed=False)
    lo, hi = _interval(ev.lower, ev.upper, spec, ev.percent)
    pl, pu = _interval(ev.pi_lower, ev.pi_upper, spec, ev.percent)
    t = threshold(spec, ev.percent)
    tau = f" (between-study SD {fmt_number(ev.tau, 2)} {_tau_unit(spec)})" if _finite(ev.tau) else ""
    if t is not None and pl <= -t and pu >= t:
        return Domain("inconsistency", 2, "the 95% prediction interval for a new study includes both an important "
                      f"benefit and an important harm (important difference {_difference_text(spec)}){tau}")
    clear = lo > 0 or hi < 0
    reaches = t is None or (pu >= t if lo > 0 else pl <= -t)
    if clear and pl <= 0 <= pu and reaches:
        important = "" if t is None else " and an important effect"
        return Domain("inconsistency", 1, "the 95% credible interval excludes no change but the 95% prediction "
                      f"interval for a new study includes both no change{important}{tau}")
    return Domain("inconsistency", 0, f"the prediction interval agrees with the credible interval{tau}")


def _tau_unit(spec) -> str:
    if spec.analysis_scale == "log":
        return "on the log scale of the ratio of means"
    if spec.analysis_scale == "logit":
        return "on the log-odds scale"
    return DISPLAY_UNITS.get(spec.canonical_unit, spec.canonical_unit)


def imprecision(ev: Evidence, spec, cfg: Mapping) -> Domain:
    if ev.evidence == "prior_dominated":
        return Domain("imprecision", 2, "the data barely narrow the prior")
    n = _n(ev.contributions)
    ois = cfg["min_patients"].get(spec.kind, cfg["min_patients"]["continuous"])
    small = 0 < n < ois or not ev.contributions
    reasons, level = [], 0
    if not _finite(ev.lower, ev.upper):
        level, reasons = 1, ["no 95% interval is available"]
    else:
        lo, hi = _interval(ev.lower, ev.upper, spec, ev.percent)
        t = threshold(spec, ev.percent)
        if t is not None:
            crossed = int(lo < t < hi) + int(lo < -t < hi)
            level = crossed
            if crossed == 2:
                reasons.append("the 95% interval includes both an important benefit and an important harm "
                               f"(important difference {_difference_text(spec)})")
            elif crossed == 1:
                reasons.append("the 95% interval includes both an important and an unimportant effect "
                               f"(important difference {_difference_text(spec)})")
        elif lo <= 0 <= hi:
            level = 1
            reasons.append("the 95% interval includes no change (no important difference is set for this outcome)")
    if small:
        level += 1
        reasons.append(f"{fmt_count(int(n))} patients are fewer than the optimal information size of "
                       f"{fmt_count(ois)}" if ev.contributions else "no study reports at this visit")
    if level == 0:
        return Domain("imprecision", 0, "the 95% interval and the number of patients are adequate")
    return Domain("imprecision", min(level, 2), "; ".join(reasons))


def indirectness(ev: Evidence, cfg: Mapping) -> Domain:
    marked = cfg["studies"] or {}
    cs = ev.contributions
    chosen = [c.study_id for c in cs if c.study_id in marked or c.secondary]
    if not marked and not cfg["secondary_source_pattern"]:
        return Domain("indirectness", 0, "the review marks no study population or source as indirect")
    share = _shares(cs, chosen)
    if chosen and share > cfg["serious_share"]:
        why = "; ".join(f"{c.label}: {marked[c.study_id]}" if c.study_id in marked else
                        f"{c.label}: numbers from a secondary source" for c in cs if c.study_id in chosen)
        return Domain("indirectness", 1, f"{_share_text(share)} patients come from indirect evidence ({why})")
    return Domain("indirectness", 0, "most patients come from direct evidence")


def publication_bias(ev: Evidence, spec, cfg: Mapping) -> Domain:
    suspected = cfg["suspected"] or {}
    if spec.name in suspected:
        return Domain("publication bias", 1, str(suspected[spec.name]))
    k = len(ev.contributions)
    if k < cfg["min_studies"]:
        return Domain("publication bias", 0, f"fewer than {fmt_count(cfg['min_studies'])} studies",
                      assessed=False)
    return Domain("publication bias", 0, "not suspected by the review (no small-study test is run)")


def rate(ev: Evidence, spec, *, risks: Mapping[str, str], certainty: Mapping | None = None) -> Rating:
    """The GRADE rating of one row (`risks`: `study_risks` of the appraisal sheet)."""
    cfg = settings(certainty)
    start_key = {RANDOMISED: "randomised", NON_RANDOMISED: "non_randomised",
                 BEFORE_AFTER: "before_after"}.get(ev.design)
    if start_key is None:
        raise CertaintyError(f"design {ev.design!r}: expected one of {RANDOMISED}, {NON_RANDOMISED}, "
                             f"{BEFORE_AFTER}")
    start = CONFIG_LEVELS[cfg["starting_level"][start_key]]
    domains = (risk_of_bias(ev, risks, cfg["risk_of_bias"]), inconsistency(ev, spec, cfg["inconsistency"]),
               indirectness(ev, cfg["indirectness"]), imprecision(ev, spec, cfg["imprecision"]),
               publication_bias(ev, spec, cfg["publication_bias"]))
    level = min(start + sum(d.downgrade for d in domains), len(LEVELS) - 1)
    return Rating(start=LEVELS[start], level=LEVELS[level], domains=domains, start_design=ev.design)


def design_of(design_code: str, cfg: Mapping | None = None) -> str:
    """A between-arm difference's design: randomised when the study's design code is one of
    `starting_level.randomised_designs`."""
    codes = settings(cfg)["starting_level"]["randomised_designs"]
    return RANDOMISED if design_code in codes else NON_RANDOMISED


def secondary(sources: Iterable[str], pattern: str | None) -> bool:
    """Whether any of a study's rows has a source (analysis table `source`) matching the review's pattern."""
    if not pattern:
        return False
    try:
        rx = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise CertaintyError(f"config key 'certainty.indirectness.secondary_source_pattern' = {pattern!r}: not a "
                             f"regular expression ({exc})") from None
    return any(rx.search(str(s or "")) for s in sources)


def footnotes(ratings: Sequence[Rating | None]) -> tuple[list[str], list[str]]:
    """Per row the certainty cell ('Low (a, b)', a dash without a rating) and the table's footnote lines
    ('a. Downgraded once for ...'); identical sentences share one letter, lettered in order of first use."""
    letters: dict[str, str] = {}
    cells = []
    for rating in ratings:
        if rating is None:
            cells.append("\u2014")
            continue
        marks = []
        for note in rating.notes():
            if note not in letters:
                letters[note] = _letter(len(letters))
            marks.append(letters[note])
        marks.sort(key=lambda m: (len(m), m))
        cells.append(rating.level.capitalize() + (f" ({', '.join(marks)})" if marks else ""))
    return cells, [f"{letter}. {note}" for note, letter in letters.items()]


def _letter(i: int) -> str:
    """a, b, ..., z, aa, ab, ..."""
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(97 + r) + out
    return out
