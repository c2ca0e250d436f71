"""The proxy-signal grid: relative weights, seed agreement, and the resumable grid (on the toy fitness, whose
weight signal and noise levels are known by construction)."""

from __future__ import annotations

import dataclasses
import json
import random
import statistics

import pytest

from assemblenet.errors import ConfigError
from assemblenet.search.noise import (
    grid_markdown,
    measure_fitness_noise,
    parse_cells,
    pearson,
    relative_log_weights,
    run_grid,
    weight_agreement,
)
from assemblenet.search.space import SearchSpace
from assemblenet.search.toy import ToyFitness

from .conftest import tiny_config


def test_pearson_matches_known_values() -> None:
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert pearson([1, 2, 3, 4], [1, -1, -1, 1]) == pytest.approx(0.0)


def test_relative_weights_drop_each_nodes_common_scale() -> None:
    graph = SearchSpace(tiny_config().space).dense(random.Random(3))
    rng = random.Random(0)
    weights = {(e.source, e.target): rng.uniform(0.05, 0.95) for e in graph.edges()}
    scaled = {(s, t): w * (0.1 + 0.05 * t) for (s, t), w in weights.items()}
    a, b = relative_log_weights(graph, weights), relative_log_weights(graph, scaled)
    assert a.keys() == b.keys() and all(len(graph.predecessors(t)) > 1 for _, t in a)
    assert all(a[e] == pytest.approx(b[e]) for e in a)
    assert weight_agreement(graph, [weights, scaled]) == pytest.approx(1.0)


def test_noise_probe_separates_informative_weights_from_fitness_noise() -> None:
    space = SearchSpace(tiny_config().space)
    graph = space.dense(random.Random(3))
    quiet = measure_fitness_noise(ToyFitness(noise=0.0), graph, seeds=[1, 2, 3])
    noisy = measure_fitness_noise(ToyFitness(noise=0.05), graph, seeds=[1, 2, 3])
    assert quiet["fitness_std"] == 0.0 and noisy["fitness_std"] > 0.0  # the fitness noise is what `noise` adds
    # Toy weights are sigmoid(usefulness + per-seed noise): the same edges lean the same way under every seed.
    assert 0.5 < quiet["weight_agreement"] <= 1.0


@dataclasses.dataclass(frozen=True)
class _CountingToy(ToyFitness):
    log: str = ""

    def __call__(self, graph, *, seed, workdir=None):
        with open(self.log, "a") as handle:
            handle.write("x\n")
        return super().__call__(graph, seed=seed, workdir=workdir)


def test_grid_measures_every_cell_and_resumes_without_redoing_evaluations(tmp_path) -> None:
    config = tiny_config(**{"executor.workers": 1})
    log = tmp_path / "calls.txt"

    def make(steps: int, multiplier: float) -> ToyFitness:  # noisier fitness for fewer steps
        return _CountingToy(noise=0.02 / steps, log=str(log))

    kwargs = dict(steps=[1, 4], multipliers=[1.0, 3.0], seeds=3, graphs=5, output=tmp_path / "grid",
                  progress=False, make_fitness=make)
    reports = run_grid(config, **kwargs)
    assert len(log.read_text().splitlines()) == 4 * (3 + 5)
    assert [(r.steps, r.lr_multiplier) for r in reports] == [(1, 1.0), (1, 3.0), (4, 1.0), (4, 3.0)]
    assert reports[0].seed_std > reports[2].seed_std > 0  # the noise level the fitness was given
    assert all(r.graph_std > 0 and r.signal_to_noise == pytest.approx(r.graph_std / r.seed_std) for r in reports)
    again = run_grid(config, **kwargs)
    assert len(log.read_text().splitlines()) == 4 * (3 + 5)  # everything came from evaluations.jsonl
    assert again == reports
    saved = json.loads((tmp_path / "grid" / "noise_grid.json").read_text())
    assert len(saved["cells"]) == 4
    assert grid_markdown(reports).count("\n") == 2 + 4


def test_command_line_takes_set_and_print_config(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    import yaml

    from assemblenet.cli.main import main

    config = Path(__file__).resolve().parents[2] / "configs" / "search" / "tiny.yaml"
    assert main(["proxy-noise", str(config), "--output", str(tmp_path), "--set", "executor.workers=2",
                 "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["executor"]["workers"] == 2
    assert not any(tmp_path.iterdir())


def test_malformed_cells_are_one_line_naming_the_flag(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    from assemblenet.cli.main import main

    config = Path(__file__).resolve().parents[2] / "configs" / "search" / "tiny.yaml"
    assert main(["proxy-noise", str(config), "--output", str(tmp_path), "--cells", "24by10"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("assemblenet: error: --cells:") and "'24by10'" in line
    assert parse_cells("24x10,48x1") == [(24, 10.0), (48, 1.0)]


def test_several_references_average_the_agreement_and_pool_the_seed_noise(tmp_path) -> None:
    config = tiny_config(**{"executor.workers": 1})
    log = tmp_path / "calls.txt"

    def make(steps: int, multiplier: float) -> ToyFitness:
        return _CountingToy(noise=0.02, log=str(log))

    one = run_grid(config, steps=[1], multipliers=[1.0], seeds=3, graphs=4, output=tmp_path / "one",
                   progress=False, make_fitness=make)[0]
    three = run_grid(config, steps=[1], multipliers=[1.0], seeds=3, graphs=4, output=tmp_path / "three",
                     progress=False, make_fitness=make, references=3)[0]
    assert len(log.read_text().splitlines()) == (3 + 4) + (3 * 3 + 4)
    assert three.reference_fitness[0] == one.seed_fitness == three.seed_fitness  # the first reference is the same
    assert three.graph_fitness == one.graph_fitness
    pooled = (sum(statistics.variance(f) for f in three.reference_fitness) / 3) ** 0.5
    assert len(three.reference_fitness) == 3 and three.seed_std == pytest.approx(pooled)
    with pytest.raises(ConfigError, match="references"):
        run_grid(config, steps=[1], multipliers=[1.0], seeds=3, graphs=2, output=tmp_path / "bad",
                 progress=False, make_fitness=make, references=3)


def test_chosen_cells_replace_the_product(tmp_path) -> None:
    config = tiny_config(**{"executor.workers": 1})
    make = lambda steps, multiplier: ToyFitness(noise=0.01)  # noqa: E731
    reports = run_grid(config, steps=[1], multipliers=[1.0], seeds=2, graphs=3, output=tmp_path / "g",
                       progress=False, make_fitness=make, cells=[(4, 3.0), (1, 1.0)])
    assert [(r.steps, r.lr_multiplier) for r in reports] == [(4, 3.0), (1, 1.0)]
    saved = json.loads((tmp_path / "g" / "noise_grid.json").read_text())
    assert [(c["steps"], c["lr_multiplier"]) for c in saved["cells"]] == [(4, 3.0), (1, 1.0)]
