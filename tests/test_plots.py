"""Figures: content checks on the drawn Axes (positions, values, colours), not just that a file appears."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.patches import Polygon  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402

import yaml  # noqa: E402

from timecourse_meta.core import review  # noqa: E402
from timecourse_meta.core.review import Arm, Arms  # noqa: E402
from timecourse_meta.report.plots import appraisal, common, forest, model, trajectory  # noqa: E402

MINUS = "\u2212"
ROOT = Path(__file__).resolve().parents[1]
ARMS = review.arms(yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8")))  # the shipped review's
VOCAB = review.load_vocabulary(ROOT / "data" / "review" / "vocabulary.yaml")
OTHER_ARMS = Arms(Arm("drug_a", "Drug A", "Drug A", "Drug A arm", "n_drug"),
                  Arm("placebo", "placebo", "placebo", "placebo arm", "n_placebo"))
trajectory_plot = partial(trajectory.trajectory_plot, arms=ARMS)
trajectory_grid = partial(trajectory.trajectory_grid, arms=ARMS)
traffic_light_plot = partial(appraisal.traffic_light_plot, vocabulary=VOCAB)
appraisal_summary_plot = partial(appraisal.appraisal_summary_plot, vocabulary=VOCAB)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _by_gid(ax, prefix):
    return [a for a in ax.get_children() if (a.get_gid() or "").startswith(prefix)]


def _texts(fig):
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def _all_font_sizes(fig):
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_text() and t.get_visible()]
    for ax in fig.axes:
        sizes += [t.get_fontsize() for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text()]
    return sizes


# ---------------------------------------------------------------------------------------------- forest

STUDIES = pd.DataFrame({
    "label": ["Alpha 2010", "Beta 2015", "Gamma 2020"],
    "estimate": [-1.0, -2.5, 0.5],
    "lower": [-2.0, -4.0, -0.5],
    "upper": [0.0, -1.0, 1.5],
    "n": [10, 40, 20],
})
POOLED = {"estimate": -1.2, "lower": -2.6, "upper": 0.1, "pi_lower": -4.5, "pi_upper": 2.2}


def _forest(direction="decrease", studies=STUDIES, pooled=POOLED, **kw):
    fig = forest.forest_plot(studies, pooled, outcome_label="24-h urine protein", unit="g/24 h",
                            direction_of_benefit=direction, visit_months=6, **kw)
    return fig, fig.axes[0]


def test_forest_rows_in_order_with_intervals_at_their_values():
    fig, ax = _forest()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["Alpha 2010", "Beta 2015", "Gamma 2020", "Pooled change (95% CrI)", "95% prediction interval"]
    ticks = list(ax.get_yticks())
    # y axis inverted: the first study is on top
    assert ax.get_ylim()[0] > ax.get_ylim()[1]
    for i, row in STUDIES.iterrows():
        (line,) = _by_gid(ax, f"study_ci:{row['label']}")
        assert list(line.get_xdata()) == [row["lower"], row["upper"]]
        assert list(line.get_ydata()) == [ticks[i], ticks[i]]
        (point,) = _by_gid(ax, f"study_point:{row['label']}")
        assert list(point.get_xdata()) == [row["estimate"]]
    # marker size grows with n
    sizes = {r: _by_gid(ax, f"study_point:{r}")[0].get_markersize() for r in STUDIES["label"]}
    assert sizes["Alpha 2010"] < sizes["Gamma 2020"] < sizes["Beta 2015"]


def test_forest_pooled_diamond_and_prediction_interval_at_their_values():
    fig, ax = _forest()
    (diamond,) = [p for p in ax.patches if p.get_gid() == "pooled_diamond"]
    assert isinstance(diamond, Polygon)
    xy = np.unique(diamond.get_xy(), axis=0)  # a closed polygon repeats its first vertex
    assert len(xy) == 4
    y_pooled = ax.get_yticks()[3]
    assert xy[:, 0].min() == pytest.approx(POOLED["lower"])
    assert xy[:, 0].max() == pytest.approx(POOLED["upper"])
    tips = xy[np.isclose(xy[:, 1], y_pooled)]
    assert sorted(tips[:, 0]) == pytest.approx([POOLED["lower"], POOLED["upper"]])
    apex = xy[~np.isclose(xy[:, 1], y_pooled)]
    assert np.allclose(apex[:, 0], POOLED["estimate"])
    (pi,) = _by_gid(ax, "prediction_interval")
    assert list(pi.get_xdata()) == [POOLED["pi_lower"], POOLED["pi_upper"]]
    assert pi.get_ydata()[0] == pytest.approx(ax.get_yticks()[4])
    (null,) = _by_gid(ax, "null_line")
    assert set(null.get_xdata()) == {0.0}


def test_forest_right_column_text_units_and_direction_words():
    fig, ax = _forest()
    est_texts = [t.get_text() for t in ax.texts if t.get_gid() == "column_estimate"]
    assert est_texts[:3] == [f"{MINUS}1.00 [{MINUS}2.00, 0.00]", f"{MINUS}2.50 [{MINUS}4.00, {MINUS}1.00]",
                             "0.50 [\u22120.50, 1.50]"]
    assert est_texts[3] == f"{MINUS}1.20 [{MINUS}2.60, 0.10]"
    n_texts = [t.get_text() for t in ax.texts if t.get_gid() == "column_n"]
    assert n_texts == ["10", "40", "20", "70"]
    assert "g/24 h" in ax.get_xlabel()
    left = [t for t in ax.texts if t.get_gid() == "direction_left"][0]
    right = [t for t in ax.texts if t.get_gid() == "direction_right"][0]
    # a single arm's change is not a comparison: the axis names the direction, no treatment is "favoured"
    assert "improvement" in left.get_text() and "worsening" in right.get_text()
    assert not any("favours" in t for t in _texts(fig))
    assert left.get_horizontalalignment() == "right" and right.get_horizontalalignment() == "left"
    # for an outcome whose benefit is an increase, the sides swap
    fig2, ax2 = _forest(direction="increase")
    left2 = [t for t in ax2.texts if t.get_gid() == "direction_left"][0]
    right2 = [t for t in ax2.texts if t.get_gid() == "direction_right"][0]
    assert "worsening" in left2.get_text() and "improvement" in right2.get_text()
    assert any("at 6 months" in t for t in _texts(fig))


def test_forest_single_study_has_no_diamond_and_says_so():
    fig, ax = _forest(studies=STUDIES.iloc[[1]], pooled=POOLED)
    assert not [p for p in ax.patches if p.get_gid() == "pooled_diamond"]
    assert not _by_gid(ax, "prediction_interval")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Beta 2015"]
    assert "single study: no pooled estimate" in _texts(fig)


def test_forest_row_without_interval_and_off_visit_time():
    studies = STUDIES.assign(time_months=[6.0, 5.54, 6.0])
    studies.loc[2, ["lower", "upper"]] = np.nan
    fig, ax = _forest(studies=studies)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[1] == "Beta 2015 (at 5.5 months)"
    assert not _by_gid(ax, "study_ci:Gamma 2020")
    (point,) = _by_gid(ax, "study_point:Gamma 2020")
    assert to_rgba(point.get_markerfacecolor()) == to_rgba("white")
    assert "0.50 [no interval]" in [t.get_text() for t in ax.texts]


def test_forest_fonts_and_width_fit_the_page():
    fig, _ = _forest()
    assert min(_all_font_sizes(fig)) >= common.MIN_FONT
    assert fig.get_size_inches()[0] <= common.MAX_WIDTH + 1e-9


# ---------------------------------------------------------------------------------------------- trajectory

CURVE = pd.DataFrame({
    "time_months": [0, 1, 3, 6, 12],
    "estimate": [0.0, -1.0, -1.5, -2.0, -2.2],
    "lower": [0.0, -1.6, -2.2, -2.9, -3.4],
    "upper": [0.0, -0.4, -0.8, -1.1, -1.0],
    "pi_lower": [0.0, -2.5, -3.3, -4.0, -4.6],
    "pi_upper": [0.0, 0.5, 0.3, 0.0, 0.2],
})
POINTS = pd.DataFrame({
    "label": ["Alpha 2010", "Alpha 2010", "Beta 2015", "Gamma 2020"],
    "time_months": [1.0, 3.0, 6.0, 12.0],
    "estimate": [-0.9, -1.7, -2.1, -2.5],
    "lower": [-1.5, -2.4, -3.0, -3.5],
    "upper": [-0.3, -1.0, -1.2, -1.5],
    "n": [10, 10, 40, 20],
})


def _band_bounds(collection):
    """x -> (min y, max y) of a fill_between polygon."""
    verts = collection.get_paths()[0].vertices
    out = {}
    for x, y in verts:
        lo, hi = out.get(round(x, 9), (np.inf, -np.inf))
        out[round(x, 9)] = (min(lo, y), max(hi, y))
    return out


def test_trajectory_bands_and_median_at_their_values():
    fig = trajectory_plot(CURVE, POINTS, outcome_label="24-h urine protein", unit="g/24 h",
                                direction_of_benefit="decrease")
    ax = fig.axes[0]
    (cri,) = _by_gid(ax, "credible_band")
    (pib,) = _by_gid(ax, "prediction_band")
    cb, pb = _band_bounds(cri), _band_bounds(pib)
    for r in CURVE.itertuples():
        assert cb[round(r.time_months, 9)] == pytest.approx((r.lower, r.upper))
        assert pb[round(r.time_months, 9)] == pytest.approx((r.pi_lower, r.pi_upper))
    (median,) = _by_gid(ax, "pooled_median")
    assert list(median.get_xdata()) == list(CURVE["time_months"])
    assert list(median.get_ydata()) == list(CURVE["estimate"])
    assert "g/24 h" in ax.get_ylabel() and "lower = improvement" in ax.get_ylabel()
    assert "Months" in ax.get_xlabel()


def test_trajectory_study_points_one_series_per_study_sized_by_n():
    fig = trajectory_plot(CURVE, POINTS, outcome_label="24-h urine protein", unit="g/24 h",
                                direction_of_benefit="decrease")
    ax = fig.axes[0]
    series = {c.get_gid().split(":", 1)[1]: c for c in _by_gid(ax, "study_points:")}
    assert list(series) == ["Alpha 2010", "Beta 2015", "Gamma 2020"]
    assert series["Alpha 2010"].get_offsets().tolist() == [[1.0, -0.9], [3.0, -1.7]]
    assert series["Beta 2015"].get_offsets().tolist() == [[6.0, -2.1]]
    s = {k: v.get_sizes()[0] for k, v in series.items()}
    assert s["Alpha 2010"] < s["Gamma 2020"] < s["Beta 2015"]
    colours = {k: tuple(v.get_edgecolor()[0]) for k, v in series.items()}
    assert len(set(colours.values())) == 3
    legend_labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"Alpha 2010", "Beta 2015", "Gamma 2020", "95% credible interval",
            "95% prediction interval"} <= set(legend_labels)
    assert min(_all_font_sizes(fig)) >= common.MIN_FONT


def test_trajectory_dodges_studies_sharing_a_visit():
    pts = POINTS.copy()
    pts.loc[2, "time_months"] = 12.0  # Beta and Gamma both at 12 months
    fig = trajectory_plot(None, pts, outcome_label="x", unit="u", direction_of_benefit="increase")
    ax = fig.axes[0]
    xs = {c.get_gid(): c.get_offsets()[:, 0] for c in _by_gid(ax, "study_points:")}
    assert xs["study_points:Beta 2015"][0] != xs["study_points:Gamma 2020"][0]
    assert abs(xs["study_points:Beta 2015"][0] - 12) < 0.5
    assert xs["study_points:Alpha 2010"].tolist() == [1.0, 3.0]
    assert "no pooled time course" in ax.get_title(loc="left")
    assert not _by_gid(ax, "credible_band")


def test_trajectory_grid_one_panel_per_outcome_consistent_study_styles():
    panels = [
        {"curve": CURVE, "points": POINTS, "outcome_label": "24-h urine protein", "unit": "g/24 h",
         "direction_of_benefit": "decrease"},
        {"curve": None, "points": POINTS[POINTS["label"] != "Alpha 2010"], "outcome_label": "SLEDAI",
         "unit": "score", "direction_of_benefit": "decrease"},
        {"curve": None, "points": POINTS.iloc[[0]], "outcome_label": "eGFR", "unit": "mL/min/1.73 m2",
         "direction_of_benefit": "increase"},
    ]
    fig = trajectory_grid(panels, ncols=2)
    visible = [ax for ax in fig.axes if ax.axison]
    assert len(visible) == 3
    assert [ax.get_title(loc="left").split("\n")[0] for ax in visible] == ["24-h urine protein", "SLEDAI", "eGFR"]
    beta = [tuple(c.get_edgecolor()[0]) for ax in visible for c in _by_gid(ax, "study_points:Beta 2015")]
    assert len(beta) == 2 and beta[0] == beta[1]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend.count("Alpha 2010") == 1
    assert fig.get_size_inches()[0] <= common.MAX_WIDTH + 1e-9


# ---------------------------------------------------------------------------------------------- appraisal

APPRAISAL = pd.DataFrame({
    "study_id": ["s1", "s1", "s1", "s2", "s2", "s2", "r1", "r1"],
    "checklist": ["cebm_case_series"] * 6 + ["cebm_rct"] * 2,
    "item_id": ["cs_a", "cs_b", "cs_c"] * 2 + ["rct_a", "rct_b"],
    "item": ["Defined sample?", "Consecutive?", "Follow-up?"] * 2 + ["Randomised?", "Concealed?"],
    "judgement": ["yes", "no", "unclear", "not_reported", "not_applicable", "unclear", "yes", "not_reported"],
})


def test_traffic_light_one_marker_per_study_item_with_the_right_colour():
    fig = traffic_light_plot(APPRAISAL, labels={"s1": "Study One", "s2": "Study Two", "r1": "Trial"})
    grids = {c.get_gid(): (ax, c) for ax in fig.axes for c in ax.collections}
    ax, cs = grids["judgements:cebm_case_series"]
    assert cs.get_offsets().tolist() == [[0, 0], [1, 0], [2, 0], [0, 1], [1, 1], [2, 1]]
    expected = [VOCAB.judgements[j].colour for j in APPRAISAL["judgement"][:6]]
    assert [tuple(c) for c in cs.get_facecolors()] == [to_rgba(c) for c in expected]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Study One", "Study Two"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Q1", "Q2", "Q3"]
    symbols = [t.get_text() for t in ax.texts]
    assert symbols == ["+", "\u2212", "?", "NR", "?"]  # not applicable: blank
    # white on the saturated fills (yes green, no red), black on the light ones (unclear yellow, not reported grey)
    assert [t.get_color() for t in ax.texts] == ["white", "white", "black", "black", "black"]
    ax2, rct = grids["judgements:cebm_rct"]
    assert len(rct.get_offsets()) == 2
    assert [t.get_text() for t in ax2.get_yticklabels()] == ["Trial"]
    texts = _texts(fig)
    assert any("Q1 Defined sample?" in t for t in texts)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("Unclear" in t for t in legend) and any("Not reported" in t for t in legend)
    assert min(_all_font_sizes(fig)) >= common.MIN_FONT


def test_traffic_light_rejects_unknown_judgement():
    bad = APPRAISAL.assign(judgement=["maybe"] + list(APPRAISAL["judgement"][1:]))
    with pytest.raises(ValueError, match="maybe"):
        traffic_light_plot(bad)


def test_appraisal_summary_bars_are_percentages_per_item():
    frame = pd.DataFrame({
        "study_id": ["a", "b", "c", "d"] * 2,
        "item_id": ["q1"] * 4 + ["q2"] * 4,
        "item": ["First?"] * 4 + ["Second?"] * 4,
        "judgement": ["yes", "yes", "unclear", "not_reported", "no", "no", "no", "no"],
    })
    fig = appraisal_summary_plot(frame)
    ax = fig.axes[0]
    bars = {p.get_gid(): p for p in ax.patches}
    assert bars["summary:all:yes:q1"].get_width() == pytest.approx(50)
    assert bars["summary:all:unclear:q1"].get_width() == pytest.approx(25)
    assert bars["summary:all:not_reported:q1"].get_width() == pytest.approx(25)
    assert bars["summary:all:not_reported:q1"].get_x() == pytest.approx(75)
    assert bars["summary:all:no:q2"].get_width() == pytest.approx(100)
    assert to_rgba(bars["summary:all:unclear:q1"].get_facecolor()) == to_rgba(VOCAB.judgements["unclear"].colour)
    assert ax.get_xlabel() == "Studies (%)"


# ---------------------------------------------------------------------------------------------- saving

def test_save_figure_writes_png_300dpi_and_svg_atomically(tmp_path):
    fig, _ = _forest()
    paths = common.save_figure(fig, tmp_path / "sub" / "forest_test")
    assert [p.name for p in paths] == ["forest_test.png", "forest_test.svg"]
    png = paths[0].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    i = png.index(b"pHYs")
    ppm = int.from_bytes(png[i + 4:i + 8], "big")
    assert ppm == pytest.approx(300 / 0.0254, rel=0.01)
    assert paths[1].read_text().lstrip().startswith("<?xml")
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["forest_test.png", "forest_test.svg"]


def test_save_figure_leaves_nothing_behind_when_saving_fails(tmp_path, monkeypatch):
    fig, _ = _forest()
    (tmp_path / "old.png").write_bytes(b"old")

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", boom)
    with pytest.raises(RuntimeError):
        common.save_figure(fig, tmp_path / "old")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.png"]
    assert (tmp_path / "old.png").read_bytes() == b"old"


def test_atomic_dir_replaces_a_folder_only_when_every_file_was_written(tmp_path):
    from timecourse_meta.core import atomic
    target = tmp_path / "by_visit"
    target.mkdir()
    (target / "old_1m.png").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_dir(target) as tmp:
            (tmp / "new_1m.png").write_bytes(b"new")
            raise RuntimeError("second figure failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["by_visit"]
    assert sorted(p.name for p in target.iterdir()) == ["old_1m.png"]
    with atomic.atomic_dir(target) as tmp:
        (tmp / "new_1m.png").write_bytes(b"new")
    assert sorted(p.name for p in target.iterdir()) == ["new_1m.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["by_visit"]


# ---------------------------------------------------------------------------------------------- model figures

@pytest.fixture(scope="module")
def idata():
    import arviz as az

    rng = np.random.default_rng(7)
    return az.from_dict(
        posterior={"tau": np.abs(rng.normal(0.5, 0.1, (2, 200))), "rho": rng.beta(20, 5, (2, 200)),
                   "delta": rng.normal([-1.0, -2.0], 0.2, (2, 200, 2))},
        prior={"tau": np.abs(rng.normal(0, 1, (1, 400))), "rho": rng.beta(2, 2, (1, 400))},
        observed_data={"y": np.array([-1.1, -2.2, 5.0])},
        posterior_predictive={"y": rng.normal([-1.0, -2.0, -2.0], 0.3, (2, 200, 3))},
        coords={"visit": [3, 6]}, dims={"delta": ["visit"]},
    )


def test_prior_posterior_plot_draws_both_densities_per_component(idata):
    fig = model.prior_posterior_plot(idata, ["tau", "rho", "delta"], labels={"tau": "\u03c4 (g/24 h)"})
    gids = {ln.get_gid(): ln for ax in fig.axes for ln in ax.lines}
    assert {"prior:tau", "posterior:tau", "prior:rho", "posterior:rho", "posterior:delta[3]",
            "posterior:delta[6]"} <= set(gids)
    post = gids["posterior:tau"]
    peak = post.get_xdata()[np.argmax(post.get_ydata())]
    assert peak == pytest.approx(0.5, abs=0.1)
    rho_peak = gids["posterior:rho"].get_xdata()[np.argmax(gids["posterior:rho"].get_ydata())]
    assert rho_peak == pytest.approx(0.8, abs=0.1)
    assert any("prior draws" in t for t in _texts(fig))  # delta has no prior draws
    assert "\u03c4 (g/24 h)" in [ax.get_xlabel() for ax in fig.axes]


def test_ppc_plot_marks_observed_values_and_predictive_intervals(idata):
    fig = model.ppc_plot(idata, "y", obs_labels=["A, 3 m", "B, 6 m", "C, 6 m"], unit="g/24 h")
    ax = fig.axes[0]
    (obs,) = _by_gid(ax, "ppc_observed")
    assert obs.get_offsets()[:, 0].tolist() == [-1.1, -2.2, 5.0]
    draws = idata.posterior_predictive["y"].values.reshape(-1, 3)
    for i in range(3):
        (line,) = _by_gid(ax, f"ppc_interval:{i}")
        assert line.get_xdata() == pytest.approx(np.quantile(draws[:, i], [0.025, 0.975]))
    assert "1 of 3" in ax.get_title(loc="left")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["A, 3 m", "B, 6 m", "C, 6 m"]


def test_rank_and_trace_plots(idata):
    fig = model.rank_plot(idata, ["tau", "delta"])
    assert len([ax for ax in fig.axes if ax.axison]) == 3  # tau + two visits of delta
    assert min(_all_font_sizes(fig)) >= common.MIN_FONT
    fig2 = model.trace_plot(idata, ["tau", "rho"])
    assert len(fig2.axes) == 4
    assert fig2.get_size_inches()[0] <= common.MAX_WIDTH + 1e-9


def test_trajectory_grid_and_single_plot_share_the_given_study_styles():
    from matplotlib.colors import to_rgba
    styles = common.study_styles(["Alpha 2010", "Beta 2015", "Delta 2021", "Gamma 2020"])
    grid = trajectory_grid([{"curve": CURVE, "points": POINTS, "outcome_label": "x", "unit": "u",
                                   "direction_of_benefit": "decrease"}], styles=styles)
    single = trajectory_plot(CURVE, POINTS, outcome_label="x", unit="u", direction_of_benefit="decrease",
                                   styles=styles)
    for fig in (grid, single):
        series = {c.get_gid().split(":", 1)[1]: c for c in _by_gid(fig.axes[0], "study_points:")}
        # Gamma 2020 is the 4th study of the set: it keeps the 4th colour although only 3 studies are drawn
        assert tuple(series["Gamma 2020"].get_edgecolor()[0]) == to_rgba(styles["Gamma 2020"][0])
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        assert "Delta 2021" not in legend


# ------------------------------------------------------------------ what a band and a control arm mean

def test_trajectory_band_only_over_visits_pooled_from_two_or_more_studies():
    curve = CURVE.copy()
    # pooled at 1 and 3 months, an interpolation at 6 months, pooled again at 12 (an isolated pooled visit)
    curve["evidence"] = ["pooled", "pooled", "pooled", "interpolated", "pooled"][: len(curve)]
    fig = trajectory_plot(curve, POINTS, outcome_label="x", unit="u", direction_of_benefit="decrease")
    ax = fig.axes[0]
    bands = _by_gid(ax, "credible_band")
    covered = set()
    for band in bands:
        if hasattr(band, "get_paths") and band.get_paths() and len(band.get_paths()[0].vertices) > 2:
            covered |= set(_band_bounds(band))
    t = curve["time_months"].astype(float).tolist()
    interp = t[curve["evidence"].tolist().index("interpolated")]
    assert interp not in covered  # no band at the interpolated visit
    assert _by_gid(ax, "interpolated_median")
    legend = [x.get_text() for x in fig.legends[0].get_texts()]
    assert any("interpolation" in x for x in legend)


def test_trajectory_without_a_pooled_visit_draws_no_band_and_says_not_pooled():
    curve = CURVE.copy()
    curve["evidence"] = ["pooled"] + ["interpolated"] * (len(curve) - 1)  # row 0 is the baseline (t = 0)
    fig = trajectory_plot(curve, POINTS, outcome_label="x", unit="u", direction_of_benefit="decrease")
    ax = fig.axes[0]
    assert not _by_gid(ax, "credible_band") and not _by_gid(ax, "prediction_band")
    assert "not pooled" in ax.get_title(loc="left")


def test_control_arm_drawn_hollow_beside_its_study_and_not_counted_in_the_pooled_n():
    rows = pd.concat([STUDIES, pd.DataFrame([{"label": "Beta 2015, control arm", "estimate": -1.5,
                                               "lower": -3.0, "upper": 0.0, "n": 20, "control": True}])],
                     ignore_index=True)
    rows["control"] = rows["control"].fillna(False).astype(bool)
    fig, ax = _forest(studies=rows)
    assert _by_gid(ax, "control_point:Beta 2015, control arm")
    assert not _by_gid(ax, "study_point:Beta 2015, control arm")
    n_texts = [t.get_text() for t in ax.texts if t.get_gid() == "column_n"]
    assert n_texts[-1] == "70"  # the pooled row's n: the three MSC arms, not the control arm
    pts = POINTS.copy()
    pts["control"] = False
    ctl = pts.iloc[[0]].assign(control=True, estimate=-0.4)
    fig2 = trajectory_plot(CURVE, pd.concat([pts, ctl], ignore_index=True), outcome_label="x", unit="u",
                                 direction_of_benefit="decrease")
    ax2 = fig2.axes[0]
    (c,) = _by_gid(ax2, "control_points:Alpha 2010")
    assert c.get_offsets()[0, 1] == pytest.approx(-0.4)
    assert any("control arm" in x.get_text() for x in fig2.legends[0].get_texts())


def test_trajectory_labels_name_the_review_arms():
    pts = POINTS.copy()
    pts["control"] = False
    points = pd.concat([pts, pts.iloc[[0]].assign(control=True)], ignore_index=True)
    shipped = trajectory_plot(CURVE, points, outcome_label="x", unit="u", direction_of_benefit="decrease")
    assert shipped.axes[0].get_xlabel() == "Months after MSCT"
    other = trajectory.trajectory_plot(CURVE, points, outcome_label="x", unit="u", direction_of_benefit="decrease",
                                       arms=OTHER_ARMS)
    assert other.axes[0].get_xlabel() == "Months after Drug A"
    assert "hollow grey: placebo arm" in [x.get_text() for x in other.legends[0].get_texts()]
    grid = trajectory.trajectory_grid([{"curve": CURVE, "points": points, "outcome_label": "x", "unit": "u",
                                        "direction_of_benefit": "decrease"}], arms=OTHER_ARMS)
    assert grid.axes[0].get_xlabel() == "Months after Drug A"
