"""The confirmatory part of a study: no p-value before every run a hypothesis needs has finished, and a wiring
hypothesis with a margin adding an equivalence test to the family."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from assemblenet.search.study import (
    Study,
    study_config_from_dict,
)
from assemblenet.search.toy import ToyFitness

from .conftest import (
    H1,
    FakeTraining,
    study_dict,
    with_hypotheses,
)


def _p_values(text: str) -> list[str]:
    import re

    return re.findall(r"\bp\b[^|\n]{0,12}\d\.\d", text)


def test_an_unfinished_run_keeps_every_confirmatory_p_value_unprinted(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Interim results are not shown: while one run H1 needs is unfinished, study.md, study.json and the console
    carry counts only for it; once it finishes, the p-values and Holm's correction appear."""
    h2 = {**H1, "name": "H2", "alternative": "two-sided", "test": "wilcoxon"}
    config = study_config_from_dict(study_dict(max_evaluations=6, hypotheses=with_hypotheses(H1, h2)),
                                    source="s.yaml")
    out = tmp_path / "out"
    Study(config, output=out, progress=False, fitness=ToyFitness()).run("search")
    # cut random-seed1 short: it has 3 of its 6 evaluations
    state_path = out / "random-seed1" / "state.json"
    state = json.loads(state_path.read_text())
    finished_state = dict(state)
    state["next_index"], state["history"] = 3, state["history"][:3]
    state_path.write_text(json.dumps(state))
    capsys.readouterr()
    analysis = Study(config, output=out, progress=False).analyse()
    confirmatory = analysis["confirmatory"]
    assert not confirmatory["complete"] and confirmatory["pending"] == ["H1", "H2"]
    for member in confirmatory["members"]:
        assert member["status"] == "pending"
        assert not {"p_value", "p_adjusted", "estimate", "ci95", "second_view"} & set(member)
        assert member["progress"] == [{"arm": "evolution", "have": 2, "need": 2, "unit": "runs"},
                                      {"arm": "random", "have": 1, "need": 2, "unit": "runs"}]
    stored = json.loads((out / "study.json").read_text())
    assert "p_value" not in json.dumps(stored["confirmatory"])
    assert stored["comparisons"] == []  # the exploratory test of the same runs waits too
    text = (out / "study.md").read_text()
    confirmatory_text = text[text.index("## Confirmatory results"):text.index("## Exploratory")]
    assert "| H1 | evolution 2/2 runs | random 1/2 runs |" in confirmatory_text
    assert _p_values(confirmatory_text) == []
    assert "waiting for runs to finish (evolution 2/2 runs, random 1/2 runs)" in text
    printed = capsys.readouterr()
    assert _p_values(printed.out + printed.err) == []

    state_path.write_text(json.dumps(finished_state))  # the run finishes
    analysis = Study(config, output=out, progress=False).analyse()
    confirmatory = analysis["confirmatory"]
    assert confirmatory["complete"] and confirmatory["pending"] == []
    h1, h2 = confirmatory["members"]
    finals = {(r["strategy"], r["seed"]): r["final_best"] for r in analysis["runs"]}
    diffs = [finals[("evolution", s)] - finals[("random", s)] for s in (0, 1)]
    assert h1["estimate"] == pytest.approx(statistics.fmean(diffs)) and h1["n_pairs"] == 2
    from assemblenet.search import stats

    assert h1["p_value"] == pytest.approx(stats.paired_permutation_test(diffs).p_value)
    assert h2["p_value"] == pytest.approx(stats.wilcoxon_signed_rank(diffs, alternative="two-sided").p_value)
    assert [h1["p_adjusted"], h2["p_adjusted"]] == pytest.approx(stats.holm([h1["p_value"], h2["p_value"]]))
    assert h1["supported"] == (h1["p_adjusted"] <= 0.05)
    text = (out / "study.md").read_text()
    assert text.index("## Hypotheses (pre-registered)") < text.index("## Confirmatory results") < \
        text.index("## Exploratory")
    assert "| H1 | guided beats random | final_best | `evolution` vs `random` | paired by search seed |" in text
    assert "| H1 | 2 pairs |" in text


def _fake_baselines(study: Study, scores: dict[str, list[float]]) -> None:
    """Write baseline results as the baselines stage would (seeds: the config's baseline seeds)."""
    settings = study.retrain_settings()
    for name, values in scores.items():
        for k, value in zip(study.config.baseline_seeds, values):
            folder = study.output / "baselines" / name / settings.folder_name("", k)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "result.json").write_text(json.dumps({"score": value}))


def test_a_wiring_hypothesis_with_a_margin_adds_an_equivalence_test_to_the_family(tmp_path: Path) -> None:
    h3 = {"name": "H3", "endpoint": "test_score", "margin": 0.5, "test": "t",
          "comparison": {"a": {"strategy": "evolution"}, "b": {"wiring": "asn50"}}}
    config = study_config_from_dict(study_dict(
        max_evaluations=4, hypotheses=with_hypotheses(H1, h3),
        retrain={"enabled": True, "steps": 3, "seeds": 1}, baselines={"enabled": True, "names": ["asn50"],
                                                                       "seeds": 3}), source="s.yaml")
    study = Study(config, output=tmp_path / "out", progress=False, fitness=ToyFitness(), run_training=FakeTraining())
    study.run("search")
    study.retrain()
    analysis = study.analyse()
    members = {m["member"]: m for m in analysis["confirmatory"]["members"]}
    assert list(members) == ["H1", "H3", "H3 (equivalence)"]
    assert members["H1"]["status"] == "complete"
    assert members["H3"]["status"] == members["H3 (equivalence)"]["status"] == "pending"  # no baselines yet
    assert "p_adjusted" not in members["H1"]  # the correction waits for the whole family
    assert members["H3"]["progress"][1] == {"arm": "wiring asn50", "have": 0, "need": 3, "unit": "training seeds"}
    _fake_baselines(study, {"asn50": [0.40, 0.42, 0.41]})
    analysis = study.analyse()
    members = {m["member"]: m for m in analysis["confirmatory"]["members"]}
    from assemblenet.search import stats

    guided = [e["score"] for e in analysis["retrain"]["entries"] if e["strategy"] == "evolution"]
    assert members["H3"]["values_a"] == pytest.approx(guided) and members["H3"]["values_b"] == [0.40, 0.42, 0.41]
    assert not members["H3"]["paired"]
    assert members["H3"]["p_value"] == pytest.approx(
        stats.t_test(guided, [0.40, 0.42, 0.41], paired=False).p_value)
    tost = stats.equivalence_test(guided, [0.40, 0.42, 0.41], margin=0.5, paired=False, test="t")
    assert members["H3 (equivalence)"]["p_value"] == pytest.approx(tost.p_value)
    raw = [members[m]["p_value"] for m in ("H1", "H3", "H3 (equivalence)")]
    assert [members[m]["p_adjusted"] for m in ("H1", "H3", "H3 (equivalence)")] == pytest.approx(stats.holm(raw))
    text = (study.output / "study.md").read_text()
    assert "| H3 (equivalence) | 2 vs 3 |" in text and "fixed wiring `asn50`" in text
