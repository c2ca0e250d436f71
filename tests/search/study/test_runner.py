"""The study's invocations (search/study/runner.py): stage times from the log, the command end to end,
pre-registration of the hypotheses, and the code provenance (a dirty tree refused without ``--allow-dirty``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from assemblenet.errors import ConfigError
from assemblenet.provenance import code_provenance as real_code_provenance  # before the fixtures patch it
from assemblenet.search.study import (
    Study,
    study_config_from_dict,
)
from assemblenet.search.toy import ToyFitness

from .conftest import (
    CLEAN_CODE,
    CONFIGS,
    H1,
    TINY,
    dataclass_replace,
    study_dict,
    with_hypotheses,
)


def test_stage_times_count_invocations_killed_mid_stage(tmp_path: Path) -> None:
    """A study resumed after kills: each killed invocation's stage counts up to its last logged row."""
    config = study_config_from_dict(study_dict(), source="study.yaml")
    study = Study(config, output=tmp_path, progress=False)
    rows = [
        {"event": "stage-started", "time": 100.0, "stage": "search", "invocation": "a"},
        {"event": "run-finished", "time": 160.0, "invocation": "a"},  # then killed
        {"event": "stage-started", "time": 1000.0, "stage": "search", "invocation": "b"},
        {"event": "run-finished", "time": 1030.0, "invocation": "b"},
        {"event": "stage-finished", "time": 1050.0, "stage": "search", "wall_time_s": 50.0, "invocation": "b"},
        {"event": "stage-started", "time": 1050.0, "stage": "retrain", "invocation": "b"},
        {"event": "training-finished", "time": 1150.0, "invocation": "b"},  # killed during retrain
        {"event": "stage-finished", "time": 5000.0, "stage": "recipes", "wall_time_s": 7.0},  # an older log row
    ]
    (tmp_path / "study_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert study.stage_times() == {"search": 60.0 + 50.0, "retrain": 100.0, "recipes": 7.0}
    assert study.untagged_log_rows() == 1


def test_cli_runs_the_shipped_tiny_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from assemblenet.cli.main import main

    out = tmp_path / "cli"
    assert main(["search-study", str(CONFIGS / "study_tiny.yaml"), "--output", str(out), "--no-progress",
                 "--stage", "search"]) == 0
    assert not (out / "study.json").exists()
    assert main(["search-study", str(CONFIGS / "study_tiny.yaml"), "--output", str(out), "--no-progress",
                 "--stage", "analyse"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "study.md")
    data = json.loads((out / "study.json").read_text())
    assert set(data["strategies"]) == {"evolution", "evolution-unguided", "random", "oneshot"}
    assert {c["b"] for c in data["comparisons"]} == {"evolution-unguided", "random", "oneshot"}
    assert all(not math.isnan(v) for v in data["strategies"]["oneshot"]["curve"]["mean"])
    assert main(["search-study", str(CONFIGS / "study_tiny.yaml"), "--output", str(out), "--stage", "retrain",
                 "--no-progress"]) == 2  # retrain.enabled is false: a one-line error
    assert "retrain.enabled" in capsys.readouterr().err


def test_changed_hypotheses_are_refused_once_runs_have_data(tmp_path: Path) -> None:
    config = study_config_from_dict(study_dict(max_evaluations=3, hypotheses=with_hypotheses(H1)), source="s.yaml")
    out = tmp_path / "out"
    Study(config, output=out, progress=False, fitness=ToyFitness()).run("search")
    registration = json.loads((out / "registration.json").read_text())
    assert registration["hypotheses"]["confirmatory"][0]["name"] == "H1"
    assert registration["runs_with_data_before_registration"] == []
    assert registration["provenance"]["commit"] == CLEAN_CODE["commit"]
    changed = dataclass_replace(config, hypotheses=study_config_from_dict(
        study_dict(hypotheses=with_hypotheses({**H1, "alternative": "two-sided"})), source="s.yaml").hypotheses)
    with pytest.raises(ConfigError, match="key 'hypotheses': differ from those registered"):
        Study(changed, output=out, progress=False, fitness=ToyFitness()).run("analyse")
    # other config changes are allowed, and study.md says the config changed since registration
    larger = dataclass_replace(config, bootstrap_samples=600)
    Study(larger, output=out, progress=False).run("analyse")
    assert "The config has changed since registration" in (out / "study.md").read_text()


def test_hypotheses_declared_after_data_are_marked(tmp_path: Path) -> None:
    out = tmp_path / "out"
    plain = study_config_from_dict(study_dict(max_evaluations=3), source="s.yaml")
    Study(plain, output=out, progress=False, fitness=ToyFitness()).run("search")
    (out / "registration.json").unlink()  # a study folder from before registration existed
    late = study_config_from_dict(study_dict(max_evaluations=3, hypotheses=with_hypotheses(H1)), source="s.yaml")
    Study(late, output=out, progress=False).run("analyse")
    registration = json.loads((out / "registration.json").read_text())
    assert len(registration["runs_with_data_before_registration"]) == 4
    assert "**Declared after 4 run(s) already had data" in (out / "study.md").read_text()


def _git_repo(root: Path) -> Path:
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(root), "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                       check=True, capture_output=True)

    root.mkdir()
    git("init", "-q")
    (root / "code.py").write_text("x = 1\n")
    (root / ".gitignore").write_text("runs/\n")
    git("add", "code.py", ".gitignore")
    git("commit", "-q", "-m", "first")
    return root


@pytest.fixture
def code_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The study's code provenance read from a git repository of the test's own (the real helper, uncached)."""
    import shutil

    from assemblenet import provenance

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = _git_repo(tmp_path / "repo")
    monkeypatch.setattr(provenance, "code_provenance", lambda root=None: real_code_provenance(root or repo))
    provenance._cached.cache_clear()
    yield repo
    provenance._cached.cache_clear()


def test_provenance_ignores_untracked_and_ignored_files_and_hashes_the_diff(code_in: Path) -> None:
    from assemblenet import provenance

    clean = provenance.git_provenance(code_in)
    assert clean["dirty"] is False and clean["diff_sha256"] is None and len(clean["commit"]) == 40
    (code_in / "runs").mkdir()
    (code_in / "runs" / "result.json").write_text("{}")  # ignored
    (code_in / "notes.txt").write_text("todo")  # untracked
    assert provenance.git_provenance(code_in)["dirty"] is False
    (code_in / "code.py").write_text("x = 2\n")
    dirty = provenance.git_provenance(code_in)
    assert dirty["dirty"] is True and dirty["commit"] == clean["commit"] and len(dirty["diff_sha256"]) == 64
    (code_in / "code.py").write_text("x = 3\n")
    assert provenance.git_provenance(code_in)["diff_sha256"] != dirty["diff_sha256"]
    outside = provenance.git_provenance(code_in.parent)  # not a repository: unknown, no error
    assert outside["commit"] == outside["dirty"] == "unknown"
    assert provenance.describe(outside) == "commit unknown (no git repository)"


def test_a_dirty_tree_is_refused_without_allow_dirty(code_in: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from assemblenet.cli.main import main

    out = tmp_path / "study"
    args = ["search-study", str(CONFIGS / "study_tiny.yaml"), "--output", str(out), "--no-progress",
            "--set", "max_evaluations=2", "--set", "seeds=[0]", "--set", "strategies=[evolution,random]",
            "--set", "hypotheses.confirmatory=[]"]
    (code_in / "code.py").write_text("x = 2\n")  # a tracked file changed
    assert main(args) == 2
    error = capsys.readouterr().err
    assert error.startswith("assemblenet: error:") and "uncommitted changes" in error and "--allow-dirty" in error
    assert len(error.strip().splitlines()) == 1 and not out.exists()
    assert main(args + ["--allow-dirty"]) == 0
    text = (out / "study.md").read_text()
    assert "uncommitted changes (diff sha256" in text and "run with `--allow-dirty`" in text
    log = [json.loads(line) for line in (out / "study_log.jsonl").read_text().splitlines()]
    started = [row for row in log if row["event"] == "invocation-started"]
    assert started[0]["allow_dirty"] is True and started[0]["provenance"]["dirty"] is True
    # the search records carry the code state too
    manifest = json.loads((out / "evolution-seed0" / "search.json").read_text())
    assert manifest["provenance"]["dirty"] is True and manifest["provenance"]["diff_sha256"]
    # a clean tree (untracked files do not count) needs no flag, and the manifest's history records the new state
    import subprocess

    from assemblenet import provenance

    subprocess.run(["git", "-C", str(code_in), "checkout", "--", "code.py"], check=True)
    (code_in / "scratch.txt").write_text("untracked")
    provenance._cached.cache_clear()  # a new process would look again
    assert main(args) == 0
    text = (out / "study.md").read_text()
    assert "1 of these code states had uncommitted changes" in text  # the earlier invocation is still reported


def test_each_invocation_records_its_machine_and_a_study_over_several_says_so(tmp_path: Path) -> None:
    from assemblenet.cli.main import main
    from assemblenet.runtime import machine_info

    out = tmp_path / "study"
    args = ["search-study", str(CONFIGS / "study_tiny.yaml"), "--output", str(out), "--no-progress",
            "--set", "max_evaluations=2", "--set", "seeds=[0]", "--set", "strategies=[evolution,random]",
            "--set", "hypotheses.confirmatory=[]"]
    assert main(args) == 0
    log_path = out / "study_log.jsonl"
    started = [json.loads(line) for line in log_path.read_text().splitlines()]
    started = [row for row in started if row["event"] == "invocation-started"]
    signature = machine_info()["signature"]
    assert [row["machine"] for row in started] == [signature]
    text = (out / "study.md").read_text()
    assert f"machine(s): {signature})" in text and "machines (" not in text
    # One that logged no machine beside this one's is not a second machine.
    unrecorded_only = {k: v for k, v in started[0].items() if k != "machine"}
    original = log_path.read_text()
    log_path.write_text(original + json.dumps(unrecorded_only) + "\n")
    assert main(args) == 0
    assert "machines (" not in (out / "study.md").read_text()
    log_path.write_text(original)
    # An invocation logged elsewhere, and one from before machines were logged: both are reported, and the
    # study says that it ran on several machines.
    elsewhere = dict(started[0], machine="Other CPU, 2 CPUs, avx2", time=started[0]["time"] + 1)
    unrecorded = {k: v for k, v in started[0].items() if k != "machine"}
    with log_path.open("a") as handle:
        handle.write(json.dumps(elsewhere) + "\n" + json.dumps(unrecorded) + "\n")
    assert main(args) == 0
    text = (out / "study.md").read_text()
    assert f"machine(s): {signature}; Other CPU, 2 CPUs, avx2; not recorded)" in text
    assert "**The invocations ran on 2 machines (" in text and ", and some logged none.**" in text


def test_search_records_store_the_code_provenance_and_the_machine(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from assemblenet import runtime
    from assemblenet.search.config import load_search_config
    from assemblenet.search.evolution import SearchRunner

    config = load_search_config(TINY).replace(**{"search.max_evaluations": 2})
    SearchRunner(config, run_dir=tmp_path / "run", fitness=ToyFitness(), progress=False).run()
    manifest = json.loads((tmp_path / "run" / "search.json").read_text())
    assert manifest["provenance"]["commit"] == CLEAN_CODE["commit"] and manifest["provenance"]["dirty"] is False
    assert [p["commit"] for p in manifest["provenance_history"]] == [CLEAN_CODE["commit"]]
    here = runtime.machine_info()["signature"]
    assert manifest["provenance"]["machine"] == here
    # Resumed on the same machine: no new entry; on another: the history says where the rest ran.
    SearchRunner(config.replace(**{"search.max_evaluations": 3}), run_dir=tmp_path / "run", fitness=ToyFitness(),
                 progress=False).run()
    monkeypatch.setattr(runtime, "machine_info", lambda: {"signature": "Other CPU, 2 CPUs, avx2"})
    SearchRunner(config.replace(**{"search.max_evaluations": 4}), run_dir=tmp_path / "run", fitness=ToyFitness(),
                 progress=False).run()
    manifest = json.loads((tmp_path / "run" / "search.json").read_text())
    assert [p["machine"] for p in manifest["provenance_history"]] == [here, "Other CPU, 2 CPUs, avx2"]
