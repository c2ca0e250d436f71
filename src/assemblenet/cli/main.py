"""Entry point of the ``assemblenet`` command.

Each sub-command lives in its own module under ``assemblenet.cli`` and exposes ``register(subparsers)``, which
adds a parser whose default ``func`` runs the command and returns an exit code. Heavy imports happen inside
those functions so that ``assemblenet --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from assemblenet.errors import AssembleNetError

# Modules that contribute sub-commands, in the order they appear in --help.
COMMAND_MODULES = (
    "assemblenet.cli.models_cmd",
    "assemblenet.cli.data_cmd",
    "assemblenet.cli.engine_cmd",
    "assemblenet.cli.search_cmd",
    "assemblenet.cli.noise_cmd",
    "assemblenet.cli.study_cmd",
    "assemblenet.cli.demo_cmd",
)


class CliUsageError(AssembleNetError):
    """A bad command-line argument."""


class _Parser(argparse.ArgumentParser):
    # argparse prints usage plus a message and exits 2; we want one readable line. main() prints the
    # "assemblenet: error: " prefix, so only a sub-command's name goes before the message.
    def error(self, message: str) -> None:  # type: ignore[override]
        command = self.prog.removeprefix("assemblenet").strip()
        raise CliUsageError(f"{command}: {message}" if command else message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="assemblenet", description="AssembleNet video models, data tools, training and search.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)  # a module that fails to import is an error
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except (AssembleNetError, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        print(f"assemblenet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("assemblenet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
