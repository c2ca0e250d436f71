"""``assemblenet models`` and ``assemblenet describe``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from assemblenet.argtypes import positive_float, positive_int
from assemblenet.errors import AssembleNetError
from assemblenet.graph.spec import SUPPORTED_DEPTHS

_GRAPH_SUFFIXES = (".yaml", ".yml", ".json")
_PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def register(subparsers: argparse._SubParsersAction) -> None:
    models = subparsers.add_parser("models", help="list the model presets with params and GFLOPs")
    models.add_argument("--json", action="store_true", help="print the metadata as JSON")
    models.set_defaults(func=run_models)

    describe = subparsers.add_parser(
        "describe", help="per-node shapes, params, FLOPs and connection weights of a preset or graph file"
    )
    describe.add_argument("model", help="a preset name (see `assemblenet models`) or a graph .yaml/.yml/.json")
    describe.add_argument("--frames", type=positive_int, default=32, help="clip length T (default 32)")
    describe.add_argument("--size", type=positive_int, default=224, help="frame height and width (default 224)")
    describe.add_argument("--num-classes", type=positive_int, default=None, help="logits (preset default: 157)")
    describe.add_argument("--depth", type=int, choices=SUPPORTED_DEPTHS, default=None)
    describe.add_argument("--width-multiplier", type=positive_float, default=None)
    describe.add_argument("--attention", choices=("none", "self", "peer"), default=None,
                          help="AssembleNet++ connection attention (default: the preset's; none for a graph file)")
    describe.add_argument("--plot", type=Path, default=None, metavar="PNG",
                          help="draw the graph to this .png (or .svg/.pdf)")
    describe.set_defaults(func=run_describe)


def run_models(args: argparse.Namespace) -> int:
    from assemblenet.models import model_table

    table = model_table()
    if args.json:
        print(json.dumps(table, indent=1))
        return 0
    print(f"{'name':<27} {'structure':<9} {'depth':>5} {'weights':<9} {'attention':<9} {'objects':<7} "
          f"{'params':>12} {'GFLOPs':>8}  source")
    for row in table:
        weights = "learnable" if row["learnable_weights"] else "fixed"
        objects = "yes" if row.get("object_stem") else "no"
        print(f"{row['name']:<27} {row['structure']:<9} {row['depth']:>5} {weights:<9} "
              f"{row.get('attention') or '-':<9} {objects:<7} {row['params']:>12,} {row['gflops']:>8.1f}  "
              f"{row['source']}")
    print(f"\nparams: trainable, {table[0]['num_classes']} classes; GFLOPs: one 32x224x224 clip, "
          "conv and matmul FLOPs (multiply-add = 2) from torch.utils.flop_counter")
    return 0


def run_describe(args: argparse.Namespace) -> int:
    from assemblenet.graph import load_graph
    from assemblenet.models import build_from_graph, create_model, list_models
    from assemblenet.models.summary import format_summary, summarize_model

    if args.frames < 2:
        raise AssembleNetError(f"--frames must be at least 2 (flow needs frame pairs), got {args.frames}")
    overrides = {}
    if args.depth is not None:
        overrides["depth"] = args.depth
    if args.width_multiplier is not None:
        overrides["width_multiplier"] = args.width_multiplier
    if args.attention is not None:
        overrides["attention_mode"] = None if args.attention == "none" else args.attention
    source = Path(args.model)
    if args.plot is not None and args.plot.suffix.lower() not in _PLOT_SUFFIXES:
        raise AssembleNetError(f"--plot {args.plot}: expected a file name ending in {', '.join(_PLOT_SUFFIXES)}")
    if source.suffix.lower() in _GRAPH_SUFFIXES or source.exists():
        # Lenient, so that graphs with unused nodes (the official asnp50) can be inspected; they are listed.
        graph = load_graph(source, allow_dead_nodes=True)
        model = build_from_graph(graph, num_classes=args.num_classes or 157, **overrides)
        title = graph.name or source.stem
    elif args.model in list_models():
        model = create_model(args.model, num_classes=args.num_classes, **overrides)
        title = args.model
    else:
        raise AssembleNetError(
            f"unknown model {args.model!r}: expected a preset ({', '.join(list_models())}) or a graph file "
            "ending in .yaml, .yml or .json"
        )
    summary = summarize_model(model, frames=args.frames, size=args.size)
    print(f"{title}: depth {model.depth}, "
          f"{model.num_classes} classes, width x{model.width_multiplier:g}, attention {model.attention_mode or 'none'}"
          + (f", object stem ({model.num_object_classes} classes)" if model.has_object_stem else ""))
    print(format_summary(summary))
    if model.graph.dead_nodes:
        # The official TF code computes such a node and drops its output; this model prunes it (no layers).
        print(f"\nnodes whose output nothing reads (pruned: no layers, not computed): {model.graph.dead_nodes}")
    if args.plot is not None:
        from assemblenet.graph.plot import plot_graph

        # Peer attention: each node's strongest attention source, drawn dashed.
        attention = ({target: [peer] for target, (peer, _) in model.strongest_attention_sources().items()}
                     if model.attention_mode == "peer" else None)
        path = plot_graph(model.graph, args.plot, title=title, weights=model.connection_weights(),
                          attention=attention)
        print(f"\ngraph drawn to {path}")
    return 0
