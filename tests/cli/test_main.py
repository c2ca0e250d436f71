"""``assemblenet.cli.main``: every command module is loaded; one that fails to import is an error, not a
command silently missing from ``--help``."""

from __future__ import annotations

import pytest

from assemblenet.cli import main as cli_main


def test_every_command_is_registered() -> None:
    parser = cli_main.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert {"models", "train", "evaluate", "predict", "export", "search", "search-report", "search-study",
            "demo"} <= set(commands)


def test_a_command_module_that_fails_to_import_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", (*cli_main.COMMAND_MODULES, "assemblenet.cli.absent_cmd"))
    with pytest.raises(ModuleNotFoundError, match="assemblenet.cli.absent_cmd"):
        cli_main.build_parser()
