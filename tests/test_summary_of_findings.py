"""Summary of findings: each row says what its number is, and the words follow the numbers."""

from functools import partial
from pathlib import Path

import pandas as pd
import pytest
import yaml

from timecourse_meta.core import review
from timecourse_meta.core.review import Arm, Arms
from timecourse_meta.data.dictionary import Outcome
from timecourse_meta.report import summary_of_findings as sof

ROOT = Path(__file__).resolve().parents[1]
ARMS = review.arms(yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8")))  # the shipped review's
PLACEBO = Arms(ARMS.intervention, Arm("placebo", "placebo", "placebo", "placebo arm", "n_placebo"))
change_row = partial(sof.change_row, arms=ARMS)

MINUS = "\u2212"


def _spec(name, label, unit, direction="decrease", scale="identity", kind="continuous"):
    return Outcome(name=name, label=label, kind=kind, canonical_unit=unit, units={},
                   direction_of_benefit=direction, analysis_scale=scale)


SLEDAI = _spec("sledai", "SLEDAI score", "score")
PROTEINURIA = _spec("proteinuria_24h", "24-h urine protein", "g/24 h", scale="log")


def test_pooled_row_names_the_studies_at_the_visit_and_in_the_time_course():
    f = dict(time_months=6, n_studies=2, n_patients=32, n_studies_model=4, n_patients_model=56, estimate=-8.24,
             lower=-12.5, upper=-3.8, pi_lower=-15.0, pi_upper=-1.2, p_improvement=0.999, evidence="pooled")
    r = change_row(f, SLEDAI)
    assert r["Estimate (95% interval)"] == f"{MINUS}8.2 (95% CrI {MINUS}12.5 to {MINUS}3.8)"
    assert r["What the estimate is"] == ("pooled at this visit from 2 studies; time course fitted to 4 studies "
                                         "(56 patients)")
    assert r["Studies (patients)"] == "2 (32)" and r["P(improvement)"] == ">0.99"
    assert r["95% prediction interval"] == f"{MINUS}15.0 to {MINUS}1.2"
    assert r["In words"] == "fell after MSCT" and r["Outcome"] == "SLEDAI score (points)"


@pytest.mark.parametrize("p, words", [(0.98, "fell after MSCT"), (0.93, "probably fell after MSCT"),
                                      (0.8, "may have fallen after MSCT"), (0.5, "no clear change after MSCT"),
                                      (0.05, "probably rose after MSCT (worsening)")])
def test_pooled_words_follow_p_improvement(p, words):
    assert sof.change_words("pooled", p, -1, 1, "decrease", arms=ARMS) == words
    other = Arms(Arm("drug_a", "Drug A", "Drug A", "Drug A arm", "n_drug"), ARMS.comparator)
    assert sof.change_words("pooled", p, -1, 1, "decrease", arms=other) == words.replace("MSCT", "Drug A")


def test_single_study_row_is_the_study_own_estimate_without_prediction_or_probability():
    f = dict(time_months=6, n_studies=1, n_patients=12, estimate=-64.5, lower=-79.7, upper=-38.0,
             p_improvement=0.99, pi_lower=-90, pi_upper=10, evidence="study_estimate")
    r = change_row(f, PROTEINURIA, study_label="Deng 2017")
    assert r["Estimate (95% interval)"] == f"{MINUS}65% (95% CI {MINUS}80% to {MINUS}38%)"
    assert r["What the estimate is"] == "Deng 2017's own estimate"
    assert r["95% prediction interval"] == sof.DASH and r["P(improvement)"] == sof.DASH
    assert r["In words"] == "fell in one study (95% interval excludes no change)"
    f.update(upper=5.0)
    assert change_row(f, PROTEINURIA, "Deng 2017")["In words"] == "no clear change in one study"


def test_randomised_difference_row_comes_first_and_says_which_side():
    rec = dict(visit_months=6.0, primary=f"3.0 (95% CI {MINUS}3.8 to 9.8)", primary_lower=-3.8, primary_upper=9.8,
               primary_estimand="follow-up means")
    albumin = _spec("serum_albumin", "Serum albumin", "g/L", direction="increase")
    row = sof.between_arm_row(rec, albumin, "Deng 2017", 12, 6, arms=PLACEBO)
    assert row["Studies (patients)"] == "1 (12 vs 6)"
    assert row["What the estimate is"] == "randomised comparison in Deng 2017 (follow-up means)"
    assert row["In words"] == "no clear difference between MSCT and placebo"
    assert sof.difference_words(-20, -2, "decrease", arms=PLACEBO).startswith("lower with MSCT than with placebo "
                                                                            "(favourable")
    assert sof.difference_words(2, 20, "decrease", arms=ARMS).startswith(
        "higher with MSCT than with control (unfavourable")
    table = sof.summary_of_findings([change_row(dict(time_months=6, n_studies=1, n_patients=12, estimate=-8,
                                                         lower=-10, upper=-6, evidence="study_estimate"), SLEDAI,
                                                    "Deng 2017")], [row])
    assert list(table.columns) == sof.COLUMNS
    assert table.iloc[0]["Outcome"].endswith("MSCT vs placebo") and table.iloc[1]["Outcome"].startswith("SLEDAI")


def test_certainty_column_and_footnotes_under_the_markdown_table(tmp_path):
    from timecourse_meta.report import certainty

    f = dict(time_months=6, n_studies=1, n_patients=81, estimate=-8, lower=-10, upper=-6, evidence="study_estimate")
    table = sof.summary_of_findings([change_row(f, SLEDAI, "Study A"), change_row(f, SLEDAI, "Study B")])
    ev = certainty.Evidence(design=certainty.BEFORE_AFTER, evidence="study_estimate", estimate=-8, lower=-10,
                            upper=-6, contributions=(certainty.Contribution("a", "Study A", 81),))
    rating = certainty.rate(ev, SLEDAI, risks={"a": "low"})
    frame, notes = sof.with_certainty(table, [rating, None])
    assert list(frame.columns) == sof.COLUMNS + [sof.CERTAINTY, sof.FOOTNOTES]
    assert frame[sof.COLUMNS].equals(table)  # every existing column and number unchanged
    assert list(frame[sof.CERTAINTY]) == ["Very low (a, b, c, d)", sof.DASH]
    assert frame[sof.FOOTNOTES].iloc[0].startswith("a. Started at low certainty") and frame[sof.FOOTNOTES].iloc[1] == ""
    assert notes[2] == ("c. Downgraded once for imprecision: 81 patients are fewer than the optimal information size "
                        "of 400.")
    sof.write(frame, notes, str(tmp_path / "sof"))
    md = (tmp_path / "sof.md").read_text(encoding="utf-8").splitlines()
    assert md[0].startswith("| Outcome |") and sof.FOOTNOTES not in md[0] and md[0].endswith("| Certainty (GRADE) |")
    assert md[-5:] == [""] + notes
    csv = pd.read_csv(tmp_path / "sof.csv", keep_default_na=False)
    assert list(csv.columns) == list(frame.columns) and csv[sof.FOOTNOTES].iloc[0] == frame[sof.FOOTNOTES].iloc[0]
    with pytest.raises(ValueError, match="1 certainty ratings for 2 table rows"):
        sof.with_certainty(table, [rating])


def test_step_rates_the_fixture_rows_from_the_appraisal_sheet(tmp_path):
    """The made-up all_candidates results: SLEDAI pooled from Deng 2017 (12 patients, appraised: one item low
    concern, one unclear -> low risk) and Li 2016 (20 patients, not appraised -> unclear): 20/32 = 62.5% (63%) of
    the patients at unclear risk -> risk of bias once; the CrI (-10.1 to -5.0) lies beyond the 4-point important
    difference and the PI (-12.2 to -2.7) excludes no change -> no imprecision from the interval, none for
    inconsistency; 32 patients < 400 -> imprecision once. Before-after start low - 2 -> very low."""
    from timecourse_meta.steps.report import run_summary_of_findings

    fx = ROOT / "tests" / "fixtures" / "results"
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    outcomes = ["sledai", "proteinuria_24h"]
    run_summary_of_findings(
        table=str(fx / "harmonised/analysis_table.csv"), studies=str(fx / "validated/studies.csv"),
        summaries=[str(fx / f"models/all_candidates/{o}/summary.csv") for o in outcomes], outcomes=outcomes,
        key_visits=[str(fx / f"tables/all_candidates/key_visits/{o}.csv") for o in outcomes], continuous=outcomes,
        dictionary=str(ROOT / "data/review/outcomes.yaml"), study_set="all_candidates",
        csv=str(tmp_path / "sof.csv"), review=config["review"], appraisal=str(fx / "validated/appraisal.csv"),
        vocabulary=str(ROOT / "data/review/vocabulary.yaml"), certainty={})
    frame = pd.read_csv(tmp_path / "sof.csv", keep_default_na=False).set_index("Outcome")
    sledai = frame.loc["SLEDAI score (points)"]
    assert sledai["Estimate (95% interval)"] == f"{MINUS}7.8 (95% CrI {MINUS}10.1 to {MINUS}5.0)"
    assert sledai[sof.CERTAINTY] == "Very low (a, b, c, d)"
    notes = sledai[sof.FOOTNOTES]
    assert ("Downgraded once for risk of bias: 63% of the patients come from studies at high or unclear risk of "
            "bias: Li 2016 (not appraised).") in notes
    assert "Downgraded once for imprecision: 32 patients are fewer than the optimal information size of 400." in notes
    assert "inconsistency" not in notes.lower()
    md = (tmp_path / "sof.md").read_text(encoding="utf-8").splitlines()
    assert "d. Publication bias not assessable: fewer than 10 studies; not downgraded." in md
    assert md[-1].startswith("f. Downgraded twice for imprecision")  # 24-h urine protein: crosses the 50% fall


def test_safety_rows_count_the_reported_events_and_take_each_pooled_outcome_where_most_studies_are():
    """Known input: five reported numbers of three studies (judgements 2 related/possibly, 1 not, 2 none) and a
    pooled death incidence at two follow-ups; the rows are not rated for certainty."""
    from timecourse_meta.report import safety

    events = pd.DataFrame([
        {"study_id": "a", "study": "A 2010", "arm": "cell arm", "event": "fever", "outcome": "Adverse event",
         "count": "2", "timing": "day 1", "relation": "related", "pooled": "no", "row_id": "a-1"},
        {"study_id": "a", "study": "A 2010", "arm": "cell arm", "event": "dizziness", "outcome": "Adverse event",
         "count": "1", "timing": "day 1", "relation": "possibly related", "pooled": "no", "row_id": "a-2"},
        {"study_id": "b", "study": "B 2012", "arm": "cell arm", "event": "death", "outcome": "Death",
         "count": "1/20 (5.0%)", "timing": "by 12 months", "relation": "not related", "pooled": "yes",
         "row_id": "b-1"},
        {"study_id": "c", "study": "C 2014", "arm": "cell arm", "event": "death", "outcome": "Death",
         "count": "0/15 (0.0%)", "timing": "by 12 months", "relation": "not stated", "pooled": "yes",
         "row_id": "c-1"},
        {"study_id": "c", "study": "C 2014", "arm": "cell arm", "event": "infection", "outcome": "Adverse event",
         "count": "3", "timing": "not reported", "relation": "not stated", "pooled": "no", "row_id": "c-2"},
    ], columns=safety.EVENT_COLUMNS)
    pooled = pd.DataFrame([
        {"outcome": "Death", "follow_up_months": "6", "estimate": "2.0 (95% CI 0.1 to 9.0) %",
         "what_it_is": "study's own estimate", "n_studies": "1", "n_patients": "20"},
        {"outcome": "Death", "follow_up_months": "12", "estimate": "3.1 (95% CrI 0.4 to 12.2) %",
         "what_it_is": "pooled from 2 studies", "n_studies": "2", "n_patients": "35"},
    ], columns=safety.POOLED_COLUMNS)
    rows = sof.safety_rows(events, pooled, arms=ARMS)
    assert [r["Outcome"] for r in rows] == ["Adverse events (as reported)", "Death (% of patients)"]
    reported, death = rows
    assert reported["Studies (patients)"] == "3" and reported["Estimate (95% interval)"] == "\u2014"
    assert reported["What the estimate is"].startswith("5 reported numbers, not pooled")
    assert reported["In words"] == ("the authors judged 2 of 5 related or possibly related to MSCT, 1 not related "
                                    "and gave no judgement for 2")
    assert death["Visit (months)"] == "12" and death["Studies (patients)"] == "2 (35)"
    assert death["Estimate (95% interval)"] == "3.1 (95% CrI 0.4 to 12.2) %"
    assert death["What the estimate is"] == "pooled from 2 studies"
    frame = sof.summary_of_findings([], [], rows)
    rated, notes = sof.with_certainty(frame, [None, None])
    assert list(rated[sof.CERTAINTY]) == ["\u2014", "\u2014"] and notes == []
    assert sof.safety_rows(events.iloc[0:0], pooled.iloc[0:0], arms=ARMS) == []
