"""timecourse_meta.manuscript.variables and timecourse_meta.manuscript.provenance: the manuscript's numbers from small made-up results files
(tests/fixtures/results, in the workflow's results layout), their lineage, and the reproducibility facts."""

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from timecourse_meta.manuscript import provenance as P
from timecourse_meta.manuscript import render
from timecourse_meta.manuscript import variables as V

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "fixtures" / "results"
CONFIG = RESULTS / "config" / "resolved_config.yaml"
QMD = ROOT / "manuscript" / "index.qmd"
M = "\u2212"
VAR = re.compile(r"\{\{<\s*var\s+(\S+?)\s*>\}\}")


def build(results=RESULTS):
    return V.build_variables(Path(results) / "config" / "resolved_config.yaml", results, ROOT)


@pytest.fixture(scope="module")
def built():
    return build()


@pytest.fixture(scope="module")
def flat(built):
    return built.flat()


@pytest.fixture
def results_copy(tmp_path):
    target = tmp_path / "results"
    shutil.copytree(RESULTS, target)
    return target


def qmd_keys(path=QMD) -> list[str]:
    return sorted(set(VAR.findall(Path(path).read_text(encoding="utf-8"))))


# --------------------------------------------------------------------------------- (a) formatted values

@pytest.mark.parametrize("key, expected", [
    # study sets (validated studies sheet)
    ("main.n_studies", "2"),
    ("main.n_patients", "99"),
    ("main.designs", "1 randomised controlled trial and 1 single-arm study"),
    ("main.study_list", "Gu 2014 and Deng 2017"),
    ("other.n_patients", "134"),
    ("other.designs", "3 single-arm studies and 1 randomised controlled trial"),
    ("sets.all_candidates.n_studies", "4"),
    # pooled continuous outcome at its key visit (6 months, 2 studies within half a month)
    ("other.sledai.change", f"{M}7.8 (95% CrI {M}10.1 to {M}5.0)"),
    ("other.sledai.prediction", f"{M}12.2 to {M}2.7"),
    ("other.sledai.p_improvement", ">0.99"),
    ("other.sledai.tau", "1.8 (95% CrI 0.7 to 3.4)"),
    ("other.sledai.n_patients", "32"),
    ("other.sledai.summary", f"{M}7.8 points (95% CrI {M}10.1 to {M}5.0; 95% prediction interval {M}12.2 to "
                             f"{M}2.7; P(improvement) >0.99), pooled at 6 months from 2 studies (32 patients); time course "
                             "fitted to 2 studies (32 patients)"),
    # log-scale outcome: percent change of the mean
    ("other.proteinuria_24h.change", f"{M}45% (95% CrI {M}59% to {M}26%)"),
    ("other.proteinuria_24h.prediction", f"{M}75% to 22%"),
    ("other.proteinuria_24h.tau", "0.30 (95% CrI 0.02 to 0.90) on the log scale"),
    # one study: its own change with a t-based CI, nothing pooled
    ("main.sledai.change", f"{M}8.0 (95% CI {M}10.2 to {M}5.8)"),
    ("main.sledai.prediction", "not estimable (single study)"),
    ("main.sledai.tau", "not estimable (single study)"),
    ("main.sledai.summary", f"{M}8.0 points (95% CI {M}10.2 to {M}5.8) at 6 months, Deng 2017's own estimate "
                            "(12 patients)"),
    ("main.proteinuria_24h.change", f"{M}50% (95% CI {M}78% to {M}22%)"),
    # no data / no results: words, never a blank
    ("main.gfr.summary", "no study in this set reports a change from baseline"),
    ("main.gfr.tau", "not estimable (no data)"),
    ("main.c3.summary", "not analysed (no model results)"),
    # binary outcomes: every follow-up duration, each with what its number is (pooled only within a duration)
    ("main.renal_remission.summary", "73% (95% CI 46% to 91%) at 6 months, Deng 2017's own estimate; 60% (95% CI "
                                     "50% to 71%) at 12 months, Gu 2014's own estimate"),
    ("other.renal_remission.summary", "73% (95% CI 46% to 91%) at 6 months, Deng 2017's own estimate; 60% (95% CrI "
                                      "45% to 74%; 95% prediction interval 31% to 85%), pooled at 12 months from 2 "
                                      "studies (101 patients)"),
    # coverage, diagnostics, claims, appraisal
    ("other.n_outcomes_pooled", "2"),
    # what the data allow, in one generated sentence (the abstract's framing follows it)
    ("other.pooling_sentence", "2 of 10 continuous outcomes were reported by two or more studies at one visit and "
                               "pooled there (24-h urine protein and SLEDAI score)"),
    ("main.pooling_sentence", "no continuous outcome was reported by two or more studies at the same visit, so "
                              "nothing could be pooled"),
    ("main.n_outcomes_single", "2"),
    ("other.sledai.studies_total", "2"),
    ("main.diag.n_fitted", "3"),
    ("main.diag.n_passed", "3"),
    ("other.diag.max_rhat", "1.008"),
    ("other.diag.min_ess_bulk", "700"),
    ("other.diag.divergences", "1"),
    ("main.claims.n", "3"),
    ("main.claims.not_assessable", "1"),
    ("appraisal.n_not_judged", "2"),
    # methods, from the resolved config
    ("methods.main_set_name", "the reconstructed study set of the 2023 review"),
    ("methods.r", "0.5"),
    ("methods.r_sensitivity", "0.2 and 0.8"),
    ("methods.visit_grid", "0, 1, 3, 6, 9 and 12"),
    ("methods.seed", "20230301"),
    ("methods.total_draws", "4,000"),
    ("methods.target_accept", "0.9"),
    ("methods.max_rhat", "1.01"),
    ("methods.within_prior", "Beta(2, 2)"),
    ("methods.tau_family", "half-normal"),
    ("methods.priors.proteinuria_24h.tau_scale", "0.5"),
    ("methods.priors.renal_remission.text", "logit proportion ~ Normal(0, 2\u00b2); \u03c4 ~ half-normal(scale 0.5)"),
])
def test_formatted_values(flat, key, expected):
    assert flat[key] == expected


def test_every_value_is_nonblank_text(flat):
    assert flat
    for key, value in flat.items():
        assert isinstance(value, str) and value.strip(), key
        assert "nan" not in value.lower().split(), (key, value)
        assert "-" not in re.findall(r"(?<![\w-])-\d", value), (key, value)  # Unicode minus only


def test_main_and_other_repeat_their_sets(flat):
    for key, value in flat.items():
        if key.startswith("main."):
            assert flat["sets.review_2023." + key[5:]] == value
        if key.startswith("other."):
            assert flat["sets.all_candidates." + key[6:]] == value


def test_main_study_set_from_config(results_copy):
    cfg_path = results_copy / "config" / "resolved_config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["main_study_set"] = "all_candidates"
    cfg_path.write_text(yaml.safe_dump(cfg))
    flat = build(results_copy).flat()
    assert flat["main.id"] == "all_candidates" and flat["other.id"] == "review_2023"
    assert flat["main.sledai.change"] == f"{M}7.8 (95% CrI {M}10.1 to {M}5.0)"
    assert flat["methods.main_set_name"] == "all candidate studies"


# ------------------------------------------------------------------------ (f) config edits the methods text

@pytest.mark.parametrize("edit, changed", [
    (lambda c: c["model"]["priors"].update({"sledai": {"tau_scale": 2.5}}),
     {"methods.priors.sledai.tau_scale": "2.5"}),
    (lambda c: c["model"]["priors"].update({"proteinuria_24h": {"delta_sd": 0.75}}),
     {"methods.priors.proteinuria_24h.delta_sd": "0.75"}),
    (lambda c: c["harmonisation"].update({"within_person_correlation": 0.7}), {"methods.r": "0.7"}),
    (lambda c: c["model"]["heterogeneity_prior"].update({"family": "half_cauchy"}),
     {"methods.tau_family": "half-Cauchy"}),
])
def test_config_change_changes_methods_text(flat, results_copy, edit, changed):
    cfg_path = results_copy / "config" / "resolved_config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    edit(cfg)
    cfg_path.write_text(yaml.safe_dump(cfg))
    new = build(results_copy).flat()
    assert set(new) == set(flat)
    diff = {k for k in flat if new[k] != flat[k]}
    for key, value in changed.items():
        assert new[key] == value and key in diff
    assert all(k.startswith("methods.") for k in diff), diff  # results untouched
    if "methods.priors.sledai.tau_scale" in changed:
        assert new["methods.priors.sledai.text"] != flat["methods.priors.sledai.text"]
        assert "half-normal(scale 2.5)" in new["methods.priors.sledai.text"]
        assert diff == {"methods.priors.sledai.tau_scale", "methods.priors.sledai.text"}
    if "methods.tau_family" in changed:  # every prior sentence names the family
        assert all("half-Cauchy" in new[k] for k in new if k.startswith("methods.priors.") and k.endswith(".text"))


def test_prior_table_follows_config(built, results_copy):
    assert "SLEDAI score" in set(built.priors["Outcome"])
    cfg_path = results_copy / "config" / "resolved_config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["model"]["priors"] = {"sledai": {"delta_sd": 12, "step_sd": 6, "tau_scale": 3, "baseline_sd": 20}}
    cfg_path.write_text(yaml.safe_dump(cfg))
    row = build(results_copy).priors.set_index("Outcome").loc["SLEDAI score"]
    assert row["Pooled change \u0394 (first visit)"] == "Normal(0, 12\u00b2)"
    assert row["Heterogeneity \u03c4"] == "half-normal(scale 3)"
    assert row["Source"] == "config.yaml (this outcome)"


# ----------------------------------------------------------------------------------------- (e) lineage

def test_lineage_of_every_key_used_in_the_manuscript(built, flat):
    keys = qmd_keys()
    assert len(keys) > 50
    missing = [k for k in keys if k not in flat]
    assert not missing, f"index.qmd uses keys the variables do not define: {missing}"
    for key in keys:
        rec = built.lineage[key]
        assert rec["results_file"], key
        assert all(isinstance(f, str) and f for f in rec["results_file"]), key
        value = flat[key]
        if rec["kind"] in ("data", "model") and re.search(r"[1-9]", value):
            rows = rec.get("raw_rows")
            assert rows, f"{key} = {value!r} comes from data rows but names none"
            for row in rows:
                assert row["row_id"], key
                assert row["source_url"].startswith("http"), (key, row)
        if rec["kind"] == "config":
            assert rec["results_file"][0].endswith(("resolved_config.yaml", "outcomes.yaml")), key


def test_lineage_reaches_the_raw_rows(built):
    rows = built.lineage["main.sledai.change"]["raw_rows"]
    assert [r["row_id"] for r in rows] == ["deng2017-010"]
    assert rows[0] == {"row_id": "deng2017-010", "source_url": "https://example.org/fixture/deng2017",
                       "locator": "Table 2"}
    pooled = built.lineage["other.proteinuria_24h.change"]
    assert {r["row_id"] for r in pooled["raw_rows"]} == {"deng2017-001", "deng2017-002", "li2016-001", "li2016-002"}
    assert "tests/fixtures/results/models/all_candidates/proteinuria_24h/summary.csv" in pooled["results_file"]
    counts = built.lineage["main.n_patients"]
    assert {r["row_id"] for r in counts["raw_rows"]} == {"studies:gu2014", "studies:deng2017"}
    prior = built.lineage["methods.priors.sledai.tau_scale"]
    assert prior["config_key"] == "model.priors.sledai" and prior["kind"] == "config"


def test_write_variables(tmp_path, flat):
    out = tmp_path / "manuscript"
    V.write_variables(CONFIG, out / "_variables.yml", out / "lineage.json", out / "priors.md", RESULTS, ROOT)
    loaded = render.load_variables(out / "_variables.yml")
    for key, value in flat.items():
        assert render.lookup_variable(loaded, key) == value
    lineage = render.load_lineage(out / "lineage.json")
    assert set(lineage) == set(flat)
    title = render.lineage_title("main.sledai.change", lineage["main.sledai.change"])
    assert "deng2017-010" in title and "https://example.org/fixture/deng2017 (Table 2)" in title
    assert (out / "priors.md").read_text().startswith("| Outcome |")
    assert sorted(p.name for p in out.iterdir()) == ["_variables.yml", "lineage.json", "priors.md"]


def test_inputs_are_the_files_read(flat):
    cfg = yaml.safe_load(CONFIG.read_text())
    inputs = V.variables_inputs(cfg)
    assert inputs[0] == "results/config/resolved_config.yaml"
    assert "results/models/review_2023/sledai/summary.csv" in inputs
    assert "results/models/all_candidates/death/diagnostics.csv" in inputs
    assert "results/tables/review_2023/key_visits/sledai.csv" in inputs
    assert "results/tables/all_candidates/claims_check.csv" in inputs
    assert len(inputs) == len(set(inputs))


# ---------------------------------------------------------------------------- manuscript sources, assets

def test_manuscript_sources_and_asset_map():
    sources = V.manuscript_sources(QMD, ROOT)
    assert "results/manuscript/priors.md" in sources
    assert "results/manuscript/provenance.md" in sources
    assert "results/figures/appraisal_traffic_light.png" in sources
    assert "results/manuscript/main/figures/forest/sledai.png" in sources
    assert all(not s.startswith("manuscript/") for s in sources)
    cfg = yaml.safe_load(CONFIG.read_text())
    assets = V.asset_map(sources, cfg)
    # the fixture's config: review_2023 leads, data.claims_study_set null (= the main set)
    assert assets["results/manuscript/main/figures/forest/sledai.png"] == \
        "results/figures/review_2023/forest/sledai.png"
    assert assets["results/manuscript/other/tables/characteristics.md"] == \
        "results/tables/all_candidates/characteristics.md"
    assert assets["results/manuscript/claims_set/tables/claims_check.md"] == \
        "results/tables/review_2023/claims_check.md"
    assert assets["results/manuscript/main/tables/safety.md"] == "results/tables/review_2023/safety.md"
    # the wider set leads, the claims check stays on the reconstructed set
    cfg["main_study_set"] = "all_candidates"
    cfg["data"]["claims_study_set"] = "review_2023"
    flipped = V.asset_map(sources, cfg)
    assert flipped["results/manuscript/main/figures/forest/sledai.png"] == \
        "results/figures/all_candidates/forest/sledai.png"
    assert flipped["results/manuscript/other/tables/characteristics.md"] == \
        "results/tables/review_2023/characteristics.md"
    assert flipped["results/manuscript/claims_set/tables/claims_check.md"] == \
        "results/tables/review_2023/claims_check.md"


def test_sources_skip_code_and_comments(tmp_path):
    qmd = tmp_path / "m" / "x.qmd"
    qmd.parent.mkdir()
    qmd.write_text("![a](results/figures/a.png){#fig-a}\n<!-- ![b](results/b.png) -->\n```\n![c](results/c.png)\n"
                   "```\n{{< include ../results/t.md >}}\n![d](https://example.org/d.png)\n![e](local.png)\n")
    assert V.manuscript_sources(qmd, tmp_path) == ["results/figures/a.png", "results/t.md", "m/local.png"]


# ------------------------------------------------------------------------------------------- provenance

def test_pinned_packages_and_versions():
    pins = P.pinned_packages(ROOT / "pyproject.toml")
    names = [n for n, _, _ in pins]
    assert {"pymc", "pandas", "typst", "pypandoc-binary", "pytest"} <= set(names)
    rows = P.package_versions(ROOT / "pyproject.toml")
    pandas_row = next(r for r in rows if r["name"] == "pandas")
    import pandas
    assert pandas_row["installed"] == pandas.__version__
    # the appendix (and the rule's rerun trigger) lists what computes the results, not the test or cluster tools
    assert "pytest" not in {r["name"] for r in rows} and {r["group"] for r in rows} == {"runtime"}
    assert "pytest" in {r["name"] for r in P.package_versions(ROOT / "pyproject.toml", groups=("runtime", "test"))}


def test_hashes_git_and_markdown(tmp_path):
    f = tmp_path / "a.csv"
    f.write_bytes(b"x,y\n1,2\n")
    rows = P.file_hashes([f, f], tmp_path)
    assert rows == [{"path": "a.csv", "bytes": 8, "sha256": hashlib.sha256(b"x,y\n1,2\n").hexdigest()}]
    assert P.git_commit(tmp_path) == {"commit": "unknown", "dirty": None}
    here = P.git_commit(ROOT)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert here["commit"] == (head or "unknown")
    facts = P.provenance(CONFIG, ROOT / "pyproject.toml", [f], tmp_path, git={"commit": "a" * 40, "dirty": False})
    md = P.provenance_markdown(facts)
    assert f"`{'a' * 40}`" in md and "{#tbl-software}" in md and "{#tbl-inputs}" in md and "{#tbl-seeds}" in md
    assert f"`{rows[0]['sha256']}`" in md
    assert "| pymc | 5.28.5 |" in md
    from timecourse_meta.model.sample import outcome_seed
    seed = next(s for s in facts["seeds"] if s["study_set"] == "review_2023" and s["outcome"] == "sledai")
    assert seed["seed"] == outcome_seed(20230301, "sledai")
    out = tmp_path / "out"
    P.write_provenance(CONFIG, ROOT / "pyproject.toml", [f], out / "provenance.md", out / "provenance.json",
                       tmp_path, git={"commit": "unknown", "dirty": None})
    assert "could not be determined" in (out / "provenance.md").read_text()
    assert json.loads((out / "provenance.json").read_text())["inputs"][0]["path"] == "a.csv"


def test_single_study_set_config(results_copy):
    """With one study set, `other` repeats `main` (index.qmd still renders) and only that set is read."""
    cfg_path = results_copy / "config" / "resolved_config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["study_sets"] = ["review_2023"]
    cfg_path.write_text(yaml.safe_dump(cfg))
    flat = build(results_copy).flat()
    assert not any(k.startswith("sets.all_candidates.") for k in flat)
    for key, value in flat.items():
        if key.startswith("main."):
            assert flat["other." + key[5:]] == value
    assert all("all_candidates" not in p for p in V.variables_inputs(cfg))


def test_validation_warnings_reach_the_data_section_in_reader_words(flat):
    assert flat["data.n_warnings"] == "1"
    assert flat["data.warnings"] == ("outcome Anti-dsDNA antibody is analysed in the configuration but no row of the "
                                     "outcomes sheet reports it; its results will say 'no data'")


# ------------------------------------------------------------------------- the review's arms and study sets

def _edit_config(results, edit):
    cfg_path = results / "config" / "resolved_config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    edit(cfg)
    cfg_path.write_text(yaml.safe_dump(cfg))


def test_arm_counts_read_the_columns_the_review_names(flat, results_copy):
    """main = gu2014 (81 + 0) and deng2017 (12 + 6); the columns are the config's `review.arms.*.n_column`."""
    assert (flat["main.n_intervention"], flat["main.n_comparator"]) == ("93", "6")
    assert (flat["main.rct.n_intervention"], flat["main.rct.n_comparator"]) == ("12", "6")
    studies = results_copy / "validated" / "studies.csv"
    frame = pd.read_csv(studies, dtype=str, keep_default_na=False)
    frame = frame.rename(columns={"n_msct": "n_treated", "n_control": "n_untreated"})
    frame.to_csv(studies, index=False)

    def edit(cfg):
        cfg["review"]["arms"]["intervention"]["n_column"] = "n_treated"
        cfg["review"]["arms"]["comparator"]["n_column"] = "n_untreated"
    _edit_config(results_copy, edit)
    new = build(results_copy).flat()
    assert set(new) == set(flat)
    # patients per patient group are counted by timecourse_meta.data.linkage, which reads its own columns
    linkage_keys = {k for k in flat if k.endswith((".n_patients", ".n_unique_patients"))}
    assert {k for k in flat if new[k] != flat[k]} <= linkage_keys
    assert (new["main.n_intervention"], new["main.n_comparator"]) == ("93", "6")
    assert (new["main.rct.n_intervention"], new["main.rct.n_comparator"]) == ("12", "6")


def test_study_set_names_come_from_the_review_config(results_copy):
    _edit_config(results_copy, lambda cfg: cfg["review"]["study_sets"]["review_2023"].update(name="the core set"))
    new = build(results_copy).flat()
    assert new["main.name"] == "the core set" and new["main.name_capital"] == "The core set"
    assert new["methods.main_set_name"] == "the core set"
    assert new["methods.study_sets"].startswith("the core set (2 studies) and all candidate studies (4 studies)")


def test_between_arm_keys_and_the_arms_names(results_copy):
    """A controlled study's between-arm rows (added to the fixture) give `rct.O.intervention` / `comparator` and
    a summary that names the arms by the review's `arm_name`."""
    path = results_copy / "models" / "review_2023" / "sledai" / "summary.csv"
    summary = pd.read_csv(path, dtype=str, keep_default_na=False)
    base = summary.iloc[0].to_dict()

    def row(quantity, median, lower, upper, **kw):
        return {**base, "quantity": quantity, "study_id": "deng2017", "visit_months": "6.0", "median": median,
                "lower": lower, "upper": upper, "estimand": "", "primary": "", "note": "", "label": "",
                "evidence": "", **kw}
    extra = [row("between_arm_difference", "-2.5", "-6.0", "1.0", estimand="follow-up means", primary="True"),
             row("between_arm_difference", "-3.0", "-6.5", "0.5", estimand="change scores", primary="False"),
             row("study_observed", "-8.0", "-10.2", "-5.8"), row("control_observed", "-5.0", "-7.5", "-2.5")]
    pd.concat([summary, pd.DataFrame(extra)]).to_csv(path, index=False)

    def edit(cfg):
        cfg["review"]["arms"]["intervention"]["arm_name"] = "treated arm"
        cfg["review"]["arms"]["comparator"]["arm_name"] = "untreated arm"
    _edit_config(results_copy, edit)
    new = build(results_copy).flat()
    assert new["main.rct.sledai.intervention"] == f"{M}8.0 (95% CI {M}10.2 to {M}5.8)"
    assert new["main.rct.sledai.comparator"] == f"{M}5.0 (95% CI {M}7.5 to {M}2.5)"
    assert new["main.rct.sledai.primary"] == f"{M}2.5 (95% CI {M}6.0 to 1.0)"
    assert new["main.rct.sledai.summary"] == (
        f"{M}2.5 points (95% CI {M}6.0 to 1.0) at 6 months (from follow-up means; from change scores: {M}3.0 (95% CI "
        f"{M}6.5 to 0.5); treated arm {M}8.0 (95% CI {M}10.2 to {M}5.8), untreated arm {M}5.0 (95% CI {M}7.5 to "
        f"{M}2.5))")
    assert new["main.rct.n_outcomes"] == "1"
    assert not any(k.endswith((".msct", ".control", ".n_msct", ".n_control")) for k in new)
