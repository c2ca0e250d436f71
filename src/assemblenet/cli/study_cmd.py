"""``assemblenet search-study``: compare search strategies over seeds (logic in :mod:`assemblenet.search.study`)."""

from __future__ import annotations

import argparse
import logging
import sys

from assemblenet.config_schema import add_config_arguments
from assemblenet.search.study.config import STAGES

logger = logging.getLogger(__name__)




def register(subparsers: argparse._SubParsersAction) -> None:
    study = subparsers.add_parser(
        "search-study",
        help="compare search strategies over seeds: searches, statistics, retraining (resumable)",
        description=(
            "Run every (strategy, seed) search of a study config into OUTPUT/<strategy>-seed<N>/, then write "
            "OUTPUT/study.json, study.png and study.md (the pre-registered hypotheses of the config and their "
            "confirmatory tests, Holm-corrected, shown only once every run they need has finished; then exploratory "
            "curves, intervals and paired tests of guided evolution against each strategy), and, when "
            "retrain.enabled, retrain each run's single best and re-scored graphs on the held-out split. "
            "Rerunning resumes."
        ),
    )
    study.add_argument("config", help="study config (YAML), e.g. configs/search/study_tiny.yaml")
    add_config_arguments(study)
    study.add_argument("--output", help="study folder (default: the config's output_dir, else runs/study/NAME)")
    study.add_argument("--executor", choices=("local", "ray"), help="where fitness runs happen (every search)")
    study.add_argument("--ray-address", help="join this Ray cluster (implies --executor ray)")
    study.add_argument("--no-progress", action="store_true", help="no progress bars")
    study.add_argument("--allow-dirty", action="store_true",
                       help="run even though the code's git tree has uncommitted changes to tracked files (refused "
                            "by default: a study records the commit it ran from; with this flag it records the "
                            "diff's hash and study.md says so)")
    study.add_argument("--stage", choices=STAGES, default="all",
                       help="one stage, or all (default): recipes when recipes.enabled, search, analyse, then "
                            "retrain and baselines when enabled, analysing again after each")
    study.set_defaults(func=run_search_study)


def run_search_study(args: argparse.Namespace) -> int:
    from assemblenet.search.study import load_study_config, run_study

    config = load_study_config(args.config, args.overrides)
    if args.print_config:
        sys.stdout.write(config.to_yaml())
        return 0
    outcome = run_study(config, stage=args.stage, output=args.output, executor=args.executor,
                        ray_address=args.ray_address, progress=not args.no_progress, allow_dirty=args.allow_dirty)
    if outcome.analysis is not None:
        print(outcome.output_dir / "study.md")
    else:
        logger.info("study folder: %s", outcome.output_dir)
    return 0
