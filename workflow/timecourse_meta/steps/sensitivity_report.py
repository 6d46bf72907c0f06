"""The sensitivity report's rules: per outcome and study set the variant table and figure, per set the table of
verdicts (and, for the manuscript's supplement, the Markdown that shows each pooled outcome's figure).

Each step reads the sensitivity fits' files (`variants.csv`, `power_scaling.csv`), the forest plot's key visit
of a continuous outcome, and the config's `sensitivity.verdict`; the judging is `report.sensitivity`, the
drawing `report.plots.sensitivity`. Outputs are written atomically.
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
from timecourse_meta.data import dictionary as dictionary_mod  # noqa: E402
from timecourse_meta.report import sensitivity  # noqa: E402
from timecourse_meta.report import tables  # noqa: E402
from timecourse_meta.report.format import months_text  # noqa: E402
from timecourse_meta.report.plots import common as plot_common  # noqa: E402
from timecourse_meta.report.plots import sensitivity as sensitivity_plots  # noqa: E402


def _stem(path: str) -> Path:
    return Path(path).with_suffix("")


def _assess(variants: str, power_scaling: str | None, key_visit, spec, verdict: Mapping):
    """One outcome's variant results and verdict from its files (`key_visit`: the key-visit file of a
    continuous outcome; none for a binary one)."""
    frame = sensitivity.load_variants(variants)
    power = sensitivity.load_power_scaling(power_scaling)
    visit = sensitivity.read_key_visit(key_visit or None) if spec.kind != "binary" else None
    return sensitivity.assess(frame, power, spec, visit, verdict)


def _title(spec, visit) -> str:
    when = f" at {months_text(visit)}" if visit is not None else ""
    return f"{spec.label}{when}: sensitivity analyses"


def _xlabel(spec) -> str:
    if spec.kind == "binary":
        return "Proportion (%)"
    if spec.analysis_scale == "log":
        return "Percent change from baseline (%)"
    return f"Change from baseline ({sensitivity.unit_of(spec)})"


def run_sensitivity_table(*, variants: str, dictionary: str, outcome: str, csv: str, verdict: Mapping,
                          power_scaling: str | None = None, key_visit=None) -> None:
    """One outcome's variants at its key visit (estimate, 95% CrI, P(improvement), studies, status) as CSV and
    Markdown, the verdict as the Markdown's last line."""
    spec = dictionary_mod.load(dictionary)[outcome]
    results, judged = _assess(variants, power_scaling, key_visit, spec, verdict)
    frame = sensitivity.variant_table(results, spec)
    stem = _stem(csv)
    atomic.write_csv(f"{stem}.csv", frame)
    note = f"Verdict: {judged.text}. Prior sensitivity (power scaling): {judged.prior_sensitivity}."
    atomic.write_text(f"{stem}.md", tables.markdown_table(frame).rstrip("\n") + "\n\n" + note + "\n")


def run_sensitivity_figure(*, variants: str, dictionary: str, outcome: str, png: str, verdict: Mapping,
                           power_scaling: str | None = None, key_visit=None) -> None:
    """One outcome's variants as rows (PNG 300 dpi + SVG); an outcome without a pooled main estimate gets a
    one-line figure that says why."""
    spec = dictionary_mod.load(dictionary)[outcome]
    results, judged = _assess(variants, power_scaling, key_visit, spec, verdict)
    if judged.verdict == sensitivity.NO_VERDICT:
        fig, ax = plt.subplots(figsize=(6, 1.0))
        ax.axis("off")
        ax.text(0.5, 0.5, f"{spec.label}: {judged.text}", ha="center", va="center", wrap=True, gid="note")
    else:
        fig = sensitivity_plots.sensitivity_plot(
            results, title=_title(spec, judged.visit), verdict=judged.text, xlabel=_xlabel(spec),
            groups=sensitivity.GROUPS, direction_of_benefit=spec.direction_of_benefit,
            overturning=judged.overturning_variants, binary=spec.kind == "binary",
            decimals=sensitivity.digits_of(spec))
    plot_common.save_figure(fig, _stem(png))
    plt.close(fig)


def run_sensitivity_verdicts(*, variants: list, power_scalings: list, outcomes: list, dictionary: str,
                             study_set: str, csv: str, full: str, variant_list: str, figures_md: str,
                             verdict: Mapping, review: Mapping, key_visits: list = (), continuous: list = (),
                             figures: list = ()) -> None:
    """Every outcome's verdict in one table (CSV + Markdown), the same in machine form (`full`, read by the
    manuscript variables), every variant run (`variant_list`), and `figures_md`: the Markdown the manuscript's
    supplement includes, one figure per outcome with a verdict (`figures`: the sensitivity figures, in
    `outcomes` order)."""
    specs = dictionary_mod.load(dictionary)
    key_of = dict(zip(continuous, key_visits))
    figure_of = dict(zip(outcomes, figures))
    rows, verdicts, results = [], [], {}
    for outcome, variants_csv, power_csv in zip(outcomes, variants, power_scalings):
        spec = specs[outcome]
        results[outcome], judged = _assess(variants_csv, power_csv, key_of.get(outcome), spec, verdict)
        verdicts.append(judged)
        rows.append(sensitivity.verdict_row(judged, spec))
    tables.write_table(pd.DataFrame(rows, columns=sensitivity.VERDICT_COLUMNS), _stem(csv))
    atomic.write_csv(full, sensitivity.verdict_records(verdicts))
    atomic.write_csv(variant_list, sensitivity.variant_records(results))
    set_name = review_mod.set_name({"review": review}, study_set)
    atomic.write_text(figures_md, figures_markdown(verdicts, figure_of, set_name, study_set))


def figures_markdown(verdicts, figure_of: Mapping[str, str], set_name: str, study_set: str) -> str:
    """One Pandoc figure per outcome with a verdict (path as given, relative to the project root), captioned
    with the outcome, visit, set and verdict; a sentence when no outcome has one."""
    blocks = []
    for v in verdicts:
        if v.verdict == sensitivity.NO_VERDICT or v.outcome not in figure_of:
            continue
        when = f" at {months_text(v.visit)}" if v.visit is not None else ""
        caption = (f"{v.label}{when}, {set_name}: the pooled estimate of every sensitivity analysis, the main "
                   f"analysis in bold blue with its 95% credible interval as the shaded band. Verdict: {v.text}. "
                   f"Prior sensitivity (power scaling): {v.prior_sensitivity}.")
        blocks.append(f"![{caption}]({figure_of[v.outcome]}){{#fig-sensitivity-{study_set}-{v.outcome}}}")
    if not blocks:
        return (f"No outcome of {set_name} has a pooled estimate whose sensitivity could be assessed, so there "
                "is no sensitivity figure for it.\n")
    return "\n\n".join(blocks) + "\n"
