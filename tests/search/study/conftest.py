"""Shared fixtures and helpers of the study tests: the working directory at the repository root, the code counted
as a clean commit, a small study config, and a stand-in for the engine's training."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from assemblenet.search.study import (
    Study,
    StudyConfig,
    study_config_from_dict,
)

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "search"
TINY = str(CONFIGS / "tiny.yaml")


CLEAN_CODE = {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": False, "diff_sha256": None,
              "root": "/src", "recorded_at": 0.0}


# Every study test (this folder): the working directory at the repository root, the code a clean commit.
@pytest.fixture(autouse=True)
def at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped study configs name other configs relative to the working directory: the repository root."""
    monkeypatch.chdir(CONFIGS.parents[1])


@pytest.fixture(autouse=True, scope="module")
def clean_code() -> Iterator[None]:
    """The code counts as a clean commit, whatever the state of the checkout running the tests (a developer's
    uncommitted changes would otherwise make every study refuse to start); the tests of the refusal itself use a
    git repository of their own. Module-scoped: the module-scoped study fixtures run studies too."""
    from assemblenet import provenance

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(provenance, "code_provenance", lambda root=None: dict(CLEAN_CODE))
        yield


def study_dict(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "t", "search": TINY, "strategies": ["evolution", "random"], "seeds": [0, 1],
                            "max_evaluations": 6, "bootstrap_samples": 500}
    data.update(changes)
    return data


def make_study(tmp_path: Path, **changes: Any) -> Study:
    config = study_config_from_dict(study_dict(**changes), source="study.yaml")
    return Study(config, output=tmp_path / "out", progress=False)


def dataclass_replace(config: StudyConfig, **changes: Any) -> StudyConfig:
    import dataclasses

    return dataclasses.replace(config, **changes)


# ---------------------------------------------------------------------- retrain
class FakeTraining:
    """Stands in for the engine's run_training: the "test score" is a fixed function of the graph."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    @staticmethod
    def score(graph: Any) -> float:
        return len(graph.edges()) / 100 + sum(len(n.inputs) for n in graph.nodes if hasattr(n, "inputs")) / 1000

    def __call__(self, config: Any, **kwargs: Any) -> Any:
        self.calls.append({"config": config, **kwargs})
        Path(kwargs["output_dir"]).mkdir(parents=True, exist_ok=True)

        class Result:
            metrics = {"metric": self.score(kwargs["graph"]) + kwargs["seed"] * 0.001, "top1": 0.5}

        return Result()


H1 = {"name": "H1", "statement": "guided beats random", "endpoint": "final_best",
      "comparison": {"a": {"strategy": "evolution"}, "b": {"strategy": "random"}}, "alternative": "greater"}


def with_hypotheses(*hypotheses: dict[str, Any], correction: str = "holm") -> dict[str, Any]:
    return {"correction": correction, "confirmatory": list(hypotheses)}
