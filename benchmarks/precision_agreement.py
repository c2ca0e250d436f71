"""How much bf16 inference changes a trained model's predictions: top-1 agreement with fp32 and the metric
differences, on a config's validation split (override it to score another split).

    python benchmarks/precision_agreement.py CONFIG CHECKPOINT [CHECKPOINT ...] [--set data.val.split=test]
        [--json benchmarks/results/precision_agreement.json]

Both runs use ``prepare_for_inference`` (BatchNorm folded) and the config's eval views, exactly as
``assemblenet evaluate --precision fp32|bf16`` does.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from assemblenet.config_schema import add_config_arguments
from assemblenet.engine.config import load_config
from assemblenet.engine.datasets import build_split
from assemblenet.engine.evaluator import evaluate
from assemblenet.engine.modeling import prepare_for_inference
from assemblenet.engine.weights import load_trained_model
from assemblenet.fileio import atomic_write_json
from assemblenet.runtime import machine_info


def compare(checkpoint: Path, dataset, batch_size: int) -> dict:
    results, seconds = {}, {}
    for precision in ("fp32", "bf16"):
        model, _ = load_trained_model(checkpoint)
        model = prepare_for_inference(model, precision=precision)
        start = time.perf_counter()
        results[precision] = evaluate(model, dataset, batch_size=batch_size)
        seconds[precision] = time.perf_counter() - start
    fp32, bf16 = results["fp32"], results["bf16"]
    agreement = float(np.mean(fp32.scores.argmax(axis=1) == bf16.scores.argmax(axis=1)))
    return {"checkpoint": str(checkpoint), "videos": len(fp32.video_ids), "top1_agreement": agreement,
            "max_abs_score_difference": float(np.abs(fp32.scores - bf16.scores).max()),
            "metrics_fp32": fp32.metrics, "metrics_bf16": bf16.metrics,
            "map_difference_points": 100 * (bf16.metrics["map"] - fp32.metrics["map"]),
            "top1_difference_points": 100 * (bf16.metrics.get("top1", np.nan) - fp32.metrics.get("top1", np.nan)),
            "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="config naming the evaluation data (data.val) and eval views")
    parser.add_argument("checkpoints", nargs="+", type=Path, help="trained weights, checkpoints or run folders")
    add_config_arguments(parser)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    dataset = build_split(cfg, "val")
    rows = []
    for checkpoint in args.checkpoints:
        row = compare(checkpoint, dataset, cfg.eval.batch_size)
        rows.append(row)
        print(f"{checkpoint}: {row['videos']} videos, top-1 agreement {row['top1_agreement']:.2%}, "
              f"mAP {row['metrics_fp32']['map']:.4f} (fp32) vs {row['metrics_bf16']['map']:.4f} (bf16), "
              f"{row['map_difference_points']:+.2f} points; {row['seconds']['fp32']:.1f} s vs "
              f"{row['seconds']['bf16']:.1f} s", flush=True)
    agreement = float(np.mean([r["top1_agreement"] for r in rows]))
    worst = max(abs(r["map_difference_points"]) for r in rows)
    print(f"mean top-1 agreement {agreement:.2%}; largest |mAP difference| {worst:.2f} points")
    if args.json:
        atomic_write_json(args.json, {"command": "python benchmarks/precision_agreement.py " + " ".join(
            sys.argv[1:] if argv is None else argv), "machine": machine_info(), "rows": rows,
            "mean_top1_agreement": agreement, "max_abs_map_difference_points": worst})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
