"""Engine sub-commands: ``train``, ``evaluate``, ``predict`` and ``export``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from assemblenet.argtypes import int_at_least, positive_int
from assemblenet.config_schema import add_config_arguments

logger = logging.getLogger(__name__)


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="weights and activations in float32 (default) or bfloat16; the flow layer and the "
                             "head stay float32. bf16 is fast only with native bf16 (AVX-512-BF16/AMX CPUs, GPUs)")


def register(subparsers) -> None:
    train = subparsers.add_parser(
        "train", help="train a model from a config (resumes automatically)",
        description="Train the model a YAML config describes. Checkpoints, metrics.jsonl, TensorBoard logs, "
                    "training curves, the final weights (model.safetensors + sidecar) and the evaluation report "
                    "go to output.dir. Restarting the same command resumes from the latest checkpoint. "
                    "For several processes: torchrun --nproc_per_node N -m assemblenet.cli.main train CONFIG.")
    train.add_argument("config", help="YAML config (see configs/ and docs/engine.md)")
    add_config_arguments(train)
    train.add_argument("--output", help="output folder (replaces output.dir)")
    train.add_argument("--smoke", action="store_true",
                       help="a smoke run of the whole pipeline on the configured data in under a minute on a CPU: "
                            "a width-1/8 depth-26 model, 4 frames of 32 px, 4 steps of 2 clips, 16 videos per "
                            "split, one view each, evaluation and report, into --output or a new temporary folder "
                            "(--set values apply on top; docs/engine.md)")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.set_defaults(func=run_train)

    evaluate = subparsers.add_parser(
        "evaluate", help="multi-view evaluation of a trained model",
        description="Evaluate a checkpoint on the config's validation set with clips x crops views. Writes "
                    "eval_metrics.json, per_class_ap.csv, predictions.txt (Charades submission format) and, "
                    "for single-label data, confusion_matrix.csv/.png and per_class_accuracy.csv.")
    evaluate.add_argument("config", help="YAML config naming the validation data")
    evaluate.add_argument("--checkpoint", required=True,
                          help="model.safetensors (with its .json sidecar), a checkpoints/step_*.pt, or a run folder")
    add_config_arguments(evaluate)
    evaluate.add_argument("--output", "--out", dest="out",
                          help="report folder (default: <output.dir>/eval_<checkpoint name>)")
    evaluate.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_precision_argument(evaluate)
    evaluate.set_defaults(func=run_evaluate)

    predict = subparsers.add_parser(
        "predict", help="top classes of a video file",
        description="Score a video with sliding windows over its whole length and print the top classes.")
    predict.add_argument("video", help="video file or frame folder")
    predict.add_argument("--checkpoint", help="weights (.safetensors), checkpoint (.pt) or run folder "
                                              "(default: the output.dir of --config)")
    predict.add_argument("--config", help="config whose output.dir holds the trained model")
    add_config_arguments(predict)
    predict.add_argument("--topk", type=positive_int, default=5, help="classes to print")
    predict.add_argument("--timeline", metavar="OUT.json",
                         help="write per-window scores as JSON and a PNG plot (OUT.png) of scores over time")
    predict.add_argument("--hop", type=positive_int, help="frames between window starts (default: one window span)")
    predict.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")
    predict.add_argument("--objects", metavar="MAPS",
                         help="the video's per-frame object maps (.npz or folder of PNG label maps), for models with "
                              "an object stem (AssembleNet++)")
    predict.add_argument("--json", action="store_true", help="print the top classes as JSON")
    add_precision_argument(predict)
    predict.set_defaults(func=run_predict)

    export = subparsers.add_parser(
        "export", help="export a trained model to TorchScript or ONNX",
        description="Export a model and check that the exported file reproduces eager PyTorch within the "
                    "tolerance on random input (onnxruntime for ONNX).")
    export.add_argument("--checkpoint", required=True, help="weights (.safetensors), checkpoint (.pt) or run folder")
    export.add_argument("--format", required=True, choices=("torchscript", "onnx"))
    export.add_argument("--output", help="output file (default: beside the checkpoint, model.pt / model.onnx)")
    export.add_argument("--batch-size", type=positive_int, default=1,
                        help="batch size of the checked input (the ONNX graph is traced at 2 or more clips, so its "
                             "batch and time stay dynamic)")
    export.add_argument("--frames", type=int_at_least(2),
                        help="frames of the example input, 2 or more (default: the model's)")
    export.add_argument("--size", type=positive_int, help="crop size of the example input (default: the model's)")
    export.add_argument("--tolerance", type=float, default=1e-4, help="largest allowed |exported - eager|")
    export.set_defaults(func=run_export)


# -- train -------------------------------------------------------------------------------------------------
def run_train(args: argparse.Namespace) -> int:
    from assemblenet.engine.config import load_config, smoke_overrides
    from assemblenet.engine.results import EVAL_DIR
    from assemblenet.engine.trainer import run_training

    overrides = list(args.overrides)
    if args.output:
        overrides.append(("output.dir", args.output))
    if args.smoke:
        # --print-config only shows the config: no temporary folder is made for it
        overrides = smoke_overrides(args.output or ("TEMPORARY_FOLDER" if args.print_config else None)) + overrides
    cfg = load_config(args.config, overrides)
    if args.print_config:
        sys.stdout.write(cfg.to_yaml())
        return 0
    result = run_training(cfg, progress=False if args.no_progress else None)
    if result.output_dir is not None and _is_main_process():
        shown = ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items() if k not in ("num_videos",))
        print(f"finished {result.steps} steps; validation: {shown}")
        print(f"weights: {result.weights_path}")
        print(_skipped_line(result.skipped_videos, "final_metrics.json and metrics.jsonl"))
        if args.smoke:
            print(f"smoke run passed; report: {result.output_dir / EVAL_DIR}")
    return 0


def _is_main_process() -> bool:
    import os

    return int(os.environ.get("RANK", "0")) == 0


# -- evaluate ----------------------------------------------------------------------------------------------
def run_evaluate(args: argparse.Namespace) -> int:
    from assemblenet.engine.config import load_config
    from assemblenet.engine.evaluator import run_evaluation

    cfg = load_config(args.config, args.overrides)
    if args.print_config:
        sys.stdout.write(cfg.to_yaml())
        return 0
    done = run_evaluation(cfg, args.checkpoint, precision=args.precision, output_dir=args.out,
                          progress=not args.no_progress)
    if done.output_dir is None:  # not the main process
        return 0
    result = done.result
    print(f"{len(result.video_ids)} videos x {result.num_views // max(1, len(result.video_ids))} views "
          f"({cfg.eval.aggregation} over views)")
    labels = {"map": "mAP (official Charades)", "map_sklearn": "mAP (sklearn-style)", "top1": "top-1",
              "top5": "top-5", "mean_class_accuracy": "mean per-class accuracy"}
    for key, label in labels.items():
        if key in result.metrics:
            print(f"  {label:<26} {result.metrics[key]:.4f}")
    print(_skipped_line({"val": result.skipped}, "eval_metrics.json"))
    print(f"report: {done.output_dir}")
    return 0


def _skipped_line(skipped: dict[str, dict[str, str]], where: str) -> str:
    """``skipped videos: train 8, val 0 (listed in ...)``: what the run could not read, never silently."""
    counts = ", ".join(f"{split} {len(videos)}" for split, videos in skipped.items())
    listed = f" (listed in {where})" if any(skipped.values()) else ""
    return f"skipped videos (missing or unreadable): {counts or 'none'}{listed}"


# -- predict -----------------------------------------------------------------------------------------------
def run_predict(args: argparse.Namespace) -> int:
    from assemblenet.engine.modeling import prepare_for_inference
    from assemblenet.engine.placement import resolve_device
    from assemblenet.engine.predict import predict_video, write_timeline
    from assemblenet.engine.weights import load_trained_model
    from assemblenet.errors import CheckpointError, ConfigError, DataError

    cfg = None
    if args.config:
        from assemblenet.engine.config import load_config

        cfg = load_config(args.config, args.overrides)
        if args.print_config:
            sys.stdout.write(cfg.to_yaml())
            return 0
    elif args.overrides or args.print_config:
        raise ConfigError("--set and --print-config need --config")
    if args.checkpoint:
        checkpoint = Path(args.checkpoint)
    elif cfg is not None:
        if not cfg.output.dir:
            raise CheckpointError(f"{args.config} has no output.dir; pass --checkpoint")
        checkpoint = Path(cfg.output.dir)
    else:
        raise CheckpointError("no model given: pass --checkpoint (weights, checkpoint or run folder) or --config")
    video = Path(args.video)
    if not video.exists():
        raise DataError(f"video not found: {video}")
    device = resolve_device(args.device, key="--device")
    model, info = load_trained_model(checkpoint)
    model = prepare_for_inference(model, device=device, precision=args.precision)
    prediction = predict_video(model, video, num_frames=info.input.num_frames, crop_size=info.input.crop_size,
                               stride=info.input.stride, class_names=info.class_names, multi_label=info.multi_label,
                               hop=args.hop, device=device, objects=args.objects)
    top = prediction.top(args.topk)
    if args.json:
        print(json.dumps([{"class_index": i, "class_name": n, "score": round(s, 6)} for i, n, s in top]))
    else:
        print(f"{video}: {len(prediction.window_frames)} windows, {prediction.num_video_frames} frames")
        width = max(len(n) for _, n, _ in top)
        for rank, (_, name, score) in enumerate(top, 1):
            print(f"  {rank}. {name:<{width}}  {score:.4f}")
    if args.timeline:
        json_path, png_path = write_timeline(prediction, args.timeline, top_classes=min(args.topk, 5))
        print(f"timeline: {json_path} and {png_path}")
    return 0


# -- export ------------------------------------------------------------------------------------------------
def run_export(args: argparse.Namespace) -> int:
    from assemblenet.engine.export import export_model
    from assemblenet.engine.modeling import prepare_for_inference
    from assemblenet.engine.weights import load_trained_model

    checkpoint = Path(args.checkpoint)
    model, info = load_trained_model(checkpoint)
    model = prepare_for_inference(model)  # exported graphs carry the folded BatchNorm
    if args.output:
        output = Path(args.output)
    else:
        folder = checkpoint if checkpoint.is_dir() else checkpoint.parent
        output = folder / ("model.pt" if args.format == "torchscript" else "model.onnx")
    report = export_model(model, output, fmt=args.format, batch_size=args.batch_size,
                          num_frames=args.frames or info.input.num_frames, size=args.size or info.input.crop_size,
                          tolerance=args.tolerance, verbose=args.verbose)
    shapes = ", ".join("x".join(str(d) for d in s) for s in report.input_shapes)
    print(f"wrote {report.path} ({report.format}, input {shapes}); max |exported - eager| = {report.max_abs_diff:.2e}")
    return 0
