"""The strategy registry and the mutation table: each name is defined once, and config validation, the CLI and
the runner read it from there."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Iterator

import pytest

from assemblenet.cli.main import main
from assemblenet.errors import ConfigError
from assemblenet.search import registry
from assemblenet.search.fitness import searches_attention
from assemblenet.search.mutations import MUTATIONS, MutationInputs, mutate
from assemblenet.search.registry import make_strategy, register_strategy, strategy_names, strategy_spec
from assemblenet.search.space import SearchSpace
from assemblenet.search.store import RunStore
from assemblenet.search.strategies import RandomSearch, SearchContext

from .conftest import tiny_config

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "search" / "tiny.yaml"


def test_every_strategy_is_registered_once_in_a_stable_order() -> None:
    assert strategy_names() == ("evolution", "evolution-unguided", "random", "oneshot", "oneshot-attention")
    for name in strategy_names():
        assert make_strategy(name).name == name
    assert [n for n in strategy_names() if strategy_spec(n).mutates] == ["evolution", "evolution-unguided"]
    assert [n for n in strategy_names() if strategy_spec(n).learns_attention] == ["oneshot-attention"]
    assert searches_attention(tiny_config(strategy="oneshot-attention")) == "strategy 'oneshot-attention'"
    assert searches_attention(tiny_config(strategy="oneshot")) is None
    with pytest.raises(ValueError, match="already registered"):
        register_strategy("random")(RandomSearch)


@pytest.fixture
def every_other_graph() -> Iterator[str]:
    """A strategy registered by a test (removed afterwards): random graphs, but only every other proposal."""

    @register_strategy("test-every-other")
    class EveryOther(RandomSearch):
        def propose(self, ctx: SearchContext, count: int):
            ctx.random_candidate("skipped")
            return super().propose(ctx, count)

    try:
        yield "test-every-other"
    finally:
        del registry._STRATEGIES["test-every-other"]


def test_a_registered_strategy_is_accepted_by_the_config_the_cli_and_the_runner(every_other_graph: str,
                                                                               tmp_path: Path) -> None:
    assert tiny_config(strategy=every_other_graph).strategy == every_other_graph
    out = tmp_path / "out"
    assert main(["search", str(CONFIG), "--no-progress", "--no-report", "--output", str(out), "--strategy",
                 every_other_graph, "--max-evaluations", "4"]) == 0
    records = RunStore(out / f"{every_other_graph}-seed0").read_records()
    assert sorted(records) == [0, 1, 2, 3] and {r.mutation["kind"] for r in records.values()} == {"random"}
    manifest = json.loads((out / f"{every_other_graph}-seed0" / "search.json").read_text())
    assert manifest["strategy"] == every_other_graph


def test_an_unregistered_strategy_is_refused_with_the_registered_names(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(ConfigError, match="strategy.*oneshot-attention"):
        tiny_config(strategy="annealing")
    assert main(["search", str(CONFIG), "--strategy", "annealing"]) == 2
    assert "evolution-unguided" in capsys.readouterr().err


def test_the_mutation_table_gives_the_config_its_keys() -> None:
    assert list(MUTATIONS) == ["connection", "dilation", "split", "merge", "attention"]
    with pytest.raises(ConfigError, match=r"mutation\.probabilities\.flip.*'attention'"):
        tiny_config(**{"mutation.probabilities": {"connection": 1.0, "flip": 0.5}})
    space = SearchSpace(tiny_config().space)
    with pytest.raises(ValueError, match="unknown mutation kind 'flip'"):
        mutate(space.sample(random.Random(0)), space=space, rng=random.Random(0), kind="flip")


def test_mutate_retries_a_kind_only_while_its_table_row_says_it_can_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    # One node per level: no merge can exist, so a rejected merge is not retried; a rejected connection mutation
    # is retried, condemning one more edge every second attempt.
    space = SearchSpace(tiny_config(**{"space.nodes_per_level": [1, 1, 1, 1]}).space)
    parent = space.sample(random.Random(0))
    assert not MUTATIONS["merge"].applicable(parent, MutationInputs(space, random.Random(0)))
    assert MUTATIONS["connection"].applicable(parent, MutationInputs(space, random.Random(0)))
    for kind, expected in (("merge", [0]), ("connection", [0, 0, 1, 1, 2, 2])):
        calls: list[int] = []
        monkeypatch.setitem(MUTATIONS, kind, dataclasses.replace(
            MUTATIONS[kind], apply=lambda graph, given: calls.append(given.extra)))
        assert mutate(parent, space=space, rng=random.Random(0), kind=kind, max_attempts=6) is None
        assert calls == expected, kind
