"""``assemblenet search`` and ``assemblenet search-report`` end to end (toy fitness, in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from assemblenet.cli.main import main
from assemblenet.graph import load_graph
from assemblenet.search.store import RunStore

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "search" / "tiny.yaml"


def _search(*args: str) -> int:
    return main(["search", str(CONFIG), "--no-progress", *args])


def test_search_writes_run_report_and_best_graph(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _search("--output", str(out), "--max-evaluations", "8") == 0
    run = out / "evolution-seed0"
    assert sorted(RunStore(run).read_records()) == list(range(8))
    assert (out / "report.md").is_file() and (out / "plots" / "best_fitness.png").is_file()
    for folder in (run, out):
        assert load_graph(folder / "best.yaml").has_edge_weights
        assert load_graph(folder / "best_official.json").has_edge_weights
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["index"] for line in lines] == list(range(8))


def test_strategy_seed_and_budget_overrides_pick_the_run_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _search("--output", str(out), "--strategy", "random", "--seed", "2", "--max-evaluations", "6",
                   "--no-report") == 0
    manifest = json.loads((out / "random-seed2" / "search.json").read_text())
    assert (manifest["strategy"], manifest["seed"]) == ("random", 2)
    assert len(RunStore(out / "random-seed2").read_records()) == 6
    assert not (out / "report.md").exists()


def test_rerunning_a_finished_search_adds_nothing_and_a_bigger_budget_continues(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _search("--output", str(out), "--max-evaluations", "6", "--no-report") == 0
    first = {i: r.finished_at for i, r in RunStore(out / "evolution-seed0").read_records().items()}
    assert _search("--output", str(out), "--max-evaluations", "6", "--no-report") == 0
    assert _search("--output", str(out), "--max-evaluations", "10", "--no-report") == 0
    records = RunStore(out / "evolution-seed0").read_records()
    assert sorted(records) == list(range(10))
    assert {i: records[i].finished_at for i in first} == first


def test_bad_config_key_is_one_line_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = yaml.safe_load(CONFIG.read_text())
    data["search"]["tournament_sise"] = 3
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    assert main(["search", str(bad), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "search.tournament_sise" in err and "bad.yaml" in err


def test_set_and_print_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", str(CONFIG), "--set", "search.batch_size=3", "--seed", "4", "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["search"]["batch_size"] == 3 and printed["seed"] == 4 and printed["fitness"]["kind"] == "toy"
    assert main(["search", str(CONFIG), "--set", "search.batch_size=0", "--print-config"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"assemblenet: error: {CONFIG}: key 'search.batch_size': must be at least 1, got 0"


def test_resuming_with_another_config_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert _search("--output", str(out), "--max-evaluations", "4", "--no-report") == 0
    data = yaml.safe_load(CONFIG.read_text())
    data["mutation"]["prune_threshold"] = 0.3
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(data))
    assert main(["search", str(other), "--output", str(out), "--no-progress"]) == 2
    assert "mutation.prune_threshold" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ray-address", "localhost:6379", "--executor", "local"], "--ray-address needs --executor ray"),
        (["--strategy", "hillclimb"], "invalid choice"),
        (["--workers", "0"], "executor.workers"),
    ],
)
def test_bad_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                              message: str) -> None:
    assert _search("--output", str(tmp_path / "out"), *args) == 2
    assert message in capsys.readouterr().err


def test_missing_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml" in capsys.readouterr().err


def test_search_report_overlays_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for seed in ("0", "1"):
        assert _search("--output", str(tmp_path / f"s{seed}"), "--seed", seed, "--max-evaluations", "6",
                       "--no-report") == 0
    assert main(["search-report", str(tmp_path / "s0"), str(tmp_path / "s1")]) == 2
    assert "--output" in capsys.readouterr().err
    assert main(["search-report", str(tmp_path / "s0"), str(tmp_path / "s1"), "--output", str(tmp_path / "r")]) == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["evolution"]["runs"] == 2 and summary["evolution"]["seeds"] == [0, 1]
    assert (tmp_path / "r" / "report.md").read_text().count("### evolution-seed") == 2
