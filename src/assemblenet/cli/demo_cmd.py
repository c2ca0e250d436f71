"""``assemblenet demo``: synthetic data, a short guided search, the best graph against a two-stream baseline."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="end-to-end demo: synthetic data, guided search, best graph vs baseline (3-8 min on a 2-core CPU)",
        description=(
            "1. generate the synthetic benchmark; 2. run a short connection-learning-guided search; 3. train the "
            "best graph and an RGB-only two-stream late-fusion baseline of the same width for the same budget; "
            "4. evaluate both and print a comparison table; 5. write a report folder with plots. Rerunning the "
            "same command resumes: finished steps are skipped."
        ),
    )
    demo.add_argument("--output", default="demo_output", help="demo folder (default: demo_output)")
    demo.add_argument("--quick", action="store_true", help="a tiny budget (about a minute); numbers mean little")
    demo.add_argument("--seed", type=int, default=0, help="search and training seed")
    demo.add_argument("--evaluations", type=int, help="search candidates (default: 16; 4 with --quick)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars (step lines stay)")
    demo.set_defaults(func=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    from assemblenet.cli.demo import run_demo

    run_demo(args.output, quick=args.quick, seed=args.seed, evaluations=args.evaluations,
             progress=not args.no_progress, echo=lambda line: print(line, flush=True))
    return 0
