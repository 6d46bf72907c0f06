"""The sensitivity report: the verdict rules on constructed variant tables (each with a known answer), the table
through the one formatter, the figure (what was drawn, the main row highlighted), the steps' files, and the
manuscript variables (the keys index.qmd uses exist and render).

Constructed inputs: `tests/sensitivity_helpers.py` copies a real-shaped model summary (the fixture results'
SLEDAI, 24-h urine protein and renal remission summaries) per variant and sets the pooled quantity at the key
visit; `tests/fixtures/sensitivity/all_candidates/sledai/` is the sensitivity fits' example of the file
interface.
"""

import math
import re
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

import sensitivity_helpers as helpers  # noqa: E402
from timecourse_meta.core import config as config_mod  # noqa: E402
from timecourse_meta.core import review  # noqa: E402
from timecourse_meta.data import dictionary as dictionary_mod  # noqa: E402
from timecourse_meta.manuscript import render  # noqa: E402
from timecourse_meta.manuscript import variables as V  # noqa: E402
from timecourse_meta.report import sensitivity as S  # noqa: E402
from timecourse_meta.report.plots import common as plot_common  # noqa: E402
from timecourse_meta.report.plots import sensitivity as sensitivity_plots  # noqa: E402
from timecourse_meta.steps import sensitivity_report as steps  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
RESULTS = FIXTURES / "results"
EXAMPLE = FIXTURES / "sensitivity" / "all_candidates" / "sledai"
DICTIONARY = ROOT / "data" / "review" / "outcomes.yaml"
SPECS = dictionary_mod.load(DICTIONARY)
M = "\u2212"
DEFAULT = {"p_threshold": 0.95}


def judged(frame, outcome="sledai", visit=6.0, power=None, verdict=DEFAULT):
    return S.assess(frame, power, SPECS[outcome], visit, verdict)


def loo(study, p, median=-3.1, lower=-8.2, upper=1.9, label=None):
    return dict(variant=f"loo_{study}", group="data", label=label or f"Without {study}", at=6.0, median=median,
                lower=lower, upper=upper, p=p)


# ----------------------------------------------------------------------------------------------- verdicts

def test_a_consistent_effect_is_robust_in_every_variant():
    frame = helpers.variants(helpers.main_summary(), [
        dict(variant="tau_x2", group="prior", label="\u03c4 prior twice the scale", at=6.0, median=-7.5,
             lower=-11.0, upper=-3.9, p=0.996),
        dict(variant="rho_high", group="correlation", label="High correlation", at=6.0, median=-7.9, lower=-9.9,
             upper=-5.8, p=0.9995),
        loo("deng2017", 0.97, -7.0, -12.0, -0.5)])
    results, v = judged(frame)
    assert v.verdict == S.ROBUST and v.conclusion == S.IMPROVEMENT
    assert v.text == "robust: improvement (P(improvement) \u2265 0.95) in all 3 fitted variants"
    assert v.overturning == [] and v.n_fitted == 3
    assert results["variant"].tolist() == ["main", "tau_x2", "rho_high", "loo_deng2017"]  # grouped: main, prior, ...


def test_one_leave_one_out_variant_at_0_81_is_fragile_and_named():
    frame = helpers.variants(helpers.main_summary(), [
        loo("deng2017", 0.99, -7.0, -11.0, -3.0, label="Without Deng 2017"),
        loo("gu2014", 0.81, label="Without Gu 2014")])
    _, v = judged(frame)
    assert v.verdict == S.FRAGILE
    assert v.text == "fragile: without Gu 2014, P(improvement) 0.81"
    assert v.overturning_variants == ["loo_gu2014"]


def test_the_threshold_comes_from_the_config():
    frame = helpers.variants(helpers.main_summary(), [loo("gu2014", 0.81, label="Without Gu 2014")])
    assert judged(frame, verdict={"p_threshold": 0.80})[1].verdict == S.ROBUST
    assert judged(frame, verdict={"p_threshold": 0.95})[1].verdict == S.FRAGILE
    resolved = config_mod.resolve(yaml.safe_load((ROOT / "config.yaml").read_text()))
    assert resolved["sensitivity"]["verdict"] == {"p_threshold": 0.95}
    with pytest.raises(S.SensitivityError, match="sensitivity.verdict.p_threshold"):
        S.settings({"p_threshold": 0.4})


def test_a_clear_absence_of_change_that_one_variant_makes_a_clear_change_is_fragile():
    summary = helpers.main_summary()
    main = helpers.variant_rows(summary, "main", "main", "Main analysis", at=6.0, median=-1.0, lower=-5.0,
                                upper=3.0, p=0.62)
    others = [helpers.variant_rows(summary, **spec) for spec in (
        dict(variant="tau_half", group="prior", label="Half the \u03c4 scale", at=6.0, median=-1.5, lower=-5.5,
             upper=2.5, p=0.7),
        dict(variant="loo_li2016", group="data", label="Without Li 2016", at=6.0, median=-4.0, lower=-7.5,
             upper=-0.2, p=0.97),
        dict(variant="loo_deng2017", group="data", label="Without Deng 2017", at=6.0, median=2.0, lower=0.1,
             upper=4.0, p=0.02))]
    _, v = judged(pd.concat([main, *others], ignore_index=True))
    assert v.conclusion == S.NO_CLEAR and v.verdict == S.FRAGILE
    assert v.overturning_variants == ["loo_li2016", "loo_deng2017"]  # a clear improvement and a clear worsening
    assert v.text == ("fragile: without Li 2016, P(improvement) 0.97; without Deng 2017, P(improvement) 0.02")


def test_a_failed_gate_variant_is_not_assessable_and_never_overturns():
    frame = helpers.variants(helpers.main_summary(), [
        loo("deng2017", 0.99, -7.0, -11.0, -3.0, label="Without Deng 2017"),
        dict(variant="loo_li2016", group="data", label="Without Li 2016", status="failed_gate",
             note="R-hat of tau 1.03 > 1.01")])
    results, v = judged(frame)
    assert v.verdict == S.ROBUST and v.overturning == []
    assert v.not_assessable == [("without Li 2016", "failed the convergence gate: R-hat of tau 1.03 > 1.01")]
    assert v.text.endswith("in the one fitted variant; not assessable: without Li 2016")
    only_failed = helpers.variants(helpers.main_summary(), [
        dict(variant="loo_li2016", group="data", label="Without Li 2016", status="failed_gate", note="R-hat")])
    assert judged(only_failed)[1].verdict == S.NOT_ASSESSABLE


def test_a_fitted_variant_without_an_estimate_at_the_key_visit_is_not_assessable():
    summary = helpers.main_summary()
    early = helpers.variant_rows(summary, "tc_short", "time_course", "Short time course")
    early = early[~((early["quantity"] == "delta") & early["visit_months"].notna())]  # no delta at any visit
    frame = pd.concat([helpers.variants(summary, []), early], ignore_index=True)
    results, v = judged(frame)
    assert v.verdict == S.NOT_ASSESSABLE and v.not_assessable == [("short time course", "no estimate at 6 months")]
    assert S.variant_table(results, SPECS["sledai"]).loc[1, "Status"] == "not assessable: no estimate at 6 months"


def test_not_applicable_and_same_as_main_variants_take_no_part():
    power = S.load_power_scaling(EXAMPLE / "power_scaling.csv")
    _, v = judged(S.load_variants(EXAMPLE / "variants.csv"), power=power)
    # the example: 3 fitted variants agree; Li 2016 failed the gate; Emax not applicable; primary-source same as main
    assert v.verdict == S.ROBUST and v.n_fitted == 3
    assert [lab for lab, _ in v.not_assessable] == ["without study Li 2016"]


def test_an_outcome_with_nothing_to_pool_gets_no_verdict_but_its_reason():
    frame = helpers.not_applicable("gfr", "all_candidates", "fewer than two studies report it at any visit")
    results, v = judged(frame, outcome="gfr", visit=None, power=helpers.power_scaling([]))
    assert v.verdict == S.NO_VERDICT
    assert v.text == "no verdict: fewer than two studies report it at any visit"
    row = S.verdict_row(v, SPECS["gfr"])
    assert row["Verdict"] == v.text and row["Visit (months)"] == "\u2014" and row["Prior sensitivity"] == "not assessed"


def test_the_key_visit_is_the_forest_plots_and_log_outcomes_are_percent_changes():
    """Only the 6-month row (the key visit) counts: a variant changed at 5.54 months only does not move it.
    24-h urine protein (log scale): 100 (exp(-0.6) - 1) = -45.1%, (exp(-0.9), exp(-0.3)) -> -59.3%, -25.9%."""
    summary = helpers.main_summary()
    frame = helpers.variants(summary, [dict(variant="odd", group="prior", label="Odd", at=5.538, median=5.0,
                                            lower=1.0, upper=9.0, p=0.01)])
    results, v = judged(frame)
    assert results.set_index("variant").loc["odd", "estimate"] == pytest.approx(-7.777064545903659)
    assert v.verdict == S.ROBUST
    key = S.read_key_visit(RESULTS / "tables" / "all_candidates" / "key_visits" / "sledai.csv")
    assert key == 6.0
    prot = helpers.variants(helpers.main_summary("proteinuria_24h"), [])
    results, v = judged(prot, outcome="proteinuria_24h")
    main = results.iloc[0]
    assert main["estimate"] == pytest.approx(100 * math.expm1(-0.6))
    table = S.variant_table(results, SPECS["proteinuria_24h"])
    assert table.loc[0, "Estimate (95% CrI)"] == f"{M}45% (95% CrI {M}59% to {M}26%)"


def test_a_binary_outcome_is_judged_on_its_pooled_proportion():
    """Renal remission at 12 months (the duration with most studies): 60.2% (45.0% to 74.0%)."""
    summary = helpers.main_summary("renal_remission")
    inside = dict(variant="loo_li2016", group="data", label="Without Li 2016", at=12.0, median=0.70, lower=0.5,
                  upper=0.85)
    outside = dict(variant="loo_gu2014", group="data", label="Without Gu 2014", at=12.0, median=0.35, lower=0.2,
                   upper=0.55)
    _, v = judged(helpers.variants(summary, [inside]), outcome="renal_remission", visit=None)
    assert v.visit == 12.0 and v.verdict == S.ROBUST
    _, v = judged(helpers.variants(summary, [inside, outside]), outcome="renal_remission", visit=None)
    assert v.verdict == S.FRAGILE and v.text == "fragile: without Gu 2014, 35% (outside 45% to 74%)"


# ------------------------------------------------------------------------------------------ tables, input

def test_the_variant_table_goes_through_the_formatter():
    results, v = judged(S.load_variants(EXAMPLE / "variants.csv"))
    table = S.variant_table(results, SPECS["sledai"]).set_index("Variant")
    assert table.columns.tolist() == S.TABLE_COLUMNS[1:]
    main = table.loc["Main analysis"]
    assert main["Estimate (95% CrI)"] == f"{M}7.8 (95% CrI {M}10.1 to {M}5.0)"
    assert main["P(improvement)"] == ">0.99" and main["Studies (patients)"] == "2 (32)"
    assert main["Conclusion"] == "improvement"
    failed = table.loc["Without study Li 2016"]
    assert failed["Estimate (95% CrI)"] == "\u2014"
    assert failed["Status"] == "not assessable: failed the convergence gate: R-hat of tau 1.03 > 1.01"
    assert table.loc["Only rows the study itself reported", "Status"].startswith("same as the main analysis")
    assert table.loc["Time course: Emax", "Status"].startswith("not applicable: needs")
    assert "-" not in "".join(table["Estimate (95% CrI)"])  # Unicode minus only


def test_power_scaling_flags_join_the_verdict_for_the_key_visit_and_hyperparameters():
    power = S.load_power_scaling(EXAMPLE / "power_scaling.csv")
    assert S.prior_flags(power, 6.0) == (
        "prior-dominated / weak likelihood (\u03c4); prior-dominated / weak likelihood (\u03c1 between studies); "
        "prior-data conflict (\u0394 at 6 months)")
    assert S.prior_flags(power, 3.0).endswith("(\u03c1 between studies)")  # the 6-month conflict is not at 3
    assert S.prior_flags(helpers.power_scaling([("tau", None, 0.01, 0.1, "-")]), 6.0) == "none flagged"
    assert S.prior_flags(None, 6.0) == "not assessed"


def test_bad_variant_files_name_file_row_column_and_value(tmp_path):
    frame = helpers.variants(helpers.main_summary(), [])
    frame.loc[2, "variant_status"] = "converged"
    frame.to_csv(tmp_path / "variants.csv", index=False)
    with pytest.raises(S.SensitivityError, match=r"variants.csv, row 4, column 'variant_status': value 'converged'"):
        S.load_variants(tmp_path / "variants.csv")
    frame[frame["variant"] != "main"].assign(variant_status="fitted").to_csv(tmp_path / "no_main.csv", index=False)
    with pytest.raises(S.SensitivityError, match=r"no_main.csv, column 'variant': no row of variant 'main'"):
        S.load_variants(tmp_path / "no_main.csv")
    frame.drop(columns=["variant_group"]).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(S.SensitivityError, match="missing column.*variant_group"):
        S.load_variants(tmp_path / "short.csv")


# ------------------------------------------------------------------------------------------------- figure

def _by_gid(fig, prefix):
    return [a for a in fig.findobj() if str(getattr(a, "get_gid", lambda: None)() or "").startswith(prefix)]


def test_the_figure_highlights_the_main_row_and_lists_failed_variants_with_their_reason():
    frame = helpers.variants(helpers.main_summary(), helpers.SLEDAI_SPECS)
    results, v = judged(frame)
    fig = sensitivity_plots.sensitivity_plot(results, title="SLEDAI score at 6 months", verdict=v.text,
                                             xlabel="Change from baseline (points)", groups=S.GROUPS,
                                             direction_of_benefit="decrease", overturning=v.overturning_variants)
    ax = fig.axes[0]
    (point,) = _by_gid(fig, "main_point")
    assert mcolors.to_hex(point.get_color()) == plot_common.POOLED_COLOUR
    assert point.get_xdata()[0] == pytest.approx(-7.777064545903659)
    assert _by_gid(fig, "main_line")[0].get_xdata()[0] == pytest.approx(-7.777064545903659)
    assert _by_gid(fig, "null_line")[0].get_xdata()[0] == 0
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "Main analysis" and ax.get_yticklabels()[0].get_fontweight() == "bold"
    assert labels.index("Priors") < labels.index("Within-person correlation") < labels.index("Data")
    # the variant that overturns the conclusion is red; the failed one has its reason and no point
    assert v.overturning_variants == ["loo_li2016"]
    (red,) = _by_gid(fig, "variant_point:loo_li2016")
    assert mcolors.to_hex(red.get_color()) == sensitivity_plots.OVERTURN_COLOUR
    assert not _by_gid(fig, "variant_point:emax")
    (note,) = _by_gid(fig, "variant_note:emax")
    assert note.get_text().startswith("not assessable: failed the convergence gate")
    assert note.get_position()[1] == labels.index("Emax time course")
    assert _by_gid(fig, "verdict_text")[0].get_text().startswith("fragile: without Li 2016")
    plt.close(fig)


# -------------------------------------------------------------------------------------------------- steps

def _fits(root: Path, study_set="all_candidates"):
    """Sensitivity files of every outcome of the fixture config under root/results/sensitivity/."""
    cfg = yaml.safe_load((RESULTS / "config" / "resolved_config.yaml").read_text())
    outcomes = cfg["outcomes"] + cfg["binary_outcomes"]
    for o in outcomes:
        folder = root / "results" / "sensitivity" / study_set / o
        folder.mkdir(parents=True, exist_ok=True)
        if o == "sledai" and study_set == "all_candidates":
            for name in ("variants.csv", "power_scaling.csv"):
                shutil.copy(EXAMPLE / name, folder / name)
            continue
        if o == "proteinuria_24h" and study_set == "all_candidates":
            frame = helpers.variants(helpers.main_summary(o), [loo("deng2017", 0.80, -0.2, -0.7, 0.3,
                                                                   label="Without Deng 2017")])
        else:
            frame = helpers.not_applicable(o, study_set, "fewer than two studies report it")
        frame.to_csv(folder / "variants.csv", index=False)
        helpers.power_scaling([]).reindex(columns=S.POWER_COLUMNS).to_csv(folder / "power_scaling.csv", index=False)
    return cfg, outcomes


def _run_verdicts(root: Path, cfg, outcomes, s: str, results_dir: Path):
    base = root / "results" / "sensitivity" / s
    tables = results_dir / "tables" / s
    steps.run_sensitivity_verdicts(
        variants=[str(base / o / "variants.csv") for o in outcomes],
        power_scalings=[str(base / o / "power_scaling.csv") for o in outcomes], outcomes=outcomes,
        dictionary=str(DICTIONARY), study_set=s, csv=str(tables / "sensitivity_verdicts.csv"),
        full=str(tables / "sensitivity_verdicts.full.csv"), variant_list=str(tables / "sensitivity_variants.csv"),
        figures_md=str(tables / "sensitivity_figures.md"), verdict={}, review=cfg["review"],
        key_visits=[str(RESULTS / "tables" / s / "key_visits" / f"{o}.csv") for o in cfg["outcomes"]],
        continuous=cfg["outcomes"], figures=[f"results/figures/{s}/sensitivity/{o}.png" for o in outcomes])


def test_the_steps_write_table_figure_and_verdicts(tmp_path):
    cfg, outcomes = _fits(tmp_path)
    base = tmp_path / "results" / "sensitivity" / "all_candidates" / "sledai"
    key = RESULTS / "tables" / "all_candidates" / "key_visits" / "sledai.csv"
    out = tmp_path / "out"
    steps.run_sensitivity_table(variants=str(base / "variants.csv"), power_scaling=str(base / "power_scaling.csv"),
                                key_visit=str(key), dictionary=str(DICTIONARY), outcome="sledai",
                                csv=str(out / "sledai.csv"), verdict={})
    assert pd.read_csv(out / "sledai.csv")["Variant"].iloc[0] == "Main analysis"
    assert "Verdict: robust: improvement" in (out / "sledai.md").read_text()
    steps.run_sensitivity_figure(variants=str(base / "variants.csv"), power_scaling=str(base / "power_scaling.csv"),
                                 key_visit=str(key), dictionary=str(DICTIONARY), outcome="sledai",
                                 png=str(out / "sledai.png"), verdict={})
    from PIL import Image

    with Image.open(out / "sledai.png") as image:
        assert round(image.info["dpi"][0]) == 300
    assert (out / "sledai.svg").stat().st_size > 0
    gfr = tmp_path / "results" / "sensitivity" / "all_candidates" / "gfr" / "variants.csv"
    steps.run_sensitivity_figure(variants=str(gfr), dictionary=str(DICTIONARY), outcome="gfr",
                                 png=str(out / "gfr.png"), verdict={}, key_visit=[])
    assert (out / "gfr.png").exists()

    _run_verdicts(tmp_path, cfg, outcomes, "all_candidates", out)
    table = pd.read_csv(out / "tables" / "all_candidates" / "sensitivity_verdicts.csv")
    assert len(table) == len(outcomes) and table.columns.tolist() == S.VERDICT_COLUMNS
    full = pd.read_csv(out / "tables" / "all_candidates" / "sensitivity_verdicts.full.csv").set_index("outcome")
    assert full.loc["sledai", "verdict"] == "robust" and full.loc["proteinuria_24h", "verdict"] == "fragile"
    assert full.loc["gfr", "verdict"] == "no verdict"
    figures = (out / "tables" / "all_candidates" / "sensitivity_figures.md").read_text()
    assert "(results/figures/all_candidates/sensitivity/sledai.png){#fig-sensitivity-all_candidates-sledai}" in figures
    assert "gfr.png" not in figures
    assert steps.figures_markdown([], {}, "the set", "s").startswith("No outcome of the set has a pooled")


# ---------------------------------------------------------------------------------------------- variables

@pytest.fixture(scope="module")
def with_sensitivity(tmp_path_factory):
    """The fixture results plus the verdict files of both study sets."""
    root = tmp_path_factory.mktemp("sens")
    results = root / "results"
    shutil.copytree(RESULTS, results)
    for s in ("review_2023", "all_candidates"):
        cfg, outcomes = _fits(root, s)
        _run_verdicts(root, cfg, outcomes, s, results)
    return results


def test_the_variables_say_which_conclusions_are_robust_and_which_fragile(with_sensitivity):
    flat = V.build_variables(with_sensitivity / "config" / "resolved_config.yaml", with_sensitivity, ROOT).flat()
    assert flat["other.sensitivity.sentence"] == (
        "the pooled conclusion on SLEDAI score held in every fitted sensitivity analysis (robust); the conclusion "
        "on 24-h urine protein was fragile (without Deng 2017, P(improvement) 0.80)")
    assert flat["other.sensitivity.n_assessed"] == "2" and flat["other.sensitivity.n_fragile"] == "1"
    assert flat["other.sensitivity.robust_list"] == "SLEDAI score"
    assert flat["main.sensitivity.sentence"] == "no outcome had a pooled conclusion whose sensitivity could be assessed"
    assert flat["other.sensitivity.gfr.verdict"] == "no verdict: fewer than two studies report it"
    assert flat["methods.sensitivity.p_threshold"] == "0.95" and flat["methods.sensitivity.p_worsening"] == "0.05"
    assert flat["methods.sensitivity.data"] == "each study left out in turn; only rows the study itself reported"
    assert flat["methods.sensitivity.time_course"] == "time course: Emax"
    assert flat["methods.sensitivity.correlation"] == "none"
    built = V.build_variables(with_sensitivity / "config" / "resolved_config.yaml", with_sensitivity, ROOT)
    assert built.lineage["other.sensitivity.sentence"]["results_file"][0].endswith(
        "tables/all_candidates/sensitivity_verdicts.full.csv")


def test_without_sensitivity_results_the_keys_say_so():
    flat = V.build_variables(RESULTS / "config" / "resolved_config.yaml", RESULTS, ROOT).flat()
    assert flat["other.sensitivity.sentence"] == "not run (no sensitivity results)"
    assert flat["methods.sensitivity.prior"] == "not run (no sensitivity results)"


def test_every_sensitivity_key_of_the_manuscript_exists_and_renders(with_sensitivity, tmp_path):
    qmd_text = (ROOT / "manuscript" / "index.qmd").read_text(encoding="utf-8")
    used = sorted(set(re.findall(r"\{\{<\s*var\s+(\S*sensitivity\S*?)\s*>\}\}", qmd_text)))
    assert "other.sensitivity.sentence" in used and "methods.sensitivity.prior" in used
    out = tmp_path / "vars"
    V.write_variables(with_sensitivity / "config" / "resolved_config.yaml", out / "_variables.yml",
                      out / "lineage.json", out / "priors.md", with_sensitivity, ROOT)
    # a small manuscript: the keys and the generated supplement figure list (with its figure) render
    project = tmp_path / "project"
    for outcome in ("sledai", "proteinuria_24h"):  # the outcomes with a verdict
        figure = project / "results" / "figures" / "all_candidates" / "sensitivity" / f"{outcome}.png"
        figure.parent.mkdir(parents=True, exist_ok=True)
        fig, ax = plt.subplots(figsize=(1, 1))
        plot_common.save_figure(fig, figure.with_suffix(""))
        plt.close(fig)
    (project / "manuscript").mkdir()
    shutil.copy(with_sensitivity / "tables" / "all_candidates" / "sensitivity_figures.md",
                project / "manuscript" / "figures.md")
    body = "\n\n".join(f"{key}: {{{{< var {key} >}}}}." for key in used)
    qmd = project / "manuscript" / "index.qmd"
    qmd.write_text(f"---\ntitle: Sensitivity\n---\n\n# Results\n\n{body}\n\nSee @fig-sensitivity-all_candidates-sledai."
                   "\n\n{{< include figures.md >}}\n", encoding="utf-8")
    vocabulary = review.load_vocabulary(ROOT / "data" / "review" / "vocabulary.yaml")
    html = V.run_manuscript(qmd, out / "_variables.yml", out / "lineage.json", ROOT / "manuscript" / "references.bib",
                            ROOT / "manuscript" / "vancouver.csl", project / "out", root=project, formats=("html",),
                            vocabulary=vocabulary)["html"].read_text(encoding="utf-8")
    loaded = render.load_variables(out / "_variables.yml")
    for key in used:
        assert render.lookup_variable(loaded, key)
    assert "held in every fitted sensitivity analysis" in " ".join(html.split())
    assert 'id="fig-sensitivity-all_candidates-sledai"' in html and "data:image/png" in html
    assert "XVAR" not in html and "??" not in html


def test_another_reviews_outcomes_go_through_the_same_steps(tmp_path):
    """The second review's dictionary (a log-scale, an identity-scale and a binary outcome): real-shaped
    variants for each, renamed, give a verdict table and figures; nothing names this review's outcomes."""
    review_dir = ROOT / "tests" / "examples" / "second_review"
    cfg = yaml.safe_load((review_dir / "config.yaml").read_text())
    dictionary = review_dir / cfg["data"]["outcome_dictionary"]
    sources = {"womac_pain": "sledai", "effusion_volume": "proteinuria_24h", "oarsi_response": "renal_remission"}
    outcomes = cfg["outcomes"] + cfg["binary_outcomes"]
    variants, powers, figures = [], [], []
    for o in outcomes:
        frame = helpers.variants(helpers.main_summary(sources[o]), []).assign(outcome=o)
        variants.append(tmp_path / f"{o}.csv")
        frame.to_csv(variants[-1], index=False)
        powers.append(tmp_path / f"{o}_power.csv")
        helpers.power_scaling([]).reindex(columns=S.POWER_COLUMNS).to_csv(powers[-1], index=False)
        figures.append(str(tmp_path / f"{o}.png"))
        key = tmp_path / f"{o}_key.csv"
        key.write_text(f"outcome,study_set,key_visit_months,n_studies\n{o},all_eligible,6.0,2\n")
        steps.run_sensitivity_figure(variants=str(variants[-1]), power_scaling=str(powers[-1]), key_visit=str(key),
                                     dictionary=str(dictionary), outcome=o, png=figures[-1], verdict={})
    steps.run_sensitivity_verdicts(
        variants=[str(p) for p in variants], power_scalings=[str(p) for p in powers], outcomes=outcomes,
        dictionary=str(dictionary), study_set="all_eligible", csv=str(tmp_path / "v.csv"), full=str(tmp_path / "f.csv"),
        variant_list=str(tmp_path / "l.csv"), figures_md=str(tmp_path / "figures.md"), verdict={},
        review=cfg["review"], key_visits=[str(tmp_path / f"{o}_key.csv") for o in cfg["outcomes"]],
        continuous=cfg["outcomes"], figures=figures)
    full = pd.read_csv(tmp_path / "f.csv").set_index("outcome")
    # no variant beside the main analysis: nothing to compare, but every outcome is judged on its own quantity
    assert (full["verdict"] == S.NOT_ASSESSABLE).all() and full.loc["oarsi_response", "visit_months"] == 12.0
    assert all(Path(f).exists() for f in figures)


def test_a_verdict_on_a_model_based_estimate_is_never_called_pooled():
    from timecourse_meta.manuscript.variables.sensitivity import verdict_sentence
    robust = [{"outcome": "a", "evidence": "pooled", "text": "robust"},
              {"outcome": "b", "evidence": "interpolated", "text": "robust"}]
    groups = {S.ROBUST: robust, S.FRAGILE: [], S.NOT_ASSESSABLE: []}
    text = verdict_sentence(groups, {"a": "Score A", "b": "Score B"})
    pooled_part, model_part = text.split("; ")
    assert pooled_part.startswith("the pooled conclusion on score A held")
    assert model_part.startswith("the model-based conclusion on score B") and "pooled" not in model_part
    assert S.evidence_words({"evidence": "interpolated"}) == "model-based interpolation"
    assert S.evidence_words({"evidence": "pooled"}) == ""


def test_a_single_studys_own_estimate_gets_no_verdict():
    frame = helpers.variants(helpers.main_summary(), [loo("deng2017", 0.97, -7.0, -12.0, -0.5)])
    main = frame["variant"] == "main"
    frame.loc[main, "evidence"] = "study_estimate"
    results, v = judged(frame)
    assert v.verdict == S.NO_VERDICT and v.text == "no verdict: a single study's own estimate, nothing pooled"
    frame.loc[main, "evidence"] = "pooled"
    assert judged(frame)[1].verdict == S.ROBUST  # the same numbers, pooled: judged
