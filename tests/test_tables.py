"""Tables: characteristics, appraisal matrix, summary of findings, observed changes, Markdown rendering."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from timecourse_meta.core import review
from timecourse_meta.core.review import Arm, Arms, Judgement, Vocabulary
from timecourse_meta.report import tables

ROOT = Path(__file__).resolve().parents[1]
MINUS = "\u2212"
ARMS = review.arms(yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8")))  # the shipped review's
VOCAB = review.load_vocabulary(ROOT / "data" / "review" / "vocabulary.yaml")
# another review: its own arms, design words, judgements and one review column
OTHER_ARMS = Arms(Arm("drug_a", "Drug A", "Drug A", "Drug A arm", "n_drug"),
                  Arm("placebo", "placebo", "placebo", "placebo arm", "n_placebo"))
OTHER_VOCAB = Vocabulary(
    designs={"single_arm": {"label": "Uncontrolled", "controlled": False}, "rct": {"label": "Randomised trial",
                                                                                  "controlled": True}},
    judgements={"yes": Judgement("Low", "Low concern", "+", "#00aa00", "low"),
                "no": Judgement("High", "High concern", "x", "#aa0000", "high")},
    study_fields={"dose_text": {"required": False}, "setting": {"required": True, "allowed": ["out_patient"]}},
    characteristics=[{"header": "Dose", "fields": ["dose_text"], "missing": ["dose unknown"]},
                     {"header": "Setting", "fields": ["setting"]}])

DICTIONARY = {
    "proteinuria_24h": {"label": "24-h urine protein", "canonical_unit": "g/24 h", "direction_of_benefit": "decrease",
                        "kind": "continuous"},
    "gfr": {"label": "Glomerular filtration rate", "canonical_unit": "mL/min", "direction_of_benefit": "increase",
            "kind": "continuous"},
    "sledai": {"label": "SLEDAI score", "canonical_unit": "score", "direction_of_benefit": "decrease",
               "kind": "continuous"},
    "death": {"label": "Death", "canonical_unit": "%", "direction_of_benefit": "decrease", "kind": "binary"},
}

STUDIES = pd.DataFrame({
    "study_id": ["gu2014", "deng2017", "li2016", "grp"],
    "first_author": ["Gu F", "Deng D", "Li JX", "(Nanjing group)"],
    "year": [2014.0, 2017.0, 2016.0, np.nan],
    "design": ["single_arm", "rct", "single_arm", "single_arm"],
    "design_detail": ["open-label", "randomised double-blind", "", ""],
    "population": ["refractory LN", "class III/IV LN", "", "severe SLE"],
    "n_msct": [81.0, 12.0, 20.0, 12.0],
    "n_control": [0.0, 6.0, 0.0, np.nan],
    "msc_source": ["bone marrow or cord", "umbilical cord", "umbilical cord", ""],
    "msc_dose": ["1e6 cells/kg", "2e8 cells", "", ""],
    "route": ["IV", "IV", "IV", "IV"],
    "follow_up_months": [12.0, 12.0, np.nan, 3.0],
    "review_inclusion": ["likely_included", "possibly_included", "candidate", "candidate"],
    "review_inclusion_confidence": ["high", "moderate", "", ""],
    "study_sets": ["review_2023;all_candidates", "review_2023;all_candidates", "all_candidates", "all_candidates"],
})


def _analysis_row(**kw):
    base = {"analysis_id": "h", "study_id": "", "arm": "MSCT", "outcome": "", "kind": "continuous",
            "measure": "absolute", "origin": "reported", "cohort": "all", "time_months": 0.0, "n": np.nan,
            "mean": np.nan, "sd": np.nan, "median": np.nan, "unit": "", "method": "reported", "assumption": "",
            "poolable": True}
    base.update(kw)
    return base


ANALYSIS = pd.DataFrame([
    _analysis_row(analysis_id="h1", study_id="deng2017", outcome="proteinuria_24h", measure="change_from_baseline",
                  time_months=6.0, n=12, mean=-2.1, sd=1.8, unit="g/24 h"),
    _analysis_row(analysis_id="h2", study_id="deng2017", outcome="death", kind="binary", time_months=6.0),
    _analysis_row(analysis_id="h3", study_id="gu2014", outcome="gfr", measure="change_from_baseline",
                  origin="derived", time_months=12.0, n=81, mean=10.96, sd=24.74, unit="mL/min",
                  assumption="within-person correlation r = 0.5 (assumed); n not reported; n not reported"),
    _analysis_row(analysis_id="h4", study_id="gu2014", outcome="sledai", method="median_only", median=16.0,
                  poolable=False, time_months=0.0),
    _analysis_row(analysis_id="h5", study_id="gu2014", outcome="sledai", method="median_only", median=6.0,
                  poolable=False, time_months=6.0),
    _analysis_row(analysis_id="h6", study_id="deng2017", arm="control", outcome="proteinuria_24h",
                  measure="change_from_baseline", time_months=6.0, n=6, mean=-1.4, sd=1.1, unit="g/24 h"),
    _analysis_row(analysis_id="h7", study_id="deng2017", outcome="age", kind="characteristic", time_months=0.0),
])


# ---------------------------------------------------------------------------------------------- labels

def test_study_labels_author_year_and_group_without_year():
    labels = tables.study_labels(STUDIES)
    assert labels == {"gu2014": "Gu 2014", "deng2017": "Deng 2017", "li2016": "Li 2016",
                      "grp": "Nanjing group (n.d.)"}
    dup = pd.DataFrame({"study_id": ["w1", "w2"], "first_author": ["Wang D", "Wang D"], "year": [2014, 2014]})
    assert tables.study_labels(dup) == {"w1": "Wang 2014a", "w2": "Wang 2014b"}


# ---------------------------------------------------------------------------------------------- Table 1

def _characteristics(studies, analysis, study_set, dictionary=None, arms=ARMS, vocabulary=VOCAB):
    return tables.characteristics_table(studies, analysis, study_set, dictionary, arms=arms, vocabulary=vocabulary)


def test_characteristics_table_one_row_per_study_in_the_set():
    t = _characteristics(STUDIES, ANALYSIS, "review_2023", DICTIONARY)
    assert list(t["Study"]) == ["Gu 2014", "Deng 2017"]
    assert list(t.columns) == ["Study", "Design", "Population", "n (MSCT/control)", "MSC source; dose; route",
                               "Follow-up (months)", "Outcomes reported", "Review inclusion", "Shares patients with"]
    assert list(t.columns) == tables.characteristics_columns(arms=ARMS, vocabulary=VOCAB)
    deng = t.set_index("Study").loc["Deng 2017"]
    assert deng["n (MSCT/control)"] == "12 / 6"
    assert deng["Design"] == "RCT (randomised double-blind)"
    assert deng["Outcomes reported"] == "24-h urine protein; Death"  # dictionary order; characteristics left out
    gu = t.set_index("Study").loc["Gu 2014"]
    assert gu["n (MSCT/control)"] == "81 / \u2014"
    assert gu["Outcomes reported"] == "Glomerular filtration rate; SLEDAI score (not poolable)"
    assert gu["Review inclusion"] == "likely included (high confidence)"
    assert not any("review_2023" in str(v) for v in gu.values)  # no internal set names in a reader's table

    assert gu["MSC source; dose; route"] == "bone marrow or cord; 1 \u00d7 10\u2076 cells/kg; IV"
    everything = _characteristics(STUDIES, ANALYSIS, "all_candidates", DICTIONARY)
    assert len(everything) == 4
    li = everything.set_index("Study").loc["Li 2016"]
    assert li["Follow-up (months)"] == "not reported" and "dose not reported" in li["MSC source; dose; route"]
    assert li["Outcomes reported"] == "none extracted"


def test_characteristics_table_shows_patient_group_and_overlap():
    linked = STUDIES.assign(patient_group=["nanjing", "deng2017", "li2016", "nanjing"],
                            overlap=["partial", "none", "none", "later_follow_up"],
                            overlap_basis=["judgement"] * 4)
    t = _characteristics(linked, None, "all_candidates").set_index("Study")
    assert t.loc["Gu 2014", "Shares patients with"] == "Nanjing programme: partial overlap (judgement)"
    assert t.loc["Deng 2017", "Shares patients with"] == "no other report"
    open_overlap = linked.assign(overlap=["partial", "unclear", "none", "later_follow_up"])
    deng = _characteristics(open_overlap, None, "all_candidates").set_index("Study").loc["Deng 2017"]
    assert deng["Shares patients with"] == "unclear (judgement)"
    # a group member is named by its group even where the set holds only that report
    review = _characteristics(linked, None, "review_2023").set_index("Study")
    assert review.loc["Gu 2014", "Shares patients with"] == "Nanjing programme: partial overlap (judgement)"
    old_sheet = _characteristics(STUDIES, None, "review_2023")
    assert set(old_sheet["Shares patients with"]) == {"not recorded"}


def test_characteristics_table_of_the_real_sheet_has_the_review_four():
    studies = pd.read_csv(ROOT / "data" / "raw" / "studies.csv", dtype=str, keep_default_na=False)
    t = _characteristics(studies, None, "review_2023")
    in_set = studies["study_sets"].str.split(";").map(lambda s: "review_2023" in s)
    assert len(t) == in_set.sum() == 4
    assert t["Study"].is_unique


def test_characteristics_table_of_another_review_names_its_arms_designs_and_columns():
    other = STUDIES.rename(columns={"n_msct": "n_drug", "n_control": "n_placebo"}).assign(
        dose_text=["1e3 mg", "", "", ""], setting=["out_patient", "", "", ""])
    t = _characteristics(other, None, "review_2023", arms=OTHER_ARMS, vocabulary=OTHER_VOCAB)
    assert list(t.columns) == ["Study", "Design", "Population", "n (Drug A/placebo)", "Dose", "Follow-up (months)",
                               "Outcomes reported", "Setting", "Shares patients with"]
    assert t.iloc[0][["Design", "n (Drug A/placebo)", "Dose", "Setting"]].tolist() == [
        "Uncontrolled (open-label)", "81 / \u2014", "1 \u00d7 10\u00b3 mg", "out patient"]
    assert t.iloc[1][["Design", "n (Drug A/placebo)", "Dose", "Setting"]].tolist() == [
        "Randomised trial (randomised double-blind)", "12 / 6", "dose unknown", "not reported"]


# ---------------------------------------------------------------------------------------------- observed changes

def test_observed_changes_t_interval_and_basis():
    ch = tables.observed_changes(ANALYSIS, arm="MSCT", labels=tables.study_labels(STUDIES))
    assert list(ch["analysis_ids"]) == ["h3", "h1"]  # MSCT arm only; sorted by outcome
    deng = ch[ch["study_id"] == "deng2017"].iloc[0]
    half = stats.t.ppf(0.975, 11) * 1.8 / math.sqrt(12)
    assert (deng["lower"], deng["upper"]) == pytest.approx((-2.1 - half, -2.1 + half))
    assert deng["label"] == "Deng 2017" and deng["basis"] == "change score as reported"
    gu = ch[ch["study_id"] == "gu2014"].iloc[0]
    assert gu["basis"].startswith("derived") and gu["basis"].count("n not reported") == 1
    with_medians = tables.observed_changes(ANALYSIS, arm="MSCT", include_median_only=True)
    assert list(tables.observed_changes(ANALYSIS, arm="control")["analysis_ids"]) == ["h6"]
    med = with_medians[with_medians["outcome"] == "sledai"].iloc[0]
    assert med["estimate"] == -10.0 and np.isnan(med["lower"]) and "medians only" in med["basis"]


# ---------------------------------------------------------------------------------------------- appraisal

def test_appraisal_table_matrix_in_words():
    a = pd.DataFrame({
        "study_id": ["s1", "s1", "s2", "s2", "r1"],
        "checklist": ["cs", "cs", "cs", "cs", "rct"],
        "item_id": ["a", "b", "a", "b", "r"],
        "item": ["Defined sample?", "Consecutive?", "Defined sample?", "Consecutive?", "Randomised?"],
        "judgement": ["yes", "not_reported", "unclear", "not_applicable", "no"],
    })
    with pytest.raises(ValueError, match="mixes checklists"):
        tables.appraisal_table(a, vocabulary=VOCAB)
    t = tables.appraisal_table(a, {"s1": "One", "s2": "Two"}, checklist="cs", vocabulary=VOCAB)
    assert list(t.columns) == ["Study", "Q1 Defined sample?", "Q2 Consecutive?"]
    assert t.values.tolist() == [["One", "Yes", "Not reported"], ["Two", "Unclear", "Not applicable"]]
    other = tables.appraisal_table(a, checklist="rct", vocabulary=OTHER_VOCAB)  # the review's own words
    assert other.values.tolist() == [["r1", "High"]]


# ---------------------------------------------------------------------------------------------- summary of findings

# ---------------------------------------------------------------------------------------------- rendering

def test_markdown_table_and_write_table(tmp_path):
    frame = pd.DataFrame({"Study": ["A | B", "C"], "n": [12, 3], "Note": ["line\nbreak", None]})
    md = tables.markdown_table(frame)
    lines = md.splitlines()
    assert lines[0] == "| Study | n | Note |"
    # dash counts = relative widths: longest word or short cell of each column, at least 4
    assert lines[1] == "|:------|-----:|:-----------|"
    assert lines[2] == "| A \\| B | 12 | line break |"
    assert lines[3] == "| C | 3 |  |"
    paths = tables.write_table(frame, tmp_path / "t1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t1.csv", "t1.md"]
    assert (tmp_path / "t1.md").read_text() == md
    back = pd.read_csv(paths[0])
    assert list(back["n"]) == [12, 3]


def test_tables_has_no_formatter_of_its_own():
    """Every number goes through report.format (one rounding rule: a table and the text never disagree)."""
    for name in ("fmt_number", "fmt_interval", "fmt_probability", "fmt_months", "decimals_for", "DESIGN_NAMES",
                 "CHECKLIST_NAMES", "JUDGEMENT_WORDS"):
        assert not hasattr(tables, name) or getattr(tables, name).__module__ == "timecourse_meta.report.format", name


def test_diagnostics_table_reads_the_gate_reports():
    fitted = pd.DataFrame([
        dict(kind="parameter", parameter="tau", rhat=1.004, ess_bulk=812.4, ess_tail=655.0, value=np.nan,
             passed=True),
        dict(kind="parameter", parameter="delta[6]", rhat=1.0012, ess_bulk=2400.0, ess_tail=1900.0, value=np.nan,
             passed=True),
        dict(kind="sampler", parameter="divergences", rhat=np.nan, ess_bulk=np.nan, ess_tail=np.nan, value=2.0,
             passed=False),
        dict(kind="sampler", parameter="e_bfmi_chain_0", rhat=np.nan, ess_bulk=np.nan, ess_tail=np.nan,
             value=0.71, passed=True),
        dict(kind="sampler", parameter="e_bfmi_chain_1", rhat=np.nan, ess_bulk=np.nan, ess_tail=np.nan,
             value=0.64, passed=True)])
    single = pd.DataFrame([dict(kind="sampler", parameter="draws", rhat=np.nan, ess_bulk=np.nan, ess_tail=np.nan,
                                value=4000.0, passed=True)])
    exact = pd.DataFrame([dict(kind="parameter", parameter="delta[6]", rhat=1.0, ess_bulk=7900.0, ess_tail=7800.0,
                               value=np.nan, passed=True)])
    single = single.assign(gate="not sampled (study's own estimate)")
    out = tables.diagnostics_table({"SLEDAI score": fitted, "C3": single, "C4": exact}).set_index("Outcome")
    assert out.loc["C4"].tolist() == [1, "1.000", "7900", "7800", "not sampled", "not sampled", "passed"]
    assert out.loc["SLEDAI score"].tolist() == [2, "1.004", "812", "655", "2", "0.64", "failed"]
    # an outcome reported as a study's own estimate was never sampled: its gate says so, never "passed"
    assert out.loc["C3"].tolist() == [0, "no model", "no model", "no model", "no model", "no model",
                                      "not sampled (study's own estimate)"]


def test_column_widths_follow_the_content():
    frame = pd.DataFrame({"Study": ["Gu 2014", "Deng 2017"], "n": [81, 12],
                          "Outcomes reported": ["Glomerular filtration rate; Renal BILAG score; Renal remission "
                                                "(complete or partial); Overall survival"] * 2})
    widths = tables.column_widths(frame)
    assert widths == [11, 6, 32]  # 'Deng 2017' on one line; the minimum; long text capped at 30; + 2 gutter


@pytest.mark.parametrize("text, expected", [
    ("1e6 cells/kg", "1 \u00d7 10\u2076 cells/kg"),
    ("2e6 cells/kg (paper) vs 1e6 cells/kg (congress abstract)",
     "2 \u00d7 10\u2076 cells/kg (paper) vs 1 \u00d7 10\u2076 cells/kg (congress abstract)"),
    ("1.5E+07 cells", "1.5 \u00d7 10\u2077 cells"),
    ("8e-3 mg", "8 \u00d7 10\u207b\u00b3 mg"),
    ("Type 2e diabetes; 10 mL", "Type 2e diabetes; 10 mL"),   # not a number in E notation
    ("not reported", "not reported"),
])
def test_scientific_text(text, expected):
    assert tables.scientific_text(text) == expected


def test_every_study_of_a_table_is_cited_by_its_bibliography_key(tmp_path):
    from timecourse_meta.steps import report as report_steps
    bib = tmp_path / "refs.bib"
    bib.write_text("@comment{gu2014: a note}\n@article{gu2014,\n  title = {x},\n}\n@article{deng2017, title={y}}\n",
                   encoding="utf-8")
    assert report_steps.bibliography_keys(bib) == {"gu2014", "deng2017"}
    frame = pd.DataFrame({"Study": ["Gu 2014", "Deng 2017 (RCT)", "Li 2016"], "n": [81, 18, 20]})
    labels = {"gu2014": "Gu 2014", "deng2017": "Deng 2017", "li2016": "Li 2016"}
    out = report_steps.cite_studies(frame, labels, report_steps.bibliography_keys(bib))
    assert list(out["Study"]) == ["Gu 2014 [@gu2014]", "Deng 2017 [@deng2017] (RCT)", "Li 2016"]
    assert list(frame["Study"]) == ["Gu 2014", "Deng 2017 (RCT)", "Li 2016"]  # the input is not changed


def test_diagnostics_numbers_follow_the_one_rounding_rule():
    """Half up on the decimal as written (1.0045 -> 1.005, 812.5 -> 813), as every other number; a missing
    statistic is said in words, never 'nan'."""
    gate = pd.DataFrame([dict(kind="parameter", parameter="tau", rhat=1.0045, ess_bulk=812.5, ess_tail=np.nan,
                              value=np.nan, passed=True)])
    row = tables.diagnostics_table({"X": gate}).iloc[0]
    assert row[["Max R-hat", "Min bulk ESS", "Min tail ESS"]].tolist() == ["1.005", "813", "not computed"]


def test_a_change_reported_with_only_its_se_gets_a_normal_interval():
    """Known answer: -3.0 with SE 0.5 -> -3.0 +/- 1.959964 * 0.5 = (-3.980, -2.020); no n, no SD."""
    table = pd.DataFrame([{"study_id": "s1", "arm": "A", "outcome": "pain", "kind": "continuous",
                           "measure": "change_from_baseline", "poolable": True, "time_months": 6.0, "n": np.nan,
                           "mean": -3.0, "sd": np.nan, "se": 0.5, "origin": "reported", "cohort": "all",
                           "unit": "points", "analysis_id": "a1", "assumption": ""}])
    out = tables.observed_changes(table, arm="A")
    assert out["lower"].iloc[0] == pytest.approx(-3.0 - 1.959964 * 0.5, abs=1e-5)
    assert out["upper"].iloc[0] == pytest.approx(-3.0 + 1.959964 * 0.5, abs=1e-5)
