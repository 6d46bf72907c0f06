"""The report stage's rules: figures and tables from the results files.

One `run_<rule>` per rule, keyword-only parameters named after the rule's files (see steps.runner). Each step
reads its inputs, builds plain frames through figure_data, and calls the tested plotting/table functions;
figures are written as PNG (300 dpi) and SVG, tables as CSV and Markdown, all atomically. Steps that name the
arms or study sets take the config's `review` section (a rule param, so a new label reruns them), steps that
use the review's vocabulary its file (a rule input).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Mapping

import arviz as az
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from timecourse_meta.core import atomic
from timecourse_meta.core import review as review_mod
from timecourse_meta.data import dictionary as dictionary_mod
from timecourse_meta.data import harmonise
from timecourse_meta.report import between_arm
from timecourse_meta.report import certainty as certainty_mod
from timecourse_meta.report import claims as claims_mod
from timecourse_meta.report import claims_file
from timecourse_meta.report import figure_data  # noqa: E402
from timecourse_meta.report import model_comparison
from timecourse_meta.report import summary_of_findings  # noqa: E402
from timecourse_meta.report import tables  # noqa: E402
from timecourse_meta.report.format import months_text
from timecourse_meta.report.plots import appraisal as appraisal_plots
from timecourse_meta.report.plots import common as plot_common
from timecourse_meta.report.plots import forest
from timecourse_meta.report.plots import model as model_plots
from timecourse_meta.report.plots import trajectory


def _stem(path: str) -> Path:
    return Path(path).with_suffix("")


def _studies(studies_csv: str) -> pd.DataFrame:
    return pd.read_csv(studies_csv, dtype=str, keep_default_na=False)


def _context(table_csv: str, studies_csv: str, study_set: str):
    table = pd.read_csv(table_csv)
    studies = _studies(studies_csv)
    ids = harmonise.study_sets(studies).get(study_set, [])
    return table, studies, ids, tables.study_labels(studies)


def _no_change_note(spec, study_set: str) -> str:
    return f"{spec.label}: no study in this study set reports a change from baseline"


def _set_styles(ids, labels: dict) -> dict:
    """Colour and marker of every study of a set, the same in each of the set's figures."""
    return plot_common.study_styles(sorted({labels.get(i, i) for i in ids}))


def _forest_figure(rows: pd.DataFrame, curve: pd.DataFrame, spec, visit: float, controls=None, *, arms):
    """A forest plot at one visit: the studies' own changes (comparator arms beside their intervention arm) and,
    only where
    the estimate is pooled at this visit from two or more studies, the pooled diamond, labelled with what was
    pooled."""
    pooled = figure_data.pooled_at(curve, visit)
    if pooled is not None and str(pooled.get("evidence")) != "pooled":
        pooled = None  # an interpolation or a prior-dominated estimate is not drawn as a pooled result
    if pooled is not None:
        k = int((~rows["control"]).sum()) if "control" in rows else len(rows)
        km = pooled.get("n_studies_model")
        pooled["label"] = (f"Pooled ({k} studies here; time course of {int(km)})"
                           if pd.notna(km) and int(km) > k else f"Pooled ({k} studies)")
    if controls is not None:
        rows = figure_data.with_control_rows(rows, controls, visit, arms=arms)
    return forest.forest_plot(rows, pooled, outcome_label=spec.label, unit=figure_data.display_unit(spec),
                             direction_of_benefit=spec.direction_of_benefit, visit_months=visit,
                             measure_label="Percent change from baseline" if spec.analysis_scale == "log"
                             else "Change from baseline")


def _with_controls(changes: pd.DataFrame, controls: pd.DataFrame) -> pd.DataFrame:
    """Trajectory points: the studies' intervention arms and, flagged ``control``, their comparator arms."""
    if controls.empty:
        return changes
    return pd.concat([changes.assign(control=False), controls], ignore_index=True)


def visit_stem(outcome: str, visit: float) -> str:
    """File stem of one per-visit forest plot, e.g. 'pain_score_6m' or 'pain_score_0.9m'."""
    return f"{outcome}_{float(visit):g}m"


def run_forest(*, table: str, studies: str, summary: str, settings: str, dictionary: str, outcome: str,
               study_set: str, png: str, key_visit: str, by_visit: str | None = None, review: Mapping) -> None:
    """Forest plot of one outcome at its key visit (the grid visit with most studies), and, in `by_visit`, one
    forest per visit with data (PNG + SVG each, named by visit_stem)."""
    table_csv, studies_csv, summary_csv, out_png, key_visit_csv, out_by_visit_dir = (
        table, studies, summary, png, key_visit, by_visit)
    grid = load_grid(settings)
    spec = dictionary_mod.load(dictionary)[outcome]
    arms = review_mod.arms({"review": review})
    table, _, ids, labels = _context(table_csv, studies_csv, study_set)
    summary = pd.read_csv(summary_csv, dtype={"study_id": str})
    changes = figure_data.study_changes(table, ids, spec, labels, summary, arms=arms)
    controls = figure_data.control_changes(summary, spec, labels)
    curve = figure_data.pooled_curve(summary, spec)
    visit = figure_data.key_visit(summary, changes, grid)
    if visit is None:
        fig = _note_figure(_no_change_note(spec, study_set))
        rows = pd.DataFrame()
    else:
        rows = figure_data.at_visit(changes, visit)
        fig = _forest_figure(rows, curve, spec, visit, controls, arms=arms)
    plot_common.save_figure(fig, _stem(out_png))
    plt.close(fig)
    if out_by_visit_dir is not None:
        with atomic.atomic_dir(out_by_visit_dir) as tmp:
            for v in figure_data.forest_visits(changes, grid):
                fig = _forest_figure(figure_data.at_visit(changes, v), curve, spec, v, controls, arms=arms)
                plot_common.save_figure(fig, tmp / visit_stem(outcome, v))
                plt.close(fig)
    atomic.write_csv(key_visit_csv, pd.DataFrame([{
        "outcome": outcome, "study_set": study_set, "key_visit_months": visit,
        "n_studies": int(rows["study_id"].nunique()) if not rows.empty else 0}]))


def run_trajectories(*, table: str, studies: str, summaries: list, outcomes: list, dictionary: str,
                     study_set: str, png: str, review: Mapping) -> None:
    """One panel per continuous outcome: pooled Δ(t) with credible and prediction bands over the studies."""
    summary_csvs, out_png = dict(zip(outcomes, summaries)), png
    outcomes = dictionary_mod.load(dictionary)
    arms = review_mod.arms({"review": review})
    table, _, ids, labels = _context(table, studies, study_set)
    panels = []
    for outcome, path in summary_csvs.items():
        spec = outcomes[outcome]
        summary = pd.read_csv(path, dtype={"study_id": str})
        changes = figure_data.study_changes(table, ids, spec, labels, summary, arms=arms)
        if changes.empty:
            continue
        curve = figure_data.pooled_curve(summary, spec)
        points = _with_controls(changes, figure_data.control_changes(summary, spec, labels))
        panels.append({"curve": curve if not curve.empty else None, "points": points, "outcome_label": spec.label,
                       "unit": figure_data.display_unit(spec), "direction_of_benefit": spec.direction_of_benefit})
    if not panels:
        fig = _note_figure("No continuous outcome has change data in this study set")
    else:
        # three columns for many outcomes, so that the figure fits a printed page with its caption
        fig = trajectory.trajectory_grid(panels, arms=arms, ncols=3 if len(panels) > 6 else 2,
                                         styles=_set_styles(ids, labels))
    plot_common.save_figure(fig, _stem(out_png))
    plt.close(fig)


def run_trajectory(*, table: str, studies: str, summary: str, dictionary: str, outcome: str, study_set: str,
                   png: str, review: Mapping) -> None:
    """One outcome's pooled change over 0-12 months with its bands, over the studies' own changes; each study
    keeps the colour and marker it has in the combined figure of its set."""
    out_png = png
    spec = dictionary_mod.load(dictionary)[outcome]
    arms = review_mod.arms({"review": review})
    table, _, ids, labels = _context(table, studies, study_set)
    summary = pd.read_csv(summary, dtype={"study_id": str})
    changes = figure_data.study_changes(table, ids, spec, labels, summary, arms=arms)
    curve = figure_data.pooled_curve(summary, spec)
    if changes.empty:
        fig = _note_figure(_no_change_note(spec, study_set))
    else:
        points = _with_controls(changes, figure_data.control_changes(summary, spec, labels))
        fig = trajectory.trajectory_plot(curve if not curve.empty else None, points, outcome_label=spec.label,
                                         unit=figure_data.display_unit(spec), arms=arms,
                                         direction_of_benefit=spec.direction_of_benefit,
                                         styles=_set_styles(ids, labels),
                                         title=None if not curve.empty else f"{spec.label} (no pooled time course)")
    plot_common.save_figure(fig, _stem(out_png))
    plt.close(fig)


_BIB_KEY = re.compile(r"^@\w+\{\s*([^,\s]+)\s*,", re.M)


def bibliography_keys(bib_path) -> set[str]:
    """The citation keys of a BibTeX/BibLaTeX file (entries only, not @comment)."""
    text = Path(bib_path).read_text(encoding="utf-8")
    return {m.group(1) for m in _BIB_KEY.finditer(text)
            if not text[m.start():m.start() + 9].lower().startswith(("@comment", "@string", "@preamble"))}


def cite_studies(frame: pd.DataFrame, labels: dict, keys: set[str], column: str = "Study") -> pd.DataFrame:
    """The table with a Pandoc citation after each study label whose study id is a bibliography key, so that
    every study a table lists is cited (and in the reference list); other cells are left as they are."""
    out = frame.copy()
    by_label = sorted(((lab, sid) for sid, lab in labels.items() if sid in keys), key=lambda x: -len(x[0]))
    cells = []
    for cell in out[column].astype(str):
        for lab, sid in by_label:
            if cell.startswith(lab) and f"@{sid}" not in cell:
                cell = f"{lab} [@{sid}]{cell[len(lab):]}"
                break
        cells.append(cell)
    out[column] = cells
    return out


def run_characteristics_table(*, table: str, studies: str, dictionary: str, study_set: str, csv: str,
                              bibliography: str | None = None, review: Mapping, vocabulary: str) -> None:
    """Table 1 as CSV and Markdown; in the Markdown every study is cited (its id is its bibliography key)."""
    table, studies, _, labels = _context(table, studies, study_set)
    frame = tables.characteristics_table(studies, table, study_set, dictionary_mod.load(dictionary), labels,
                                         arms=review_mod.arms({"review": review}),
                                         vocabulary=review_mod.load_vocabulary(vocabulary))
    stem = _stem(csv)
    atomic.write_csv(f"{stem}.csv", frame)
    shown = cite_studies(frame, labels, bibliography_keys(bibliography)) if bibliography else frame
    atomic.write_text(f"{stem}.md", tables.markdown_table(shown))


def run_appraisal(*, appraisal: str, studies: str, traffic: str, summary: str, csv: str, vocabulary: str) -> None:
    """The appraisal figures (traffic lights, summary bars) and the table, in the review's vocabulary."""
    out_traffic_png, out_summary_png, out_csv = traffic, summary, csv
    vocabulary = review_mod.load_vocabulary(vocabulary)
    appraisal = pd.read_csv(appraisal, dtype=str, keep_default_na=False)
    labels = tables.study_labels(_studies(studies))
    fig = appraisal_plots.traffic_light_plot(appraisal, labels=labels, vocabulary=vocabulary)
    plot_common.save_figure(fig, _stem(out_traffic_png))
    plt.close(fig)
    fig = appraisal_plots.appraisal_summary_plot(appraisal, vocabulary=vocabulary)
    plot_common.save_figure(fig, _stem(out_summary_png))
    plt.close(fig)
    parts = [tables.appraisal_table(appraisal, labels, checklist, vocabulary=vocabulary)
             for checklist in appraisal["checklist"].unique()]
    frames = []
    for checklist, part in zip(appraisal["checklist"].unique(), parts):
        frames.append(part.assign(Checklist=vocabulary.checklists.get(checklist, checklist)))
    tables.write_table(pd.concat(frames, ignore_index=True).fillna(""), _stem(out_csv))


def run_summary_of_findings(*, table: str, studies: str, summaries: list, outcomes: list, key_visits: list,
                            continuous: list, dictionary: str, study_set: str, csv: str, review: Mapping,
                            appraisal: str, vocabulary: str, certainty: Mapping, safety: str = "",
                            safety_pooled: str = "") -> None:
    """Summary of findings: the randomised differences of the set's controlled study (every outcome), then each
    continuous outcome at its key visit, each with its GRADE certainty (config `certainty`) and footnotes, then
    the safety rows (`safety`, `safety_pooled`: the safety rule's tables; not rated)."""
    table_csv, studies_csv, out_csv = table, studies, csv
    summary_csvs, key_visit_csvs = dict(zip(outcomes, summaries)), dict(zip(continuous, key_visits))
    outcomes = dictionary_mod.load(dictionary)
    arms = review_mod.arms({"review": review})
    cfg = certainty_mod.settings(certainty)
    risks = certainty_mod.study_risks(pd.read_csv(appraisal, dtype=str, keep_default_na=False),
                                      review_mod.load_vocabulary(vocabulary), cfg["risk_of_bias"])
    n_int, n_cmp = arms.intervention.n_column, arms.comparator.n_column
    table, studies, ids, labels = _context(table_csv, studies_csv, study_set)
    part = studies[studies["study_id"].isin(ids)]
    controlled = part[pd.to_numeric(part[n_cmp], errors="coerce").fillna(0) > 0]
    change_rows, between_rows, change_ratings, between_ratings = [], [], [], []
    pattern = cfg["indirectness"]["secondary_source_pattern"]

    def rate(spec, design, evidence, est, lo, hi, contributions, **extra):
        return _rating(spec, risks, cfg, design, evidence, est, lo, hi, contributions, **extra)

    for outcome, path in summary_csvs.items():
        spec = outcomes[outcome]
        summary = pd.read_csv(path, dtype={"study_id": str})
        for _, st in controlled.iterrows():
            for rec in between_arm.comparisons(summary, spec, table, arms=arms):
                if rec["study_id"] == st["study_id"]:
                    between_rows.append(summary_of_findings.between_arm_row(
                        rec, spec, labels[st["study_id"]], st[n_int], st[n_cmp], arms=arms))
                    n = _float(st[n_int]) + _float(st[n_cmp])
                    between_ratings.append(rate(
                        spec, certainty_mod.design_of(st["design"], cfg), "randomised", rec["primary_estimate"],
                        rec["primary_lower"], rec["primary_upper"],
                        [_contribution(table, labels, st["study_id"], n, rec["analysis_ids"], pattern)],
                        percent=spec.kind == "continuous" and spec.analysis_scale == "log"))
        if outcome not in key_visit_csvs:
            continue
        visit = pd.read_csv(key_visit_csvs[outcome])["key_visit_months"].iloc[0]
        changes = figure_data.study_changes(table, ids, spec, labels, summary, arms=arms)
        row = figure_data.finding(summary, changes, spec, None if pd.isna(visit) else float(visit))
        if row is None:
            continue
        here = figure_data.at_visit(changes, float(visit))
        if not row.get("evidence"):
            row["evidence"] = "pooled" if row["n_studies"] >= 2 else "study_estimate"
        change_rows.append(summary_of_findings.change_row(
            row, spec, study_label=str(here["label"].iloc[0]) if len(here) == 1 else "", arms=arms))
        change_ratings.append(rate(
            spec, certainty_mod.BEFORE_AFTER, str(row["evidence"]), row.get("estimate"), row.get("lower"),
            row.get("upper"), [_contribution(table, labels, r["study_id"], r["n"], r.get("analysis_ids"), pattern)
                     for _, r in here.iterrows()],
            pi_lower=_float(row.get("pi_lower")), pi_upper=_float(row.get("pi_upper")), tau=_float(row.get("tau")),
            percent=spec.analysis_scale == "log"))
    safety_rows = []
    if safety:
        safety_rows = summary_of_findings.safety_rows(
            pd.read_csv(safety, dtype=str, keep_default_na=False),
            pd.read_csv(safety_pooled, dtype=str, keep_default_na=False), arms=arms)
    frame = summary_of_findings.summary_of_findings(change_rows, between_rows, safety_rows)
    if frame.empty:
        frame = pd.DataFrame({"Outcome": [], "In words": ["No outcome has change data in this study set"]})
        tables.write_table(frame, _stem(out_csv))
        return
    frame, notes = summary_of_findings.with_certainty(
        frame, between_ratings + change_ratings + [None] * len(safety_rows))
    summary_of_findings.write(frame, notes, str(_stem(out_csv)))


def _rating(spec, risks, cfg, design, evidence, est, lo, hi, contributions, **extra):
    """One row's certainty (None for a row without an estimate: nothing to rate)."""
    if not math.isfinite(_float(est)):
        return None
    ev = certainty_mod.Evidence(design=design, evidence=evidence, estimate=float(est), lower=lo, upper=hi,
                                contributions=tuple(contributions), **extra)
    return certainty_mod.rate(ev, spec, risks=risks, certainty=cfg)


def _contribution(table: pd.DataFrame, labels: dict, study_id, n, analysis_ids, pattern):
    """A study's patients in a row, flagged when any of its analysis rows comes from a secondary source."""
    rows = table[table["analysis_id"].isin(str(analysis_ids or "").split(";"))]
    return certainty_mod.Contribution(str(study_id), labels.get(study_id, study_id), _float(n),
                                      certainty_mod.secondary(rows.get("source", []), pattern))


def _float(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def run_between_arm_table(*, table: str, studies: str, summaries: list, outcomes: list, dictionary: str,
                          study_set: str, csv: str, review: Mapping) -> None:
    """The randomised comparison of every controlled study of the set: both arms' changes and the between-arm
    differences from follow-up means and from change scores (timecourse_meta.report.between_arm)."""
    frames = {o: pd.read_csv(p, dtype={"study_id": str}) for o, p in zip(outcomes, summaries)}
    outcomes = dictionary_mod.load(dictionary)
    table, _, _, labels = _context(table, studies, study_set)
    frame = between_arm.between_arm_table(frames, outcomes, labels, table, arms=review_mod.arms({"review": review}))
    tables.write_table(frame, _stem(csv))


def run_time_course_table(*, summaries: list, outcomes: list, dictionary: str, csv: str) -> None:
    """Supplement: the PSIS-LOO comparison of the time courses and the shape the rule used, per outcome."""
    frames = {o: pd.read_csv(p, dtype={"study_id": str}) for o, p in zip(outcomes, summaries)}
    specs = dictionary_mod.load(dictionary)
    frame = model_comparison.comparison_table(frames, {o: specs[o].label for o in frames})
    tables.write_table(frame, _stem(csv))


def run_claims_check(*, claims: str, table: str, studies: str, summaries: list, outcomes: list, dictionary: str,
                     study_set: str, csv: str, review: Mapping) -> None:
    """Each claim of the review's claims file against the data and models of this study set."""
    claims_csv, out_csv, summary_csvs = claims, csv, dict(zip(outcomes, summaries))
    config = {"review": review}
    outcomes = dictionary_mod.load(dictionary)
    table, studies, _, labels = _context(table, studies, study_set)
    changes = tables.observed_changes(table, None, arm=review_mod.arms(config).intervention.id, labels=labels,
                                      include_median_only=True)
    changes["unit"] = changes["unit"].replace(figure_data.DISPLAY_UNITS)
    pooled = []
    for outcome, path in summary_csvs.items():
        curve = figure_data.pooled_curve(pd.read_csv(path), figure_data_spec_identity(outcomes[outcome]))
        for r in curve[curve["time_months"] > 0].itertuples():
            pooled.append({"outcome": outcome, "time_months": r.time_months, "estimate": r.estimate,
                           "lower": r.lower, "upper": r.upper, "study_set": study_set,
                           "n_studies": getattr(r, "n_studies", float("nan"))})
    claims = claims_file.load_claims(claims_csv, outcomes)
    result = claims_mod.check_claims(claims, changes, pd.DataFrame(pooled) if pooled else None, outcomes,
                                     config=config, study_sets=harmonise.study_sets(studies), labels=labels,
                                     study_set_override=study_set)
    atomic.write_csv(_stem(out_csv).with_suffix(".full.csv"), result)
    tables.write_table(claims_mod.claims_table(result, config=config), _stem(out_csv))


def figure_data_spec_identity(spec):
    """The pooled curve on the analysis scale (the claims check needs only the side of zero)."""
    return dictionary_mod.Outcome(**{**spec.__dict__, "analysis_scale": "identity"})


PARAMETER_LABELS = {"tau": "\u03c4, between-study SD", "rho_within": "\u03c1 of visits, within study",
                    "rho_between": "\u03c1 of study effects"}


def run_model_figures(*, idata: str, outcome: str, prior: str, ppc: str, rank: str, studies: str | None = None) -> None:
    """Supplement: prior vs posterior of tau and correlations, posterior predictive check, rank plots; studies
    by their labels (e.g. 'Smith 2017') when `studies` is given."""
    out_prior_png, out_ppc_png, out_rank_png, studies_csv = prior, ppc, rank, studies
    idata = az.from_netcdf(idata)
    study_names = tables.study_labels(_studies(studies_csv)) if studies_csv else {}
    names = [v for v in ("tau", "rho_within", "rho_between") if "posterior" in idata.groups()
             and v in idata.posterior]
    unit = _obs_unit(idata)
    tau_unit = "log scale" if unit.startswith("log of") else unit
    labels = {k: (f"{v} ({tau_unit})" if k == "tau" and tau_unit else v) for k, v in PARAMETER_LABELS.items()}
    for path, draw in ((out_prior_png, lambda: model_plots.prior_posterior_plot(idata, names, labels=labels)),
                       (out_ppc_png, lambda: model_plots.ppc_plot(idata, _observed_name(idata),
                                                                  obs_labels=_obs_labels(idata, study_names),
                                                                  unit=unit, value_label="Study mean or change")),
                       (out_rank_png, lambda: model_plots.rank_plot(idata, names))):
        try:
            fig = draw() if names else None
        except (KeyError, ValueError, IndexError) as exc:
            fig = _note_figure(f"{outcome}: {exc}")
        if fig is None:
            fig = _note_figure(f"{outcome}: no pooled model (thin evidence), so no model figure")
        plot_common.save_figure(fig, _stem(path))
        plt.close(fig)


def _observed_name(idata) -> str:
    if "observed_data" not in idata.groups() or not list(idata.observed_data.data_vars):
        raise KeyError("no observed data in the model")
    return list(idata.observed_data.data_vars)[0]


def _obs_labels(idata, study_names: dict | None = None) -> list[str] | None:
    """'Smith 2016: mean at 0.9 months' style labels for the observations, from the model's bookkeeping."""
    import json

    attrs = idata.constant_data.attrs if "constant_data" in idata.groups() else {}
    if "obs_json" not in attrs:
        return None
    study_names = study_names or {}
    labels = []
    for o in json.loads(attrs["obs_json"]):
        what = "change" if o.get("measure") == "change" else "mean"
        cohort = "" if o.get("cohort") in (None, "all") else f" [{o['cohort']}]"
        labels.append(f"{study_names.get(o['study_id'], o['study_id'])}{cohort}: {what} at "
                      f"{months_text(o['time_months'])}")
    return labels


def _obs_unit(idata) -> str:
    attrs = idata.constant_data.attrs if "constant_data" in idata.groups() else {}
    unit = figure_data.DISPLAY_UNITS.get(attrs.get("unit", ""), attrs.get("unit", ""))
    return f"log of {unit}" if attrs.get("analysis_scale") == "log" else unit


def _note_figure(text: str):
    fig, ax = plt.subplots(figsize=(6, 1.0))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    return fig


def run_diagnostics_table(*, gates: list, outcomes: list, study_set: str, csv: str,
                          dictionary: str | None = None) -> None:
    """All outcomes' gate results in one table for the supplement (outcomes by their labels)."""
    labels = ({k: v.label for k, v in dictionary_mod.load(dictionary).items()} if dictionary else {})
    frames = {labels.get(o, o): pd.read_csv(path) for o, path in zip(outcomes, gates)}
    tables.write_table(tables.diagnostics_table(frames), _stem(csv))


def load_grid(model_config: str) -> list[float]:
    return yaml.safe_load(Path(model_config).read_text(encoding="utf-8"))["visit_grid_months"]
