"""config.yaml is checked against its schema: unknown keys and wrong types fail naming the key."""

import pytest
import yaml

from timecourse_meta.core import config
from timecourse_meta.core.config import ConfigError

from conftest import ROOT


def test_unknown_top_level_key_is_named():
    with pytest.raises(ConfigError, match=r"unknown key 'outcome_set'"):
        config.resolve({"outcome_set": ["sledai"]})


def test_unknown_nested_key_is_named_with_its_path():
    with pytest.raises(ConfigError) as info:
        config.resolve({"sampling": {"chain": 4}})
    assert "unknown key 'sampling.chain'" in str(info.value)
    assert "chains" in str(info.value)  # the allowed keys are listed


def test_wrong_type_names_key_and_expectation():
    with pytest.raises(ConfigError, match=r"key 'harmonisation.within_person_correlation' = \"high\": expected number"):
        config.resolve({"harmonisation": {"within_person_correlation": "high"}})


def test_out_of_range_and_enum_are_errors():
    with pytest.raises(ConfigError) as info:
        config.resolve({"harmonisation": {"within_person_correlation": 1.5}, "model": {"time_course": "spline"}})
    text = str(info.value)
    assert "within_person_correlation' = 1.5: expected a value <= 1" in text
    assert "time_course' = \"spline\": expected one of" in text


def test_defaults_are_filled_from_the_schema():
    resolved = config.resolve({})
    assert resolved["harmonisation"]["within_person_correlation"] == 0.5
    assert resolved["sampling"]["chains"] == 4
    assert resolved["diagnostics"]["max_rhat"] == 1.01
    assert resolved["model"]["within_study_correlation"]["prior"] == {"alpha": 2.0, "beta": 2.0}
    assert resolved["study_sets"] == ["all"]  # the engine names no study set of its own


def test_main_study_set_must_be_analysed():
    with pytest.raises(ConfigError, match="main_study_set"):
        config.resolve({"study_sets": ["all_candidates"], "main_study_set": "review_2023"})


def test_every_schema_key_has_a_description():
    schema = config.load_schema()

    def walk(node, path):
        for name, sub in node.get("properties", {}).items():
            assert sub.get("description"), f"{'.'.join(path + [name])} has no description"
            walk(sub, path + [name])
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            walk(extra, path + ["*"])

    walk(schema, [])


def test_shipped_config_resolves_and_round_trips(tmp_path):
    resolved = config.load(ROOT / "config.yaml")
    out = tmp_path / "resolved.yaml"
    config.write_resolved(resolved, out)
    assert config.resolve(yaml.safe_load(out.read_text())) == resolved


def test_review_defaults_name_no_review():
    resolved = config.resolve({})
    assert resolved["outcomes"] == [] and resolved["binary_outcomes"] == [] and resolved["data"]["claims"] is None
    assert resolved["review"]["study_sets"] == {}
    arms = resolved["review"]["arms"]
    assert (arms["intervention"]["id"], arms["intervention"]["n_column"]) == ("intervention", "n_intervention")
    assert (arms["comparator"]["id"], arms["comparator"]["n_column"]) == ("control", "n_control")


def test_a_partly_given_comparator_takes_the_comparator_defaults():
    arms = config.resolve({"review": {"arms": {"comparator": {"id": "waitlist"}}}})["review"]["arms"]
    assert arms["comparator"] == {"id": "waitlist", "label": "control", "short": "control",
                                  "arm_name": "control arm", "n_column": "n_control"}

