"""Config mistakes fail when the config is resolved, naming the key, the value and what was expected: every key
the engine reads (per-outcome prior keys as models.resolve_priors reads them, the visit grid, study sets, outcomes
against the dictionary and the data) and what the config points at (data folder, workbook, dictionary)."""

from __future__ import annotations

import shutil

import pytest

from conftest import FIXTURE_REVIEW, FIXTURES, ROOT
from timecourse_meta.core import config as config_mod
from timecourse_meta.core.config import ConfigError

ANALYSED = {"outcomes": ["proteinuria_24h", "sledai"], "binary_outcomes": ["renal_remission"],
            "study_sets": ["review_2023", "all_candidates"], "main_study_set": "review_2023"}


def resolve_error(**raw) -> str:
    with pytest.raises(ConfigError) as info:
        config_mod.resolve({**ANALYSED, **raw})
    return str(info.value)


def with_data(tmp_path, **raw) -> dict:
    """A resolved config pointing at a copy of the fixture sheets and dictionary."""
    shutil.copytree(FIXTURES / "sheets", tmp_path / "raw")
    data = {"raw_dir": str(tmp_path / "raw"), "outcome_dictionary": str(FIXTURES / "outcome_dictionary.yaml"),
            "vocabulary": str(ROOT / "data/review/vocabulary.yaml")}
    data.update(raw.pop("data", {}))
    return config_mod.resolve({**ANALYSED, "data": data, "review": FIXTURE_REVIEW, **raw})


def inputs_error(config: dict) -> str:
    with pytest.raises(ConfigError) as info:
        config_mod.check_inputs(config)
    return str(info.value)


def test_typo_in_a_prior_key_is_named_with_the_allowed_keys():
    text = resolve_error(model={"priors": {"proteinuria_24h": {"tau_sacle": 200}}})
    assert "unknown key 'model.priors.proteinuria_24h.tau_sacle'" in text
    assert "allowed keys here: baseline_sd, delta_sd, mu_sd, step_sd, tau_scale" in text


def test_typo_in_a_prior_outcome_name_suggests_the_outcome():
    text = resolve_error(model={"priors": {"proteinuria": {"tau_scale": 200}}})
    assert "key 'model.priors.proteinuria': expected an analysed outcome (outcomes or binary_outcomes) or " \
           "'default'; did you mean 'proteinuria_24h'?" in text


def test_prior_key_the_engine_does_not_read_for_the_outcome_kind():
    text = resolve_error(model={"priors": {"renal_remission": {"delta_sd": 1.0}}})
    assert "key 'model.priors.renal_remission.delta_sd': not read for a binary outcome; expected one of " \
           "mu_sd, tau_scale" in text
    text = resolve_error(model={"priors": {"sledai": {"mu_sd": 1.0}}})
    assert "key 'model.priors.sledai.mu_sd': not read for a continuous outcome" in text


def test_binary_prior_keys_read_by_the_engine_are_accepted():
    resolved = config_mod.resolve({**ANALYSED, "model": {"priors": {"renal_remission": {"mu_sd": 1.5}}}})
    assert resolved["model"]["priors"]["renal_remission"] == {"mu_sd": 1.5}


@pytest.mark.parametrize("grid", [[1, 3, 6], [0, 6, 3, 12], [0, 3, 3, 6]], ids=["no_zero", "unsorted", "duplicate"])
def test_visit_grid_must_start_at_zero_be_sorted_and_unique(grid):
    text = resolve_error(model={"visit_grid_months": grid})
    assert f"key 'model.visit_grid_months' = {grid}: expected visits in increasing order, each once, starting at 0" \
        in text


def test_outcome_listed_as_both_kinds():
    text = resolve_error(binary_outcomes=["renal_remission", "sledai"])
    assert "key 'binary_outcomes' = [\"sledai\"]: expected each outcome in only one" in text


def test_outcome_not_in_the_dictionary_is_named_before_any_job(tmp_path):
    config = with_data(tmp_path, outcomes=["proteinuria_24", "sledai"])
    text = inputs_error(config)
    assert "key 'outcomes' item \"proteinuria_24\": not in the outcome dictionary" in text
    assert "did you mean 'proteinuria_24h'?" in text


def test_outcome_of_the_wrong_kind(tmp_path):
    config = with_data(tmp_path, outcomes=["proteinuria_24h", "renal_remission"], binary_outcomes=[])
    assert "key 'outcomes' item \"renal_remission\": the dictionary defines it as binary; expected a continuous " \
           "outcome here" in inputs_error(config)


def test_study_set_no_study_belongs_to(tmp_path):
    review = {**FIXTURE_REVIEW, "study_sets": {**FIXTURE_REVIEW["study_sets"], "all_candidate": {"name": "x"}}}
    config = with_data(tmp_path, study_sets=["review_2023", "all_candidate"], main_study_set="review_2023",
                       review=review)
    text = inputs_error(config)
    assert "key 'study_sets' item \"all_candidate\": no study in" in text and "studies.csv belongs to it" in text
    assert "did you mean 'all_candidates'?" in text


def test_missing_data_folder_is_named_with_its_key(tmp_path):
    config = with_data(tmp_path, data={"raw_dir": str(tmp_path / "raw_data")})
    assert f"key 'data.raw_dir' = \"{tmp_path / 'raw_data'}\": folder not found" in inputs_error(config)


def test_missing_sheet_in_the_data_folder(tmp_path):
    config = with_data(tmp_path)
    (tmp_path / "raw" / "appraisal.csv").unlink()
    assert "appraisal.csv not found in it; expected the 'appraisal' sheet saved as CSV there" in inputs_error(config)


def test_missing_workbook_is_named_with_its_key(tmp_path):
    config = with_data(tmp_path, data={"workbook": str(tmp_path / "extraction.xlsx")})
    assert "key 'data.workbook'" in inputs_error(config) and "file not found" in inputs_error(config)


def test_missing_dictionary_is_named_with_its_key(tmp_path):
    config = with_data(tmp_path, data={"outcome_dictionary": str(tmp_path / "dict.yaml")})
    assert "key 'data.outcome_dictionary'" in inputs_error(config)


def test_valid_config_and_data_pass_the_input_checks(tmp_path):
    config_mod.check_inputs(with_data(tmp_path))


def test_yaml_tab_error_gives_line_and_column(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("sampling:\n  chains: 4\n\tdraws: 500\n")
    with pytest.raises(ConfigError) as info:
        config_mod.load(path)
    assert str(info.value) == (f"{path}: line 3, column 1: a tab character; YAML does not allow tabs for "
                               "indentation, indent with spaces")
    with pytest.raises(ConfigError, match="line 3, column 1: a tab character"):
        config_mod.check_yaml_file(path)


def test_other_yaml_error_gives_line_and_column(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("sampling:\n  chains: [4\n  draws: 500\n")
    with pytest.raises(ConfigError, match=r"config.yaml: line \d+, column \d+: not valid YAML"):
        config_mod.load(path)


def test_number_given_as_text_by_snakemake_config_gets_a_hint():
    text = resolve_error(harmonisation={"within_person_correlation": "0.3"})
    assert "key 'harmonisation.within_person_correlation' = \"0.3\": expected number" in text
    assert "set nested keys in a file given with --configfile" in text


def test_messages_name_where_the_config_came_from():
    source = config_mod.describe_sources(["config.yaml", "other.yaml"], {"main_study_set": "x"})
    assert source == "config.yaml + other.yaml + --config main_study_set=..."
    with pytest.raises(ConfigError, match=r"^Invalid configuration:\n  - config.yaml \+ other.yaml"):
        config_mod.resolve({"sampling": {"chains": 0}}, source=source)


# ------------------------------------------------------------------ the review's vocabulary file

def _vocabulary(tmp_path, edit) -> str:
    import yaml
    doc = yaml.safe_load((ROOT / "data/review/vocabulary.yaml").read_text(encoding="utf-8"))
    edit(doc)
    path = tmp_path / "vocabulary.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return str(path)


def test_vocabulary_with_a_bad_colour_names_the_file_and_key(tmp_path):
    path = _vocabulary(tmp_path, lambda d: d["judgements"]["yes"].update(colour="green"))
    text = inputs_error(with_data(tmp_path, data={"vocabulary": path}))
    assert "key 'data.vocabulary': Problems in the review's vocabulary file:" in text
    assert f"{path}: key 'judgements.yes.colour' = \"green\": expected text matching ^#[0-9a-fA-F]{{6}}$ " \
           "(Fill colour, as #rrggbb.)" in text


def test_vocabulary_with_an_unknown_key_names_it(tmp_path):
    path = _vocabulary(tmp_path, lambda d: d["designs"]["rct"].update(lable="RCT"))
    text = inputs_error(with_data(tmp_path, data={"vocabulary": path}))
    assert f"{path}: unknown key 'designs.rct.lable'; allowed keys here: controlled, label" in text


def test_vocabulary_characteristics_must_use_study_fields(tmp_path):
    path = _vocabulary(tmp_path, lambda d: d["characteristics"][0]["fields"].append("msc_site"))
    text = inputs_error(with_data(tmp_path, data={"vocabulary": path}))
    assert f"{path}: key 'characteristics.0.fields' = \"msc_site\": expected a column listed under study_fields" \
           in text


def test_study_field_that_is_an_engine_or_arm_column_is_an_error(tmp_path):
    def edit(doc):
        doc["study_fields"]["design"] = {"required": False}
        doc["study_fields"]["n_msct"] = {"required": False}
    path = _vocabulary(tmp_path, edit)
    text = inputs_error(with_data(tmp_path, data={"vocabulary": path}))
    assert f"{path}: key 'study_fields.design': the column is already one of the engine's own columns" in text
    assert (f"{path}: key 'study_fields.n_msct': the column is already the intervention arm's patient count "
            "(config review.arms.intervention.n_column)") in text


def test_missing_vocabulary_and_equal_arms_are_named(tmp_path):
    arms = {**FIXTURE_REVIEW["arms"], "comparator": {**FIXTURE_REVIEW["arms"]["comparator"], "id": "MSCT"}}
    config = with_data(tmp_path, data={"vocabulary": str(tmp_path / "none.yaml")},
                       review={**FIXTURE_REVIEW, "arms": arms})
    text = inputs_error(config)
    assert "key 'review.arms.comparator.id' = \"MSCT\": expected a value other than the intervention's id" in text
    assert f"key 'data.vocabulary' = \"{tmp_path / 'none.yaml'}\": file not found" in text
