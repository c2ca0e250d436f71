"""The baselines stage: the fixed wirings trained exactly as the retrained graphs, and tabulated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assemblenet.search.study import (
    Study,
    run_study,
    study_config_from_dict,
)

from .conftest import (
    FakeTraining,
    study_dict,
)


def test_baselines_are_trained_like_the_retrained_graphs_and_tabulated(tmp_path: Path) -> None:
    from assemblenet.search.baselines import baseline_graph

    retrain = {"enabled": False, "steps": 5, "overrides": {"data.val.split": "test"}}
    baselines = {"enabled": True, "names": ["rgb_only", "late_fusion"], "seeds": 2}
    config = study_config_from_dict(study_dict(strategies=["random"], seeds=[0], max_evaluations=2,
                                               retrain=retrain, baselines=baselines),
                                    source="study.yaml")
    fake = FakeTraining()
    run_study(config, output=tmp_path / "out", progress=False, run_training=fake)
    assert len(fake.calls) == 4 and {c["max_steps"] for c in fake.calls} == {5}
    assert all(c["overrides"] == {"data.val.split": "test"} for c in fake.calls)
    data = json.loads((tmp_path / "out" / "study.json").read_text())["baselines"]["baselines"]
    space = Study(config, output=tmp_path / "out", progress=False).base.space
    for name in ("rgb_only", "late_fusion"):
        expected = FakeTraining.score(baseline_graph(name, space))
        assert data[name]["scores"] == pytest.approx([expected, expected + 0.001])
    text = (tmp_path / "out" / "study.md").read_text()
    assert "### Fixed wirings" in text and "training seeds 0, 1" in text
    # intervals are shown, and never read as a test by whether they overlap
    assert "no measurable difference" not in text and "intervals overlap" not in text
    assert "highest `" not in text
    fake.calls.clear()
    run_study(config, output=tmp_path / "out", progress=False, run_training=fake)  # resumed: nothing retrained
    assert fake.calls == []


def test_baseline_wirings_keep_the_space_budget() -> None:
    from assemblenet.search.baselines import BASELINES, baseline_graph
    from assemblenet.search.config import SpaceConfig
    from assemblenet.search.space import SearchSpace

    space = SpaceConfig()
    for name in BASELINES:
        graph = baseline_graph(name, space)
        assert graph.channel_budget() == dict(enumerate(space.level_filters))
    assert SearchSpace(space).contains(baseline_graph("late_fusion", space))
    assert SearchSpace(space).contains(baseline_graph("asn50", space))
    rgb = baseline_graph("rgb_only", space)
    assert {n.stem_type.label for n in rgb.nodes if hasattr(n, "stem_type")} == {"rgb"}
    late = baseline_graph("late_fusion", space)
    # Late fusion: the RGB and flow streams meet only at the level-3 node.
    for node in late.nodes[:-1]:
        if hasattr(node, "inputs"):
            kinds = set()
            stack = list(node.inputs)
            while stack:
                k = stack.pop()
                n = late.nodes[k]
                if hasattr(n, "stem_type"):
                    kinds.add(n.stem_type.label)
                else:
                    stack.extend(n.inputs)
            assert len(kinds) == 1
