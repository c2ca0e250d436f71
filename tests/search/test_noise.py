"""The fitness-noise probe on the toy fitness, whose weight signal and noise levels are known by construction."""

from __future__ import annotations

import random

import pytest

from assemblenet.search.noise import measure_fitness_noise, pearson
from assemblenet.search.space import SearchSpace
from assemblenet.search.toy import ToyFitness

from .conftest import tiny_config


def test_pearson_matches_known_values() -> None:
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert pearson([1, 2, 3, 4], [1, -1, -1, 1]) == pytest.approx(0.0)


def test_noise_probe_separates_informative_weights_from_fitness_noise() -> None:
    space = SearchSpace(tiny_config().space)
    graph = space.dense(random.Random(3))
    quiet = measure_fitness_noise(ToyFitness(noise=0.0), graph, seeds=[1, 2, 3])
    noisy = measure_fitness_noise(ToyFitness(noise=0.05), graph, seeds=[1, 2, 3])
    assert quiet.fitness_std == 0.0 and noisy.fitness_std > 0.0  # the fitness noise is what `noise` adds
    assert quiet.edges == noisy.edges > 0
    # Toy weights are sigmoid(usefulness + per-seed noise): the same edges lean the same way under every seed.
    assert 0.5 < quiet.weight_seed_correlation <= 1.0
    assert len(quiet.fitness) == 3 and quiet.seeds == [1, 2, 3]
