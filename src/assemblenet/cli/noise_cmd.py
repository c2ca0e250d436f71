"""``assemblenet proxy-noise``: how much signal a proxy fitness gives the search, over a grid of proxy settings
(``assemblenet.search.noise``)."""

from __future__ import annotations

import argparse

from assemblenet.argtypes import positive_int
from assemblenet.config_schema import add_config_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    noise = subparsers.add_parser(
        "proxy-noise",
        help="measure a proxy fitness's seed noise against the spread between graphs (resumable)",
        description=("For each (proxy steps, connection lr multiplier) cell: the agreement of learned connection "
                     "weights between trial seeds, the fitness spread across seeds and across random graphs, "
                     "and seconds per evaluation. Every evaluation is appended to OUTPUT/evaluations.jsonl and "
                     "reused on rerun; the grid goes to OUTPUT/noise_grid.json and .md."),
    )
    noise.add_argument("config", help="search config whose space, proxy and executor are measured")
    add_config_arguments(noise)
    noise.add_argument("--steps", default="24,48,96", help="comma-separated proxy step budgets")
    noise.add_argument("--lr-multipliers", default="1,10,30", help="comma-separated connection lr multipliers")
    noise.add_argument("--cells", help="comma-separated STEPSxMULTIPLIER cells (e.g. 24x10,48x1) instead of the "
                       "product of --steps and --lr-multipliers")
    noise.add_argument("--seeds", type=positive_int, default=4, help="trial seeds of each reference graph")
    noise.add_argument("--graphs", type=positive_int, default=16,
                       help="random graphs of the space (the first are the references)")
    noise.add_argument("--references", type=positive_int, default=1,
                       help="graphs (the first of the random ones) run under every trial seed for (a) and (b)")
    noise.add_argument("--contribution-batches", type=int, default=4,
                       help="training batches on which each proxy also measures the edges' contributions (0: none)")
    noise.add_argument("--output", required=True, help="folder for evaluations.jsonl, noise_grid.json/.md")
    noise.add_argument("--no-progress", action="store_true")
    noise.set_defaults(func=run_proxy_noise)


def _numbers(flag: str, text: str, kind: type) -> list:
    from assemblenet.errors import ConfigError

    try:
        return [kind(value) for value in text.split(",")]
    except ValueError:
        raise ConfigError(f"{flag}: expected comma-separated numbers, got {text!r}") from None


def run_proxy_noise(args: argparse.Namespace) -> int:
    from pathlib import Path

    from assemblenet.search.config import load_search_config
    from assemblenet.search.noise import parse_cells, run_grid, write_grid_markdown

    config = load_search_config(args.config, args.overrides)
    if args.print_config:
        print(config.to_yaml(), end="")
        return 0
    cells = parse_cells(args.cells) if args.cells else None
    output = Path(args.output)
    reports = run_grid(config, steps=_numbers("--steps", args.steps, int),
                       multipliers=_numbers("--lr-multipliers", args.lr_multipliers, float), seeds=args.seeds,
                       graphs=args.graphs, output=output, progress=not args.no_progress,
                       contribution_batches=args.contribution_batches, references=args.references, cells=cells)
    print(write_grid_markdown(reports, output))
    return 0
