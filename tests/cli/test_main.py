"""``assemblenet.cli.main``: every command module is loaded; one that fails to import is an error, not a
command silently missing from ``--help``."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from assemblenet.cli import main as cli_main
from tests.test_fileio import start_holder

REPO = Path(__file__).resolve().parents[2]


def test_every_command_is_registered() -> None:
    parser = cli_main.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert {"models", "train", "evaluate", "predict", "export", "search", "search-report", "search-study",
            "demo"} <= set(commands)


def test_a_command_module_that_fails_to_import_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", (*cli_main.COMMAND_MODULES, "assemblenet.cli.absent_cmd"))
    with pytest.raises(ModuleNotFoundError, match="assemblenet.cli.absent_cmd"):
        cli_main.build_parser()


def _search_run_dir(folder):
    from assemblenet.search.config import load_search_config
    from assemblenet.search.evolution import run_dir_name

    config = load_search_config(REPO / "configs/search/tiny.yaml")
    return folder / run_dir_name(config.strategy, config.seed)


@pytest.mark.parametrize("command", ["train", "search", "search-study", "flow"])
def test_a_folder_another_run_holds_is_one_error_line_naming_the_folder_and_the_holder(
        command, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(REPO)  # the shipped configs' relative paths are relative to the working directory
    folder = tmp_path / "out"
    argv, held = {
        "train": (["train", str(REPO / "configs/synthetic.yaml"), "--output", str(folder)], folder),
        "search": (["search", str(REPO / "configs/search/tiny.yaml"), "--output", str(folder)],
                   _search_run_dir(folder)),
        # --allow-dirty: the lock is what is tested, whatever state the developer's working tree is in
        "search-study": (["search-study", str(REPO / "configs/search/study_tiny.yaml"), "--output", str(folder),
                          "--allow-dirty"], folder),
        "flow": (["flow", str(REPO / "tests/fixtures/videos"), "--output", str(folder)], folder),
    }[command]
    holder = start_holder(held)  # a real second process
    try:
        capsys.readouterr()
        assert cli_main.main(argv) == 2
    finally:
        holder.kill()
        holder.wait()
    errors = [line for line in capsys.readouterr().err.splitlines() if " INFO " not in line]
    assert errors == [f"assemblenet: error: {held.resolve()} is in use by process {holder.pid} on "
                      f"{socket.gethostname()} (since " + errors[0].split("(since ", 1)[1]]
    assert not list(held.glob("*.json*")) and not (held / "metrics.jsonl").exists()  # it wrote nothing


@pytest.mark.parametrize("argv, message", [
    (["--bogus"], "assemblenet: error: unrecognized arguments: --bogus"),
    (["train", "x.yaml", "--bogus"], "assemblenet: error: unrecognized arguments: --bogus"),
    (["train"], "assemblenet: error: train: the following arguments are required: config"),
])
def test_a_usage_error_is_one_line_with_the_prefix_once(argv, message, capsys) -> None:
    assert cli_main.main(argv) == 2
    assert capsys.readouterr().err.splitlines() == [message]


@pytest.mark.parametrize("argv", [
    ["flow", "ROOT"], ["check-dataset", "CONFIG"], ["evaluate", "CONFIG", "--checkpoint", "W"],
])
@pytest.mark.parametrize("spelling", ["--output", "--out"])
def test_every_output_folder_option_is_spelled_output_and_out_stays_an_alias(argv, spelling) -> None:
    args = cli_main.build_parser().parse_args([*argv, spelling, "folder"])
    assert args.out == "folder"


def test_help_imports_no_torch() -> None:
    # The strategy registry fills itself by importing the strategies: they must stay torch-free.
    code = "import sys; from assemblenet.cli.main import build_parser; build_parser(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
