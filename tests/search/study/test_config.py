"""The study config (``search-study CONFIG``): defaults, the one-line errors naming the file and key, the
pre-registered hypotheses parsed into typed dataclasses, and the printed config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from assemblenet.errors import ConfigError
from assemblenet.search.study import (
    RetrainConfig,
    Study,
    load_study_config,
    study_config_from_dict,
)

from .conftest import (
    CONFIGS,
    H1,
    TINY,
    study_dict,
    with_hypotheses,
)


def test_shipped_study_config_loads() -> None:
    config = load_study_config(CONFIGS / "study_tiny.yaml")
    assert config.name == "study_tiny"
    assert config.search_path.resolve() == (CONFIGS / "tiny.yaml").resolve()
    assert config.retrain.enabled is False
    assert set(config.strategies) == {"evolution", "evolution-unguided", "random", "oneshot"}


def test_defaults() -> None:
    config = study_config_from_dict({"search": TINY})
    assert config.strategies == ("evolution", "evolution-unguided", "random", "oneshot")
    assert config.seeds == (0, 1, 2, 3, 4)
    assert (config.max_evaluations, config.bootstrap_samples) == (40, 10000)
    assert config.retrain == RetrainConfig()
    assert config.retrain.seeds == 1 and config.retrain.width_multiplier is None and config.retrain.steps is None


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        # unknown keys
        ({"seed": [0]}, "seed", "unknown key"),
        ({"retrain": {"step": 10}}, "retrain.step", "unknown key"),
        # wrong types
        ({"seeds": "0,1"}, "seeds", "expected a list"),
        ({"max_evaluations": 4.5}, "max_evaluations", "expected an integer"),
        ({"retrain": {"enabled": "yes"}}, "retrain.enabled", "expected true or false"),
        ({"retrain": {"steps": "many"}}, "retrain.steps", "expected an integer"),
        ({"retrain": {"overrides": ["data.val=x"]}}, "retrain.overrides", "expected a mapping"),
        # out of range
        ({"max_evaluations": 0}, "max_evaluations", "at least 1"),
        ({"seeds": [0, -1]}, "seeds[1]", "must be at least 0, got -1"),
        ({"seeds": [1, 1]}, "seeds", "distinct"),
        ({"strategies": ["evolution", "hillclimb"]}, "strategies[1]", "got 'hillclimb'"),
        ({"bootstrap_samples": 10}, "bootstrap_samples", "at least 100"),
        ({"retrain": {"seeds": 0}}, "retrain.seeds", "at least 1"),
        ({"retrain": {"width_multiplier": 1.5}}, "retrain.width_multiplier", "(0, 1]"),
        ({"retrain": {"steps": 0}}, "retrain.steps", "at least 1"),
        ({"search": "nowhere.yaml"}, "search", "not found"),
        ({"retrain": {"enabled": True, "config": "nowhere.yaml"}}, "retrain.config", "not found"),
    ],
)
def test_bad_study_config_names_the_file_and_key(data: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        study_config_from_dict(study_dict(**data), source="study.yaml")
    message = str(info.value)
    assert message.startswith(f"study.yaml: key '{key}': "), message
    assert words in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("retrain: {step: 10}\n", "retrain.step", "unknown key; did you mean 'steps'?"),
        ("max_evaluations: 4.5\n", "max_evaluations", "expected an integer, got 4.5"),
        ("bootstrap_samples: 10\n", "bootstrap_samples", "must be at least 100 for a percentile interval, got 10"),
    ],
)
def test_file_errors_are_one_line_naming_the_file_and_dotted_key(tmp_path: Path, text: str, key: str,
                                                                  message: str) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(f"search: {TINY}\n" + text)
    with pytest.raises(ConfigError) as info:
        load_study_config(path)
    assert str(info.value) == f"{path}: key '{key}': {message}"


def test_study_overrides_and_printed_config(tmp_path: Path) -> None:
    config = load_study_config(CONFIGS / "study_tiny.yaml", ["max_evaluations=3", "seeds=[5, 6]"])
    assert config.max_evaluations == 3 and config.seeds == (5, 6)
    printed = yaml.safe_load(config.to_yaml())
    assert printed["seeds"] == [5, 6] and printed["retrain"]["enabled"] is False and "base_dir" not in printed


def test_search_key_is_required_and_relative_to_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ConfigError, match=r"^study.yaml: key 'search': required"):
        study_config_from_dict({"name": "x"}, source="study.yaml")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "base.yaml").write_text(Path(TINY).read_text())
    path = tmp_path / "sub" / "my_study.yaml"
    path.write_text(yaml.safe_dump({"search": "sub/base.yaml", "seeds": [3]}))
    monkeypatch.chdir(tmp_path)
    config = load_study_config(path)
    assert config.name == "my_study" and config.search_path == tmp_path / "sub" / "base.yaml"
    path.write_text(yaml.safe_dump({"search": "base.yaml"}))  # beside the study file: not where it is looked for
    with pytest.raises(ConfigError, match=r"key 'search': search config not found: base\.yaml \(relative paths "
                                          r"in a config are relative to the working directory: "):
        load_study_config(path)


def test_cli_set_and_print_config(capsys: pytest.CaptureFixture[str]) -> None:
    from assemblenet.cli.main import main

    study = str(CONFIGS / "study_tiny.yaml")
    assert main(["search-study", study, "--set", "max_evaluations=3", "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["max_evaluations"] == 3
    assert main(["search-study", study, "--set", "retrain.seeds=0", "--print-config"]) == 2
    assert capsys.readouterr().err.strip() == (f"assemblenet: error: {study}: key 'retrain.seeds': must be at least "
                                               "1, got 0")


def test_hypotheses_parse_into_typed_dataclasses_and_change_the_config_hash() -> None:
    from assemblenet.search.study import Arm, Hypothesis, config_hash

    shipped = load_study_config(CONFIGS / "study_compositional.yaml")
    names = [h.name for h in shipped.hypotheses.confirmatory]
    assert names == ["H1", "H2", "H3-asn50", "H3-late-fusion"] and shipped.hypotheses.correction == "holm"
    h1, h2, h3 = shipped.hypotheses.confirmatory[:3]
    assert isinstance(h1, Hypothesis) and h1.comparison.a == Arm(strategy="evolution")
    assert h1.endpoint == h2.endpoint == "rescored_mean" and h1.comparison.paired
    assert h2.comparison.b == Arm(strategy="evolution-unguided")
    assert h3.comparison.b == Arm(wiring="asn50") and not h3.comparison.paired and h3.margin == 0.02
    assert [m for m, _ in h3.members] == ["H3-asn50", "H3-asn50 (equivalence)"]
    tiny = load_study_config(CONFIGS / "study_tiny.yaml")
    assert [h.name for h in tiny.hypotheses.confirmatory] == ["H1", "H2"]
    # the hypotheses are part of the config and its hash
    plain = study_config_from_dict(study_dict(), source="s.yaml")
    declared = study_config_from_dict(study_dict(hypotheses=with_hypotheses(H1)), source="s.yaml")
    assert config_hash(plain) != config_hash(declared)
    assert declared.to_dict()["hypotheses"]["confirmatory"][0]["comparison"]["b"] == {"strategy": "random",
                                                                                       "wiring": None}


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        ({"endpoint": "accuracy"}, "hypotheses.confirmatory[0].endpoint", "expected one of"),
        ({"alternative": "bigger"}, "hypotheses.confirmatory[0].alternative", "expected one of"),
        ({"comparison": {"a": {"strategy": "evolution"}, "b": {"strategy": "oneshot"}}},
         "hypotheses.confirmatory[0].comparison.b.strategy", "expected a strategy of the study"),
        ({"comparison": {"a": {"strategy": "evolution"}, "b": {}}}, "hypotheses.confirmatory[0].comparison.b",
         "exactly one of strategy"),
        ({"comparison": {"a": {"strategy": "evolution"}, "b": {"wiring": "i3d"}}},
         "hypotheses.confirmatory[0].comparison.b.wiring", "expected one of baselines.names"),
        ({"comparison": {"a": {"strategy": "evolution"}, "b": {"wiring": "asn50"}}},
         "hypotheses.confirmatory[0].comparison.b.wiring", "needs baselines.enabled"),
        ({"comparison": {"a": {"wiring": "asn50"}, "b": {"strategy": "evolution"}}},
         "hypotheses.confirmatory[0].comparison.a", "must be a strategy"),
        ({"test": "mann_whitney"}, "hypotheses.confirmatory[0].test", "for a paired comparison"),
        ({"alternative": "equivalent"}, "hypotheses.confirmatory[0].margin", "needs a margin"),
        ({"margin": -0.02}, "hypotheses.confirmatory[0].margin", "must be > 0"),
        ({"alpha": 0.7}, "hypotheses.confirmatory[0].alpha", "must be in (0, 0.5)"),
        ({"endpoint": "test_score"}, "hypotheses.confirmatory[0].endpoint", "needs retrain.enabled"),
        ({"name": ""}, "hypotheses.confirmatory[0].name", "must not be empty"),
        ({"metric": "top1"}, "hypotheses.confirmatory[0].metric", "unknown key"),
    ],
)
def test_bad_hypotheses_name_the_file_and_key(change: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as error:
        study_config_from_dict(study_dict(hypotheses=with_hypotheses({**H1, **change})), source="study.yaml")
    assert str(error.value).startswith(f"study.yaml: key '{key}'") and words in str(error.value)


def test_a_holm_family_shares_one_alpha_and_names_are_distinct() -> None:
    with pytest.raises(ConfigError, match="key 'hypotheses.correction'.*same alpha"):
        study_config_from_dict(study_dict(hypotheses=with_hypotheses(H1, {**H1, "name": "H2", "alpha": 0.01})),
                               source="s.yaml")
    study_config_from_dict(study_dict(hypotheses=with_hypotheses(H1, {**H1, "name": "H2", "alpha": 0.01},
                                                                 correction="none")), source="s.yaml")
    with pytest.raises(ConfigError, match="names must be distinct"):
        study_config_from_dict(study_dict(hypotheses=with_hypotheses(H1, H1)), source="s.yaml")


def test_rescored_mean_needs_finalist_rescoring(tmp_path: Path) -> None:
    config = study_config_from_dict(study_dict(hypotheses=with_hypotheses({**H1, "endpoint": "rescored_mean"})),
                                    source="s.yaml")
    with pytest.raises(ConfigError, match="hypotheses.confirmatory\\[0\\].endpoint.*finalist re-scoring"):
        Study(config, output=tmp_path / "out", progress=False)


def test_baseline_seeds_are_disjoint_from_the_recipe_seeds() -> None:
    recipes = {"enabled": True, "graphs": ["asn50"], "seeds": 4, "candidates": [{"name": "a", "steps": 5}]}
    config = study_config_from_dict(study_dict(recipes=recipes, baselines={"seeds": 3}), source="s.yaml")
    assert config.recipe_seeds == (0, 1, 2, 3) and config.baseline_seeds == (4, 5, 6)
    assert not set(config.recipe_seeds) & set(config.baseline_seeds)
    assert study_config_from_dict(study_dict(baselines={"seeds": 3}), source="s.yaml").baseline_seeds == (0, 1, 2)
    assert study_config_from_dict(study_dict(recipes=recipes, baselines={"seeds": 2, "first_seed": 10}),
                                  source="s.yaml").baseline_seeds == (10, 11)
    with pytest.raises(ConfigError, match="key 'baselines.first_seed'.*overlap the recipe seeds"):
        study_config_from_dict(study_dict(recipes=recipes, baselines={"seeds": 3, "first_seed": 2}), source="s.yaml")
    shipped = load_study_config(CONFIGS / "study_compositional.yaml")
    assert not set(shipped.recipe_seeds) & set(shipped.baseline_seeds)
