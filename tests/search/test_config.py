from __future__ import annotations

from pathlib import Path

import pytest

from assemblenet.errors import ConfigError
from assemblenet.search.config import SearchConfig, load_search_config, search_config_from_dict

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "search"
SEARCH_CONFIGS = sorted((set(CONFIGS.glob("*.yaml")) - set(CONFIGS.glob("study_*.yaml")))
                        | set(CONFIGS.glob("proxy_variants/*.yaml")))


@pytest.mark.parametrize("path", SEARCH_CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load(path: Path) -> None:
    config = load_search_config(path)
    assert config.name
    assert config.space.level_filters


def test_defaults_are_the_paper_defaults() -> None:
    config = SearchConfig()
    assert (config.search.population_size, config.search.tournament_size) == (20, 5)
    assert config.mutation.prune_threshold == 0.2
    assert config.space.dilations == (1, 2, 4, 8)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"sead": 1}, "sead"),
        ({"space": {"nodes_per_levl": [1, 1, 1, 1]}}, "space.nodes_per_levl"),
        ({"search": {"tournament_size": "five"}}, "search.tournament_size"),
        ({"search": {"tournament_size": 30}}, "search.tournament_size"),
        ({"space": {"level_filters": [100, 256, 512, 512]}}, "space.level_filters[0]"),
        ({"space": {"stems": ["rgb", "depth"]}}, "space.stems[1]"),
        ({"space": {"width_multiplier": 0.1}}, "space.width_multiplier"),
        ({"mutation": {"probabilities": {"conection": 1.0}}}, "mutation.probabilities.conection"),
        ({"mutation": {"prune_threshold": 1.5}}, "mutation.prune_threshold"),
        ({"fitness": {"kind": "toy", "steps": 3}}, "fitness.steps"),
        ({"fitness": {"kind": "magic"}}, "fitness.kind"),
        ({"executor": {"kind": "slurm"}}, "executor.kind"),
        ({"executor": {"max_retries": -1}}, "executor.max_retries"),
        ({"executor": {"max_retries": 1.5}}, "executor.max_retries"),
        ({"strategy": "hillclimb"}, "strategy"),
        ({"tensorboard": "yes"}, "tensorboard"),
    ],
)
def test_bad_config_names_the_key(data: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        search_config_from_dict(data, source="x.yaml")
    message = str(info.value)
    assert message.startswith(f"x.yaml: key '{key}': "), message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("search: {tournament_sise: 3}\n", "search.tournament_sise", "unknown key; did you mean 'tournament_size'?"),
        ("search: {tournament_size: five}\n", "search.tournament_size", "expected an integer, got 'five'"),
        ("executor: {workers: 0}\n", "executor.workers", "must be at least 1, got 0"),
        ("fitness: {kind: toy, steps: 3}\n", "fitness.steps", "unknown key; expected one of ['sleep_seconds', 'noise'] "
                                                              "(for fitness kind 'toy')"),
    ],
)
def test_file_errors_are_one_line_naming_the_file_and_dotted_key(tmp_path: Path, text: str, key: str,
                                                                  message: str) -> None:
    path = tmp_path / "search.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_search_config(path)
    assert str(info.value) == f"{path}: key '{key}': {message}"


def test_overrides_are_applied_before_validation_and_printed_config_round_trips(tmp_path: Path) -> None:
    config = load_search_config(CONFIGS / "tiny.yaml", ["search.batch_size=3", "fitness.noise=0.5", ("seed", 7)])
    assert (config.search.batch_size, config.fitness.toy.noise, config.seed) == (3, 0.5, 7)
    with pytest.raises(ConfigError, match=r"tiny\.yaml: key 'search\.batch_size': must be at least 1, got 0$"):
        load_search_config(CONFIGS / "tiny.yaml", ["search.batch_size=0"])
    printed = tmp_path / "printed.yaml"
    printed.write_text(config.to_yaml())
    assert load_search_config(printed) == config


def test_load_reports_file_and_bad_yaml(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_search_config(missing)
    bad = tmp_path / "bad.yaml"
    bad.write_text("search: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML: "):
        load_search_config(bad)


def test_name_defaults_to_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "my_search.yaml"
    path.write_text("seed: 3\n")
    config = load_search_config(path)
    assert config.name == "my_search"
    assert config.seed == 3


def test_fingerprint_ignores_budget_executor_and_output_but_not_the_search() -> None:
    base = search_config_from_dict({})
    same = base.replace(**{"search.max_evaluations": 999, "executor.kind": "ray", "executor.workers": 4,
                           "output_dir": "elsewhere", "tensorboard": True})
    assert same.fingerprint() == base.fingerprint()
    for change in ({"seed": 1}, {"strategy": "random"}, {"search.batch_size": 4}, {"mutation.prune_threshold": 0.3}):
        assert base.replace(**change).fingerprint() != base.fingerprint()


def test_replace_validates() -> None:
    with pytest.raises(ConfigError, match="search.tournament_size"):
        search_config_from_dict({}).replace(**{"search.population_size": 2})
