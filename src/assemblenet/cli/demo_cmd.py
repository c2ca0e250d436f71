"""``assemblenet demo``: the compositional task, a short guided search, and the best graph against the
late-fusion two-stream and asn50 wirings on the test split (the pipeline is :mod:`assemblenet.search.demo`)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="end-to-end demo: compositional task, guided search, best graph vs two fixed wirings (minutes)",
        description=(
            "Generate the compositional synthetic task, run a short connection-learning-guided search, train the "
            "best graph, the late-fusion two-stream network and the asn50 wiring for the same budget with 3 "
            "training seeds each, evaluate them on the test split, name a winner only when the paired intervals "
            "over the training seeds say so, and write a report. Rerunning resumes."
        ),
    )
    demo.add_argument("--output", default="demo_output", help="demo folder (default: demo_output)")
    demo.add_argument("--quick", action="store_true", help="a tiny budget (well under a minute); numbers mean little")
    demo.add_argument("--seed", type=int, default=0, help="search seed; the training seeds are SEED, SEED+1, ...")
    demo.add_argument("--evaluations", type=int, help="search candidates (default: 8; 4 with --quick)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars (step lines stay)")
    demo.set_defaults(func=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    from assemblenet.search.demo import run_demo

    run_demo(args.output, quick=args.quick, seed=args.seed, evaluations=args.evaluations,
             progress=not args.no_progress, echo=lambda line: print(line, flush=True))
    return 0
