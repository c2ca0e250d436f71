from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import pytest

from assemblenet import engine
from assemblenet.engine.results import TrainingOutcome
from assemblenet.errors import ConfigError
from assemblenet.graph import official_graph
from assemblenet.search.fitness import (
    FitnessFunction,
    FitnessResult,
    FitnessUnavailableError,
    ProxyTrainingFitness,
    build_fitness,
    learned_weights_from_graph,
)
from assemblenet.search.space import asn50_space
from assemblenet.search.store import EvaluationRecord, RunStore
from assemblenet.search.toy import ToyFitness

from .conftest import tiny_config


def test_toy_fitness_is_deterministic_picklable_and_seed_dependent() -> None:
    graph = asn50_space().sample(random.Random(0))
    fitness = pickle.loads(pickle.dumps(ToyFitness()))
    assert isinstance(fitness, FitnessFunction)
    a, b, c = fitness(graph, seed=1), fitness(graph, seed=1), fitness(graph, seed=2)
    assert a.fitness == b.fitness and a.learned_weights == b.learned_weights
    assert a.learned_weights != c.learned_weights
    assert 0.0 < a.fitness < 1.0
    assert set(a.learned_weights) == {(e.source, e.target) for e in graph.edges()}
    for (source, target), weight in a.learned_weights.items():
        if len(graph.predecessors(target)) == 1:
            assert weight == 1.0
        else:
            assert 0.0 < weight < 1.0


def test_fitness_result_round_trips_through_json() -> None:
    result = FitnessResult(0.5, {(0, 4): 0.25, (1, 4): 0.75}, {"top1": 0.5, "loss": float("nan")}, 1.5)
    back = FitnessResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert back.fitness == 0.5 and back.learned_weights == result.learned_weights and back.wall_time == 1.5
    assert back.metrics["top1"] == 0.5


def test_learned_weights_from_graph_follow_the_model_convention() -> None:
    graph = official_graph("asn50")
    weights = learned_weights_from_graph(graph)
    assert weights[(1, 4)] == 1.0  # node 4 has one input
    assert weights[(0, 6)] == pytest.approx(0.13810564577579498)
    assert len(weights) == len(graph.edges())


def test_proxy_training_stops_the_search_when_the_result_has_no_learned_weights(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "run_training", lambda config, **kwargs: TrainingOutcome(metrics={"top1": 0.5}))
    fitness = ProxyTrainingFitness(train_config=None, steps=10, metric="top1", width_multiplier=0.125)
    pickle.dumps(fitness)
    with pytest.raises(FitnessUnavailableError, match="learned connection weights"):
        fitness(official_graph("asn50"), seed=0)


def test_proxy_training_calls_the_engine_and_reads_metric_and_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_run_training(config, **kwargs):
        calls.append((config, kwargs))
        learned = kwargs["graph"].with_edge_weights(
            [[0.5] * len(n.inputs) if hasattr(n, "inputs") and len(n.inputs) > 1 else None
             for n in kwargs["graph"].nodes]
        )
        return TrainingOutcome(metrics={"top1": 0.42, "loss": 1.0}, learned_graph=learned)

    monkeypatch.setattr(engine, "run_training", fake_run_training, raising=False)
    fitness = ProxyTrainingFitness(train_config="train.yaml", steps=7, metric="top1", width_multiplier=0.25,
                                   overrides={"data.num_frames": 8}, num_threads=2, keep_outputs=True)
    result = fitness(official_graph("asn50"), seed=3, workdir="/tmp/x")
    assert result.fitness == 0.42 and result.metrics["loss"] == 1.0
    assert result.learned_weights[(0, 6)] == 0.5 and result.learned_weights[(1, 4)] == 1.0
    config, kwargs = calls[0]
    assert config == "train.yaml"
    assert kwargs["graph"].has_edge_weights is False  # connection weights are learned, not frozen
    assert (kwargs["seed"], kwargs["max_steps"], kwargs["width_multiplier"]) == (3, 7, 0.25)
    assert kwargs["overrides"] == {"data.num_frames": 8} and kwargs["output_dir"] == "/tmp/x"
    assert kwargs["num_threads"] == 2 and kwargs["progress"] is False

    fitness = ProxyTrainingFitness(train_config=None, steps=7, metric="mAP", width_multiplier=0.25)
    with pytest.raises(ConfigError, match="fitness.metric.*'mAP'"):
        fitness(official_graph("asn50"), seed=3)
    assert calls[-1][1]["output_dir"] is None  # candidates write nothing unless keep_outputs


def test_build_fitness_resolves_the_training_config_against_the_working_directory(tmp_path: Path,
                                                                                monkeypatch) -> None:
    from assemblenet.search.config import search_config_from_dict

    (tmp_path / "train.yaml").write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    config = search_config_from_dict({"fitness": {"kind": "proxy-training", "config": "train.yaml", "steps": 5}})
    fitness = build_fitness(config)
    assert isinstance(fitness, ProxyTrainingFitness)
    assert fitness.train_config == str((tmp_path / "train.yaml").resolve()) and fitness.steps == 5
    missing = search_config_from_dict({"fitness": {"kind": "proxy-training", "config": "nope.yaml"}})
    with pytest.raises(ConfigError, match="fitness.config.*nope.yaml.*relative to the working directory"):
        build_fitness(missing)
    assert isinstance(build_fitness(tiny_config()), ToyFitness)


def _record(index: int = 3) -> EvaluationRecord:
    graph = asn50_space().sample(random.Random(index))
    result = ToyFitness()(graph, seed=index)
    return EvaluationRecord(index=index, graph=graph, graph_hash=graph.canonical_hash(), seed=11, parent=1,
                            mutation={"kind": "dilation", "node": 4}, fitness=result.fitness,
                            learned_weights=result.learned_weights, metrics=result.metrics, wall_time=0.5,
                            finished_at=123.0)


def test_record_round_trip_and_atomic_layout(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    store.open({"fingerprint": {"a": 1}, "config": {}})
    record = _record()
    store.write_record(record)
    assert store.record_path(3).name == "000003.json"
    assert not list((tmp_path / "run" / "evaluations").glob(".*"))  # no temporary left behind
    back = store.read_record(3)
    assert back == record
    data = json.loads(store.record_path(3).read_text())
    assert {"graph", "fitness", "learned_weights", "parent", "mutation", "wall_time", "seed"} <= set(data)


def test_failed_record_keeps_no_fitness(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.open({"fingerprint": {}, "config": {}})
    record = _record()
    failed = EvaluationRecord(**{**record.__dict__, "fitness": None, "learned_weights": {}, "error": "boom",
                                 "attempts": 2})
    store.write_record(failed)
    back = store.read_record(3)
    assert back.fitness is None and not back.ok and back.error == "boom" and back.attempts == 2


def test_records_written_before_attempts_existed_read_as_one_attempt(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.open({"fingerprint": {}, "config": {}})
    store.write_record(_record())
    data = json.loads(store.record_path(3).read_text())
    assert data.pop("attempts") == 1
    store.record_path(3).write_text(json.dumps(data))
    assert store.read_record(3) == _record()


def test_stale_temporaries_are_removed_and_bad_json_is_named(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.open({"fingerprint": {}, "config": {}})
    stale = tmp_path / "evaluations" / ".000004.json.k3j2h1g0.tmp.json"  # as fileio names them
    stale.write_text("{partial")
    assert store.read_records() == {}  # a temporary is never read as a record
    store.open({"fingerprint": {}, "config": {}})
    assert not stale.exists()
    store.record_path(5).write_text("{not json")
    with pytest.raises(ConfigError, match="000005.json: not valid JSON"):
        store.read_records()


def test_mutation_kind_counts_read_records_and_history_rows_alike() -> None:
    from assemblenet.search.store import mutation_kind_counts

    base = _record(0)
    kinds = [(None, {"kind": "initial"}), (0, {"kind": "connection-guided"}), (0, {"kind": "dilation"}),
             (1, {"kind": "connection-guided"}), (2, {"kind": "dilation", "fallback_from": "merge"})]
    records = [EvaluationRecord(**{**base.__dict__, "index": i, "parent": parent, "mutation": mutation})
               for i, (parent, mutation) in enumerate(kinds)]
    rows = [{"parent": parent, "mutation": mutation["kind"], "fallback_from": mutation.get("fallback_from")}
            for parent, mutation in kinds]
    for entries in (records, rows):
        assert mutation_kind_counts(entries) == {"connection-guided": 2, "dilation": 2}
        assert mutation_kind_counts(entries, children_only=False)["initial"] == 1
        assert mutation_kind_counts(entries, mark_fallbacks=True) == {"connection-guided": 2, "dilation": 1,
                                                                      "dilation<-merge": 1}
