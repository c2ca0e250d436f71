"""The search decodes its proxy videos once, into a frame store in its run folder, and fitness does not change."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from assemblenet.errors import ConfigError
from assemblenet.search.evolution import FRAME_STORE_DIR, SearchRunner
from assemblenet.search.store import RunStore

from .conftest import TINY, proxy_overrides, run_sequence, tiny_config


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from assemblenet.data import make_synthetic  # test setup only

    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic(root, num_videos=12, num_classes=3, size=32, num_frames=8, progress=False)
    return root


def _fitness(root: Path, **options: object) -> dict[str, object]:
    overrides = proxy_overrides(root)
    for split in ("data.train", "data.val"):
        overrides[split] = {**overrides[split], "cache_frames": True}  # type: ignore[dict-item]
    return {"kind": "proxy-training", "steps": 2, "overrides": overrides, **options}


def _config(root: Path, evaluations: int, **options: object):
    return tiny_config(**{"fitness": _fitness(root, **options), "search.max_evaluations": evaluations,
                          "search.population_size": 2, "search.tournament_size": 1})


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Video files opened for decoding in this process; each test starts with no cached proxy datasets (as a new
    worker process does)."""
    from assemblenet.data.datasets import base
    from assemblenet.search import fitness as fitness_module

    opened: list[str] = []
    real = base.open_video
    monkeypatch.setattr(base, "open_video", lambda path, **kw: opened.append(str(path)) or real(path, **kw))
    monkeypatch.setattr(fitness_module, "_DATASET_CACHE", {})
    return opened


def test_search_decodes_each_video_once_and_a_new_worker_decodes_none(tmp_path: Path, synthetic_root: Path,
                                                                      decodes: list[str],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from assemblenet.search import fitness as fitness_module

    run_dir = tmp_path / "run"
    SearchRunner(_config(synthetic_root, 2), run_dir=run_dir).run()
    videos = len(set(decodes))
    assert videos == len(decodes) > 0  # every video decoded exactly once: into the store
    assert (run_dir / FRAME_STORE_DIR / "train" / "index.json").is_file()
    assert (run_dir / FRAME_STORE_DIR / "val" / "index.json").is_file()

    # A resumed search (or any new worker process: no cached datasets) reads the store and decodes nothing.
    decodes.clear()
    monkeypatch.setattr(fitness_module, "_DATASET_CACHE", {})
    SearchRunner(_config(synthetic_root, 4), run_dir=run_dir).run()
    assert decodes == []
    assert sorted(RunStore(run_dir).read_records()) == [0, 1, 2, 3]


def test_fitness_with_the_store_is_bit_identical_to_decoding(tmp_path: Path, synthetic_root: Path,
                                                             decodes: list[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from assemblenet.search import fitness as fitness_module

    SearchRunner(_config(synthetic_root, 3), run_dir=tmp_path / "stored").run()
    monkeypatch.setattr(fitness_module, "_DATASET_CACHE", {})
    SearchRunner(_config(synthetic_root, 3, frame_cache_mb=0), run_dir=tmp_path / "decoded").run()
    assert not (tmp_path / "decoded" / FRAME_STORE_DIR).exists()
    stored, decoded = RunStore(tmp_path / "stored").read_records(), RunStore(tmp_path / "decoded").read_records()
    assert run_sequence(tmp_path / "stored") == run_sequence(tmp_path / "decoded")  # exact, not approximate
    for index in stored:
        assert stored[index].learned_weights == decoded[index].learned_weights
        assert stored[index].metrics == decoded[index].metrics


def test_a_proxy_set_over_the_limit_is_decoded_per_worker_with_the_same_fitness(
        tmp_path: Path, synthetic_root: Path, decodes: list[str], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from assemblenet.search import fitness as fitness_module

    with caplog.at_level("WARNING"):
        SearchRunner(_config(synthetic_root, 2, frame_cache_mb=0.01), run_dir=tmp_path / "small").run()
    assert "not written" in caplog.text and "frame_cache_mb=0.01" in caplog.text
    assert not (tmp_path / "small" / FRAME_STORE_DIR / "train").exists()
    monkeypatch.setattr(fitness_module, "_DATASET_CACHE", {})
    SearchRunner(_config(synthetic_root, 2, frame_cache_mb=0), run_dir=tmp_path / "off").run()
    assert run_sequence(tmp_path / "small") == run_sequence(tmp_path / "off")


def test_frame_cache_mb_is_validated_and_not_part_of_the_fingerprint(synthetic_root: Path) -> None:
    with pytest.raises(ConfigError, match="fitness.frame_cache_mb"):
        _config(synthetic_root, 2, frame_cache_mb=-1)
    assert _config(synthetic_root, 2, frame_cache_mb=5).fingerprint() == _config(synthetic_root, 2).fingerprint()


@pytest.mark.slow
def test_killed_search_resumes_with_its_store_intact(tmp_path: Path, synthetic_root: Path) -> None:
    """SIGKILL a two-worker search (and its workers) after its first evaluation; the rerun reuses the store
    (decodes nothing into it) and ends with the evaluations an uninterrupted search gives."""
    import copy

    budget = 4
    data = copy.deepcopy(TINY)
    data["fitness"] = _fitness(synthetic_root)
    data["search"].update(max_evaluations=budget, population_size=2, tournament_size=1, batch_size=2)
    data["executor"] = {"kind": "local", "workers": 2}
    config_path = tmp_path / "search.yaml"
    config_path.write_text(yaml.safe_dump(data))
    output = tmp_path / "out"
    command = [sys.executable, "-m", "assemblenet.cli.main", "search", str(config_path), "--output", str(output),
               "--no-progress", "--no-report"]
    run_dir = output / "evolution-seed0"
    # Its own process group, killed whole: the pool's workers die with the search, not left running.
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 240
    while not list((run_dir / "evaluations").glob("[0-9]*.json")):
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "the search wrote no records"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    process.stderr.close()
    before = {i: r.finished_at for i, r in RunStore(run_dir).read_records().items()}
    index = run_dir / FRAME_STORE_DIR / "train" / "index.json"
    assert index.is_file()
    written = index.stat().st_mtime_ns

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "reusing" in resumed.stderr, resumed.stderr[-3000:]
    assert index.stat().st_mtime_ns == written  # the store was not written again
    after = RunStore(run_dir).read_records()
    assert sorted(after) == list(range(budget))
    assert {i: after[i].finished_at for i in before} == before  # finished evaluations were not re-run

    reference = tmp_path / "reference"
    data["executor"] = {"kind": "local", "workers": 1}
    data["fitness"]["frame_cache_mb"] = 0
    (tmp_path / "reference.yaml").write_text(yaml.safe_dump(data))
    finished = subprocess.run([*command[:4], str(tmp_path / "reference.yaml"), "--output", str(reference),
                               "--no-progress", "--no-report"], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert run_sequence(run_dir) == run_sequence(reference / "evolution-seed0")
