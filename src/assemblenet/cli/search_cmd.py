"""``assemblenet search`` (run or resume an architecture search) and ``assemblenet search-report``."""

from __future__ import annotations

import argparse
import logging
import sys

from assemblenet.config_schema import add_config_arguments
from assemblenet.search.config import EXECUTOR_KINDS
from assemblenet.search.registry import strategy_names

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    search = subparsers.add_parser(
        "search",
        help="evolve AssembleNet architectures (resumes if the run folder exists)",
        description=(
            "Run the connection-learning-guided evolutionary search, or a baseline, as the config says. "
            "Results go to OUTPUT/<strategy>-seed<seed>/; rerunning the same command resumes a killed search."
        ),
    )
    search.add_argument("config", help="search config (YAML), e.g. configs/search/tiny.yaml")
    add_config_arguments(search)
    search.add_argument("--strategy", choices=strategy_names(), help="override the config's strategy")
    search.add_argument("--seed", type=int, help="override the config's seed")
    search.add_argument("--output", help="search folder (default: the config's output_dir, else runs/search/NAME)")
    search.add_argument("--max-evaluations", type=int, help="override the budget (may grow on resume)")
    search.add_argument("--executor", choices=EXECUTOR_KINDS, help="where fitness runs happen")
    search.add_argument("--workers", type=int, help="local process-pool size (1: in-process)")
    search.add_argument("--ray-address", help="join this Ray cluster (default: start Ray locally)")
    search.add_argument("--no-progress", action="store_true", help="no progress bar")
    search.add_argument("--no-report", action="store_true", help="skip report.md and plots at the end")
    search.set_defaults(func=run_search)

    report = subparsers.add_parser(
        "search-report",
        help="report and overlay one or more searches (mean and spread per strategy)",
        description="Write report.md, plots and best.yaml for the runs in the given search or run folders.",
    )
    report.add_argument("folders", nargs="+", help="search folders or run folders")
    report.add_argument("--output", help="report folder (default: the folder, when only one is given)")
    report.set_defaults(func=run_search_report)


def run_search(args: argparse.Namespace) -> int:
    from pathlib import Path

    from assemblenet.errors import ConfigError
    from assemblenet.search.config import load_search_config
    from assemblenet.search.evolution import SearchRunner, run_dir_name
    from assemblenet.search.report import write_report

    flags = {
        "strategy": args.strategy, "seed": args.seed, "search.max_evaluations": args.max_evaluations,
        "executor.kind": args.executor, "executor.workers": args.workers,
    }
    if args.ray_address is not None:
        if args.executor == "local":
            raise ConfigError("--ray-address needs --executor ray")
        flags["executor.ray_address"] = args.ray_address
        flags["executor.kind"] = "ray"
    # The named flags are shorthands for --set and win over it.
    overrides = [*args.overrides, *((key, value) for key, value in flags.items() if value is not None)]
    config = load_search_config(args.config, overrides)
    if args.print_config:
        sys.stdout.write(config.to_yaml())
        return 0

    folder = Path(args.output or config.output_dir or Path("runs") / "search" / config.name)
    run_dir = folder / run_dir_name(config.strategy, config.seed)
    logger.info("search %s (%s, seed %d) -> %s", config.name, config.strategy, config.seed, run_dir)
    summary = SearchRunner(config, run_dir=run_dir, progress=not args.no_progress).run()
    if summary.best is not None:
        logger.info("best fitness %.4f at evaluation %d; %s", summary.best.fitness, summary.best.index,
                 run_dir / "best.yaml")
    if not args.no_report:
        report = write_report([folder], folder)
        logger.info("report: %s", report)
    return 0


def run_search_report(args: argparse.Namespace) -> int:
    from assemblenet.errors import ConfigError
    from assemblenet.search.report import write_report

    if args.output is None and len(args.folders) > 1:
        raise ConfigError("search-report: give --output when reporting on several folders")
    output = args.output or args.folders[0]
    report = write_report(args.folders, output)
    print(report)
    return 0
