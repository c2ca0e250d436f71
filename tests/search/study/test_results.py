"""The analysis as the renderer reads it (search/study/results.py): ``study.json`` read into the typed records gives
the same JSON back, byte for byte, and the same ``study.md``, for a study with every section the records type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from assemblenet.search.study import StudyAnalysis, run_study, study_config_from_dict, study_markdown
from assemblenet.search.study.results import (
    RetrainSection,
    StrategyComparison,
    StrategySummary,
    TrainingNoiseSplit,
)

from .conftest import TINY, FakeTraining, study_dict


def test_study_json_round_trips_through_the_typed_analysis_byte_for_byte(tmp_path: Path) -> None:
    search = yaml.safe_load(Path(TINY).read_text())
    search["search"]["finalists"] = {"top_k": 2, "seeds": 2}
    (tmp_path / "search.yaml").write_text(yaml.safe_dump(search))
    config = study_config_from_dict(study_dict(
        search=str(tmp_path / "search.yaml"), strategies=["evolution", "random"], seeds=[0, 1, 2], max_evaluations=6,
        recipes={"enabled": True, "graphs": ["late_fusion"], "seeds": 2,
                 "candidates": [{"name": "short", "steps": 4}, {"name": "gentle", "steps": 4, "lr": 0.05}]},
        retrain={"enabled": True, "steps": 3, "seeds": 2, "recipe": "auto"},
        baselines={"enabled": True, "names": ["rgb_only"], "seeds": 2}), source="study.yaml")
    out = tmp_path / "out"
    run_study(config, output=out, progress=False, run_training=FakeTraining())
    text = (out / "study.json").read_text()
    analysis = StudyAnalysis.from_dict(json.loads(text))
    # every section is there, as records (not dicts)
    assert isinstance(analysis.strategies["evolution"], StrategySummary)
    assert analysis.strategies["evolution"].connection_share is not None  # a mutating strategy has one ...
    assert analysis.strategies["random"].connection_share is None  # ... random search has none (no key)
    assert all(isinstance(c, StrategyComparison) for c in analysis.comparisons) and analysis.comparisons
    assert isinstance(analysis.retrain, RetrainSection) and analysis.retrain.choice_comparison
    assert isinstance(analysis.retrain.training_noise, TrainingNoiseSplit)  # several graphs: the variance split
    assert analysis.recipes is not None and analysis.recipes.chosen in ("short", "gentle")
    assert analysis.baselines is not None and analysis.baselines.baselines["rgb_only"].n == 2
    assert json.dumps(analysis.to_dict(), indent=1, allow_nan=False) + "\n" == text
    assert study_markdown(analysis) == (out / "study.md").read_text()


def test_a_key_the_records_do_not_know_is_refused() -> None:
    with pytest.raises(ValueError, match=r"StrategyComparison: unexpected keys \['mannwhitney_p'\]"):
        StrategyComparison.from_dict({"a": "evolution", "b": "random", "endpoint": "final_best", "paired": True,
                                      "alternative": "greater", "have": {}, "need": {}, "mannwhitney_p": 0.5})
