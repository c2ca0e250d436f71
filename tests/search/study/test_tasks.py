"""Studies across tasks (``tasks:``): data roots moved per task, task data generated and checked, the cross-task
analysis paired within task with its gate, the stratified tests, Holm, and the power statement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from assemblenet.errors import ConfigError
from assemblenet.search import stats
from assemblenet.search.study import Study, load_study_config, run_study, study_config_from_dict
from assemblenet.search.study.power import (
    detectable_difference,
    paired_power,
    power_statement,
    stratified_power_statement,
)
from assemblenet.search.study.tasks import (
    MultiTaskStudy,
    TasksConfig,
    TaskSpec,
    ensure_task_data,
    figure_columns,
    make_synthetic_command,
    stratified_permutation_test,
)

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "search"
TINY = CONFIGS / "tiny.yaml"



# ---------------------------------------------------------------------- the shipped config
def test_confirmatory_config_points_every_task_at_its_own_data() -> None:
    config = load_study_config(CONFIGS / "study_confirmatory.yaml")
    assert [t.data_seed for t in config.tasks.items] == [1, 2, 3] and len(config.seeds) == 8
    assert set(config.strategies) == {"evolution", "evolution-unguided", "random"} and config.max_evaluations == 40
    assert config.baselines.seeds == 4 and set(config.baselines.names) == {"asn50", "late_fusion"}
    assert [h.name for h in config.hypotheses.confirmatory] == ["H1", "H2", "H3-asn50", "H3-late-fusion"]
    study = MultiTaskStudy(config, study_factory=Study, progress=False)
    study.check_data_root()
    for i, task in enumerate(config.tasks.items):
        root = f"data/compositional-{task.name}"
        proxy = study.task_base(i).fitness.proxy_training.overrides
        assert proxy["data.train"]["root"] == proxy["data.val"]["root"] == root
        retrain = study.task_config(i).retrain.overrides
        assert retrain["data.val"]["root"] == root and retrain["data.val"]["split"] == "test"
        assert retrain["data.train.root"] == root  # the engine config file names data/compositional for training
        assert study.task_config(i).hypotheses.confirmatory == ()  # a task's own study is exploratory
        assert study.studies[i].output == Path("runs/study/confirmatory") / task.name
    assert make_synthetic_command(config.tasks, config.tasks.items[1]) == (
        "assemblenet make-synthetic data/compositional-task2 --task compositional --seed 2 --frames 8")


@pytest.mark.parametrize(("tasks", "key", "words"), [
    ({"replaces": "data/x", "items": [{"name": "a", "data_seed": 1}, {"name": "a", "data_seed": 2}]},
     "tasks.items", "distinct"),
    ({"replaces": "data/x", "items": [{"name": "a", "data_seed": 1}, {"name": "b", "data_seed": 1}]},
     "tasks.items", "data_seed"),
    ({"items": [{"name": "a", "data_seed": 1}]}, "tasks.replaces", "must name"),
    ({"replaces": "data/x", "items": [{"name": "a/b"}]}, "tasks.items[0].name", "plain folder name"),
    ({"replaces": "data/x", "make_synthetic": {"frames": 8}, "items": [{"name": "a"}]},
     "tasks.make_synthetic.frames", "unknown generator keyword"),
    ({"replaces": "data/x", "data": "maybe", "items": [{"name": "a"}]}, "tasks.data", "maybe"),
])
def test_bad_tasks_section_names_the_key(tasks: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        study_config_from_dict({"search": str(TINY), "tasks": tasks}, source="study.yaml")
    assert str(info.value).startswith(f"study.yaml: key '{key}'") and words in str(info.value)


def test_a_data_root_no_config_names_is_refused() -> None:
    config = study_config_from_dict({"search": str(TINY), "tasks": {"replaces": "data/compositional",
                                                                    "items": [{"name": "a"}]}}, source="s.yaml")
    with pytest.raises(ConfigError, match=r"key 'tasks.replaces': .* every task would use the same data"):
        MultiTaskStudy(config, study_factory=Study, progress=False).run("search")


# ---------------------------------------------------------------------- task data
def test_task_data_is_generated_once_checked_and_other_data_refused(tmp_path: Path) -> None:
    small = {"train_videos": 16, "val_videos": 16, "test_videos": 16, "size": 16, "num_frames": 8}
    tasks = TasksConfig(replaces=str(tmp_path / "data"), make_synthetic=small,
                        items=(TaskSpec("t1", 1), TaskSpec("t2", 2, root=str(tmp_path / "data-t1"))))
    assert "wrote" in ensure_task_data(tasks, 0, source="s.yaml")
    manifest = json.loads((tmp_path / "data-t1" / "synthetic.json").read_text())
    assert manifest["parameters"]["seed"] == 1 and manifest["parameters"]["num_frames"] == 8
    stamp = (tmp_path / "data-t1" / "synthetic.json").stat().st_mtime_ns
    assert "checked" in ensure_task_data(tasks, 0, source="s.yaml")
    assert (tmp_path / "data-t1" / "synthetic.json").stat().st_mtime_ns == stamp  # not written again
    with pytest.raises(ConfigError, match=r"^s.yaml: key 'tasks.items\[1\]': .*\(seed is 1, the config wants 2"):
        ensure_task_data(tasks, 1, source="s.yaml")  # task 2 pointed at task 1's folder
    missing = TasksConfig(replaces=str(tmp_path / "none"), data="check", items=(TaskSpec("t9", 9),))
    with pytest.raises(ConfigError, match=r"no task data at .* write it with: assemblenet make-synthetic"):
        ensure_task_data(missing, 0, source="s.yaml")


# ---------------------------------------------------------------------- a toy study across two tasks
class FakeTraining:
    """The engine's run_training stand-in: the test score is a fixed function of the graph and the seed."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, config: Any, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        Path(kwargs["output_dir"]).mkdir(parents=True, exist_ok=True)
        graph = kwargs["graph"]
        score = len(graph.edges()) / 100 + 0.003 * kwargs["seed"]

        class Result:
            metrics = {"metric": score}

        return Result()


def toy_config(tmp_path: Path) -> Any:
    search = yaml.safe_load(TINY.read_text())
    search["search"]["finalists"] = {"top_k": 2, "seeds": 2}
    (tmp_path / "search.yaml").write_text(yaml.safe_dump(search))
    (tmp_path / "engine.yaml").write_text("name: fake\n")
    hypotheses = [
        {"name": "H1", "statement": "guided beats random", "endpoint": "rescored_mean",
         "comparison": {"a": {"strategy": "evolution"}, "b": {"strategy": "random"}}},
        {"name": "H3", "statement": "guided beats late fusion", "endpoint": "test_score",
         "comparison": {"a": {"strategy": "evolution"}, "b": {"wiring": "late_fusion"}}, "margin": 0.02},
    ]
    return study_config_from_dict({
        "name": "across", "search": str(tmp_path / "search.yaml"), "strategies": ["evolution", "random"],
        "seeds": [0, 1], "max_evaluations": 12, "bootstrap_samples": 200,
        "tasks": {"replaces": "data/none", "data": "none", "items": [{"name": "a", "data_seed": 1},
                                                                    {"name": "b", "data_seed": 2}]},
        "retrain": {"enabled": True, "config": str(tmp_path / "engine.yaml"), "steps": 3, "seeds": 1,
                    "strategies": ["evolution"], "choices": ["rescored"]},
        "baselines": {"enabled": True, "names": ["late_fusion"], "seeds": 2},
        "hypotheses": {"confirmatory": hypotheses},
    }, source="across.yaml")


def test_study_across_tasks_pairs_within_task_and_prints_no_p_value_before_every_run_finished(
        tmp_path: Path) -> None:
    config = toy_config(tmp_path)
    out = tmp_path / "out"
    searched = run_study(config, stage="search", output=out, progress=False)
    conf = searched.analysis["confirmatory"]
    assert not conf["complete"] and conf["pending"] == ["H1", "H3", "H3 (equivalence)"]
    assert all("p_value" not in m and "estimate" not in m for m in conf["members"])  # the gate: the whole family
    assert [m["arms_ready"] for m in conf["members"]] == [True, False, False]  # H1 has its runs, H3 not yet
    text = (out / "study.md").read_text()
    assert "no estimate or p-value is shown yet" in text and "p (Holm)" not in text
    assert "| H3 | evolution 0/4 runs | wiring late_fusion 0/4 training seeds |" in text
    assert (out / "a" / "study.md").is_file() and (out / "b" / "evolution-seed1").is_dir()
    assert not (out / "study.png").exists()  # a figure of the differences would be an interim estimate

    fake = FakeTraining()
    outcome = run_study(config, stage="all", output=out, progress=False, run_training=fake)
    assert len(fake.calls) <= 2 * 2 + 2 * 2  # per task: 2 guided re-scored choices + 2 baseline seeds
    conf = outcome.analysis["confirmatory"]
    assert conf["complete"] and conf["pending"] == []
    by_name = {m["member"]: m for m in conf["members"]}
    # H1's differences are the per-(task, seed) differences of the runs' re-scored means
    from assemblenet.search.history import SearchRun

    expected = {}
    for task in ("a", "b"):
        for seed in (0, 1):
            means = [SearchRun.load(out / task / f"{s}-seed{seed}", budget=12, finalists_expected=True)
                     .rescored_summary["mean"] for s in ("evolution", "random")]
            expected[f"{task}/seed{seed}"] = means[0] - means[1]
    assert by_name["H1"]["differences"] == pytest.approx(expected)
    assert any(abs(d) > 1e-9 for d in expected.values())  # past the shared initial population the arms differ
    assert by_name["H1"]["estimate"] == pytest.approx(np.mean(list(expected.values())))
    assert by_name["H3"]["test_used"] == "permutation stratified by task"
    assert set(by_name["H3"]["per_task"]) == {"a", "b"}
    for row in by_name["H3"]["per_task"].values():  # the raw scores behind each task's means
        assert len(row["values_a"]) == 2 and len(row["values_b"]) == 2
        assert row["mean_b"] == pytest.approx(np.mean(row["values_b"]))
    assert (out / "study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    raw = [m["p_value"] for m in conf["members"]]
    assert [m["p_adjusted"] for m in conf["members"]] == pytest.approx(stats.holm(raw))
    text = (out / "study.md").read_text()
    assert "## Confirmatory results" in text and "p (Holm)" in text and "## Exploratory: per task" in text
    assert text.index("## Hypotheses") < text.index("## Confirmatory results") < text.index("## Exploratory")
    assert outcome.analysis["power"][0]["member"] == "H1" and outcome.analysis["power"][0]["n_pairs"] == 4
    h3_power = outcome.analysis["power"][1]  # against a wiring: the stratified two-sample figure
    assert (h3_power["member"], h3_power["kind"], h3_power["n_a"], h3_power["n_b"]) == ("H3", "stratified", 4, 4)
    # resumed: nothing trained or searched again
    again = FakeTraining()
    run_study(config, stage="all", output=out, progress=False, run_training=again)
    assert again.calls == []


# ---------------------------------------------------------------------- statistics
def test_stratified_permutation_test_sees_a_shift_that_task_differences_would_hide() -> None:
    rng = np.random.default_rng(0)
    strata = {}
    for task, offset in (("a", 0.0), ("b", 0.3), ("c", 0.6)):  # tasks far apart; a within-task shift of 0.03
        strata[task] = (list(offset + 0.03 + rng.normal(0, 0.01, 8)), list(offset + rng.normal(0, 0.01, 4)))
    assert stratified_permutation_test(strata, samples=2000) < 0.01
    null = {task: (list(offset + rng.normal(0, 0.01, 8)), list(offset + rng.normal(0, 0.01, 4)))
            for task, offset in (("a", 0.0), ("b", 0.3), ("c", 0.6))}
    p_values = [stratified_permutation_test(null, samples=500, seed=s) for s in range(3)]
    assert min(p_values) > 0.01
    # equivalence within 0.05 of identical arms: both one-sided tests reject; within 0.001 they do not
    assert max(stratified_permutation_test(null, alternative="greater", shift=-0.05, samples=1000),
               stratified_permutation_test(null, alternative="less", shift=0.05, samples=1000)) < 0.01
    assert stratified_permutation_test(null, alternative="greater", shift=-0.001, samples=1000) > 0.01 or \
        stratified_permutation_test(null, alternative="less", shift=0.001, samples=1000) > 0.01


def test_power_matches_the_issue_planning_figures_and_a_simulation() -> None:
    assert detectable_difference(0.028, 24) == pytest.approx(0.0146, abs=5e-4)
    assert paired_power(0.015, 0.028, 24) == pytest.approx(0.80, abs=0.03)
    rng = np.random.default_rng(0)
    from scipy.stats import t as student_t

    x = rng.normal(0.015, 0.028, size=(4000, 24))
    t = x.mean(axis=1) / (x.std(axis=1, ddof=1) / np.sqrt(24))
    assert np.mean(t > student_t.ppf(0.95, 23)) == pytest.approx(paired_power(0.015, 0.028, 24), abs=0.03)
    statement = power_statement(list(rng.normal(0, 0.028, 24)), planned_difference=0.015, family_size=4)
    assert statement["detectable_holm_strictest"] > statement["detectable"] > 0


def test_stratified_power_matches_a_simulation_of_its_t_statistic() -> None:
    # three tasks of different difficulty, 8 runs against 4 training seeds each, the wiring's seeds noisier
    rng = np.random.default_rng(1)
    offsets, sd_a, sd_b, delta = (0.0, 0.1, -0.2), 0.07, 0.12, 0.08

    def draw() -> dict[int, tuple[list[float], list[float]]]:
        return {t: (list(rng.normal(o + delta, sd_a, 8)), list(rng.normal(o, sd_b, 4))) for t, o in enumerate(offsets)}

    def exactly_at(sd: float, n: int, centre: float) -> list[float]:  # n values whose sample SD is exactly sd
        return list(centre + np.resize([sd, -sd], n) * np.sqrt((n - 1) / n))

    at_truth = stratified_power_statement({t: (exactly_at(sd_a, 8, o + delta), exactly_at(sd_b, 4, o))
                                           for t, o in enumerate(offsets)}, planned_difference=delta, family_size=6)
    assert at_truth["sd_a"] == pytest.approx(sd_a) and at_truth["sd_b"] == pytest.approx(sd_b)
    assert at_truth["se"] == pytest.approx(np.sqrt((sd_a ** 2 / 8 + sd_b ** 2 / 4) / 3))  # task offsets cancel
    # Welch-Satterthwaite with each pooled SD's own degrees of freedom (3 x 7 and 3 x 3), by hand
    part_a, part_b = sd_a ** 2 * (3 / 8) / 9, sd_b ** 2 * (3 / 4) / 9
    hand_df = (part_a + part_b) ** 2 / (part_a ** 2 / 21 + part_b ** 2 / 9)
    assert at_truth["df"] == pytest.approx(hand_df) and 9 < hand_df < 21
    # unbalanced: the pooled SDs' degrees of freedom, not one Welch term per (arm, task)
    sizes = ((8, 4), (6, 3), (10, 5))
    unbalanced = stratified_power_statement({t: (exactly_at(sd_a, na, 0.0), exactly_at(sd_b, nb, 0.0))
                                             for t, (na, nb) in enumerate(sizes)}, planned_difference=delta)
    part_a = unbalanced["sd_a"] ** 2 * sum(1 / na for na, _ in sizes) / 9
    part_b = unbalanced["sd_b"] ** 2 * sum(1 / nb for _, nb in sizes) / 9
    assert unbalanced["df"] == pytest.approx((part_a + part_b) ** 2 / (part_a ** 2 / 21 + part_b ** 2 / 9))
    assert at_truth["detectable_holm_strictest"] > at_truth["detectable"] > 0
    # the formula's power is the rejection rate of the Welch-type t statistic it models
    from scipy.stats import t as student_t

    rejected = []
    for _ in range(3000):
        sample = draw()
        effect = np.mean([np.mean(a) - np.mean(b) for a, b in sample.values()])
        var_a = np.mean([np.var(a, ddof=1) for a, _ in sample.values()])
        var_b = np.mean([np.var(b, ddof=1) for _, b in sample.values()])
        se = np.sqrt((var_a / 8 + var_b / 4) / 3)
        rejected.append(effect / se > student_t.ppf(0.95, hand_df))
    assert np.mean(rejected) == pytest.approx(at_truth["power_at_planned"], abs=0.04)
    no_noise = stratified_power_statement({t: ([o] * 8, [o] * 4) for t, o in enumerate(offsets)},
                                          planned_difference=delta)
    assert no_noise["detectable"] is None  # no spread: no power figure, not a division by zero
    one_task = stratified_power_statement({0: ([0.5, 0.6] * 8, [0.2, 0.9])}, planned_difference=0.02, family_size=6)
    assert one_task["detectable_holm_strictest"] > one_task["detectable"] > 0.5  # 1 df: found, however large
    two_sided = stratified_power_statement(pooled_at_truth := {t: (exactly_at(sd_a, 8, o), exactly_at(sd_b, 4, o))
                                                               for t, o in enumerate(offsets)},
                                           planned_difference=delta, alternative="two-sided")
    assert two_sided["detectable"] > stratified_power_statement(pooled_at_truth, planned_difference=delta)["detectable"]


def test_the_figure_has_a_column_for_every_hypothesis_equivalence_only_ones_included() -> None:
    def member(hypothesis: str, alternative: str) -> dict[str, Any]:
        return {"hypothesis": hypothesis, "member": hypothesis + ("" if alternative != "equivalent" else " (eq)"),
                "alternative": alternative}

    members = [member("H1", "greater"), member("H3", "greater"), member("H3", "equivalent"),
               member("H4", "equivalent")]
    columns = figure_columns(members)
    assert [(m["member"], twin and twin["member"]) for m, twin in columns] == [
        ("H1", None), ("H3", "H3 (eq)"), ("H4 (eq)", None)]

