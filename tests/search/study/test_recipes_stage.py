"""The recipes stage: each candidate trains the fixed graphs with the same seeds, and ``auto`` picks the
steadiest recipe that is not measurably lower."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from assemblenet.errors import ConfigError
from assemblenet.search.study import (
    Study,
    run_study,
    study_config_from_dict,
)

from .conftest import (
    FakeTraining,
    study_dict,
)


def test_recipes_stage_trains_each_candidate_and_auto_picks_the_steadiest(tmp_path: Path) -> None:
    """Each candidate trains every fixed graph with the same seeds and its own steps and lr; ``auto`` picks the
    smallest pooled spread among the recipes whose mean is not measurably lower, and the baselines then train
    with it (in folders of their own, so a recipe never reuses another's result)."""

    class RecipeTraining(FakeTraining):
        # lr 0.05 makes seeds agree (spread 0.001) at the same level; 1200 steps at lr 0.1 spreads them by 0.05
        def __call__(self, config: str | None, **kwargs: Any) -> dict[str, Any]:
            self.calls.append({"config": config, **kwargs})
            lr = kwargs["overrides"].get("optim.lr", 0.1)
            spread = 0.001 if lr == 0.05 else (0.05 if kwargs["max_steps"] == 1200 else 0.02)
            return {"metrics": {"metric": 0.5 + spread * (kwargs["seed"] - 1)}}

    recipes = {"enabled": True, "graphs": ["asn50", "late_fusion"], "seeds": 3,
               "candidates": [{"name": "short", "steps": 6}, {"name": "long", "steps": 1200},
                              {"name": "gentle", "steps": 6, "lr": 0.05}]}
    config = study_config_from_dict(study_dict(
        strategies=["random"], seeds=[0], max_evaluations=2, recipes=recipes,
        retrain={"enabled": False, "steps": 5, "recipe": "auto", "overrides": {"data.val.split": "test"}},
        baselines={"enabled": True, "names": ["rgb_only"], "seeds": 2}), source="study.yaml")
    study = Study(config, output=tmp_path / "out", progress=False, run_training=RecipeTraining())
    with pytest.raises(ConfigError, match="run the recipes stage first"):
        study.retrain_settings()
    fake = RecipeTraining()
    run_study(config, output=tmp_path / "out", progress=False, run_training=fake)
    recipe_calls = fake.calls[:18]
    assert len(fake.calls) == 18 + 2  # 3 recipes x 2 graphs x 3 seeds, then 2 baseline seeds
    assert {(c["max_steps"], c["overrides"].get("optim.lr")) for c in recipe_calls} == \
        {(6, None), (6, 0.05), (1200, None)}
    assert all(c["overrides"]["data.val.split"] == "test" for c in fake.calls)
    data = json.loads((tmp_path / "out" / "study.json").read_text())
    rows = data["recipes"]["candidates"]
    assert rows["gentle"]["pooled_std"] == pytest.approx(0.001)
    assert rows["long"]["pooled_std"] == pytest.approx(0.05)
    assert data["recipes"]["chosen"] == "gentle"
    assert [c["overrides"].get("optim.lr") for c in fake.calls[18:]] == [0.05, 0.05]  # baselines use it
    assert data["baselines"]["recipe"] == "gentle"
    # the baselines train with seeds 3 and 4: the recipe was chosen on seeds 0-2, which are never reported
    assert [c["seed"] for c in fake.calls[18:]] == [3, 4]
    assert (tmp_path / "out" / "baselines" / "rgb_only" / "gentle-seed3" / "result.json").is_file()
    assert not (tmp_path / "out" / "baselines" / "rgb_only" / "gentle-seed0").exists()
    assert data["baselines"]["training_seeds"] == [3, 4]
    assert "Chosen for retraining (`retrain.recipe: auto`): **gentle**" in (tmp_path / "out" / "study.md").read_text()
    fake.calls.clear()
    run_study(config, output=tmp_path / "out", progress=False, run_training=fake)  # resumed: nothing again
    assert fake.calls == []


def test_choose_recipe_never_trades_a_measurably_lower_score_for_agreement() -> None:
    from assemblenet.search.study import choose_recipe

    def row(scores: list[float], std: float, steps: int = 600) -> dict[str, Any]:
        # two fixed graphs, the same 4 training seeds each (so recipes pair by graph and seed)
        graphs = {"asn50": {"scores": scores}, "late_fusion": {"scores": [v + 0.01 for v in scores]}}
        return {"complete": True, "mean": statistics.fmean(scores) + 0.005, "graphs": graphs, "pooled_std": std,
                "steps": steps}

    # "flat" agrees best but scores below the top recipe at every one of the 8 (graph, seed) pairs: the sign-flip
    # test says measurably lower (p = 1/256), so it is not eligible.
    # "long" is the top mean, "base" not measurably below it (its differences go both ways).
    rows = {"base": row([0.30, 0.25, 0.35, 0.31], 0.05), "flat": row([0.10, 0.11, 0.09, 0.10], 0.001),
            "long": row([0.32, 0.24, 0.36, 0.30], 0.03, 1200)}
    assert choose_recipe(rows) == "long"
    rows["long"] = row([0.32, 0.24, 0.36, 0.30], 0.05, 1200)  # equal spread: the cheaper one
    assert choose_recipe(rows) == "base"
    # 0.01 below "long" at every (graph, seed) pair: measurably lower (p = 1/256), although the two recipes'
    # intervals would overlap widely (a paired test sees what overlapping intervals hide)
    rows["base"] = row([0.31, 0.23, 0.35, 0.29], 0.04)
    assert choose_recipe(rows) == "long"
    rows["base"] = {**rows["base"], "complete": False}
    assert choose_recipe(rows) is None
