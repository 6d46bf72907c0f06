"""PRISMA 2020 flow: counts from a constructed sheet (7 reports, 5 patient groups, 1 registry record, two
searches) counted by hand, every count drawn in the figure, every study in exactly one final box."""

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from timecourse_meta.report import prisma
from timecourse_meta.report.plots.prisma import prisma_figure

# study_id, patient_group, search, record_type, exclusion_reason, study_sets
REPORTS = [
    ("a1", "grp_a", "original", "journal_article", "", "s1;s2"),
    ("a2", "grp_a", "original", "conference_abstract", "", "s2"),
    ("b1", "b1", "original", "journal_article", "", "s2"),
    ("c1", "c1", "original", "secondary_table", "outside_question", "s2"),
    ("a3", "grp_a", "update", "journal_article", "", "s2"),          # a later report of an earlier study
    ("d1", "d1", "update", "registry_record", "registry_no_results", "s2"),
    ("e1", "e1", "update", "journal_article", "", "s2"),            # only unusable rows
]
# with a report the team excluded for no usable data (recorded, not derived): a box of its own
RECORDED = [("f1", "f1", "original", "thesis", "no_usable_data", "s2")]


def _studies(rows=REPORTS, drop=()):
    frame = pd.DataFrame(rows, columns=["study_id", "patient_group", "search", "record_type", "exclusion_reason",
                                        "study_sets"])
    return frame.drop(columns=list(drop))


OUTCOMES = pd.DataFrame({"study_id": ["a1", "a1", "b1", "e1", "a3"], "usable": ["yes", "no", "yes", "no", "yes"]})
TABLE = pd.DataFrame({"study_id": ["a1", "b1", "a3"]})

# Hand counts (set s2): original column a1 a2 b1 c1 -> groups A B C; update column a3 d1 e1 -> new groups D E
EXPECTED_S2 = {
    "original.records": 4, "original.records.journal_article": 2, "original.records.conference_abstract": 1,
    "original.records.secondary_table": 1, "original.overlap": 1, "original.studies": 3, "original.excluded": 1,
    "original.excluded.outside_question": 1, "original.included": 2, "original.included_reports": 4,
    "update.records": 3, "update.records.journal_article": 2, "update.records.registry_record": 1,
    "update.overlap": 1, "update.studies": 2, "update.excluded": 2, "update.excluded.registry_no_results": 1,
    "update.excluded.no_usable_rows": 1, "update.included": 0, "update.included_reports": 0,
    "total.included": 2, "total.included_reports": 4,
}


def _flow(study_set="s2", studies=None):
    studies = _studies() if studies is None else studies
    return prisma.prisma_flow(studies, prisma.usable_studies(OUTCOMES, TABLE), study_set)


def test_counts_equal_the_hand_counts():
    assert _flow().boxes == EXPECTED_S2


def test_a_study_outside_the_set_is_not_analysed_and_a_set_of_one_search_has_the_plain_layout():
    flow = _flow("s1")  # s1 draws only on the original search: the update's records are not in its flow
    assert flow.searches == ("original",) and "total.included" not in flow.boxes
    assert flow.boxes["original.excluded.not_in_set"] == 1 and flow.boxes["original.included"] == 1  # b1: s2 only
    assert flow.boxes["original.included_reports"] == 2  # a1, a2: the one study's reports of this search


@pytest.mark.parametrize("study_set", ["s1", "s2"])
def test_every_study_in_exactly_one_final_box(study_set):
    flow = _flow(study_set)
    assert sorted(flow.final) == {"s1": ["b1", "c1", "grp_a"], "s2": ["b1", "c1", "d1", "e1", "grp_a"]}[study_set]
    finals = [b for b in flow.boxes if not b.startswith("total.") and (".excluded." in b or b.endswith(".included"))]
    assert sum(flow.boxes[b] for b in finals) == len(flow.final)
    for box in finals:
        assert flow.boxes[box] == sum(v == box for v in flow.final.values()), box
    for c in flow.searches:  # the flow adds up in each column
        assert flow.boxes[f"{c}.records"] - flow.boxes[f"{c}.overlap"] == flow.boxes[f"{c}.studies"]
        assert flow.boxes[f"{c}.studies"] == flow.boxes[f"{c}.excluded"] + flow.boxes[f"{c}.included"]


def test_plain_layout_and_missing_columns_read_tolerantly():
    one_search = _studies([r for r in REPORTS if r[2] == "original"], drop=("search", "record_type"))
    flow = _flow(studies=one_search)
    assert flow.searches == ("original",) and "total.included" not in flow.boxes
    assert flow.boxes["original.records.journal_article"] == 4  # missing record_type = journal article
    no_reasons = prisma.prisma_flow(_studies(drop=("exclusion_reason",)), {"a1", "b1", "c1"}, "s2")
    assert no_reasons.boxes["original.included"] == 3 and no_reasons.boxes["update.excluded.no_usable_rows"] == 2


def test_recorded_and_derived_lack_of_data_are_separate_boxes():
    boxes = _flow(studies=_studies(REPORTS + RECORDED)).boxes
    assert boxes["original.excluded.no_usable_data"] == 1 and boxes["update.excluded.no_usable_rows"] == 1
    assert boxes["original.records.thesis"] == 1 and boxes["original.studies"] == 4


def test_table_has_every_box_with_its_definition():
    table = _flow().table()
    assert list(table["box"]) == list(EXPECTED_S2) and table["definition"].str.len().min() > 10
    assert set(table["stage"]) == {"identification", "screening", "included"}


@pytest.mark.parametrize("one_search", [False, True])
def test_every_count_is_drawn(one_search):
    studies = _studies([r for r in REPORTS if r[2] == "original"]) if one_search else _studies()
    flow = _flow(studies=studies)
    fig = prisma_figure(flow, set_name="the second set", search_names={"original": "databases to 2022"},
                        labels={"outside_question": "Outside the question"})
    ax = fig.axes[0]
    texts = {t.get_gid(): t.get_text().replace("\n", " ").replace("\u00a0", " ") for t in ax.texts}
    for box, count in flow.boxes.items():
        assert f"(n = {count})" in texts[box], (box, texts.get(box))
    assert "Outside the question" in texts["original.excluded.outside_question"]
    assert {"stage.Identification", "stage.Screening", "stage.Included"} <= set(texts)
    assert fig.get_figwidth() <= 7.5
    plt.close(fig)


def test_manuscript_variables_repeat_the_counts_table():
    """The manuscript's numbers are the counts table's (fixture results: four studies, one search)."""
    from pathlib import Path

    from timecourse_meta.manuscript import variables as V

    root = Path(__file__).resolve().parents[1]
    results = Path(__file__).parent / "fixtures" / "results"
    flat = V.build_variables(results / "config" / "resolved_config.yaml", results, root).flat()
    counts = pd.read_csv(results / "tables" / "review_2023" / "prisma_counts.csv")
    boxes = dict(zip(counts["box"], counts["count"]))
    assert flat["main.prisma.n_included"] == str(boxes["original.included"])
    assert flat["main.prisma.box.original_excluded_not_in_set"] == str(boxes["original.excluded.not_in_set"])
    assert flat["main.prisma.n_records"] == str(boxes["original.records"]) == "4"
    assert flat["main.prisma.sentence"].startswith("4 records were reports of 4 studies")
    assert flat["update.status"] == "none" and flat["update.sentence"].startswith("there is no earlier")
