"""Time the official TensorFlow AssembleNet (TF Model Garden, graph mode) on this machine.

It runs in its own environment, because TensorFlow is not a dependency of assemblenet. No tf-models-official
wheel ships ``official/projects/assemblenet``, so the environment needs the Model Garden source as well:

    python -m venv tfenv && tfenv/bin/pip install tensorflow==2.20.0 tf-models-official==2.20.0
    # copy tfenv's installed `official` package to TFREF/official and add the three files of tensorflow/models
    # official/projects/assemblenet ({modeling/assemblenet.py, modeling/rep_flow_2d_layer.py,
    # configs/assemblenet.py}, plus empty __init__.py files) under TFREF/official/projects/assemblenet/
    PYTHONPATH=TFREF tfenv/bin/python benchmarks/tf_speed.py --frames 32 --size 224 --json tf.json

This project's copy reproduces the stored Model Garden references (tests/fixtures/tf_reference) to 6.4e-7.

``benchmarks/model_speed.py --tf-python tfenv/bin/python`` calls it for each clip shape in the same run as its
own measurements, so the ratio to TF is measured side by side on one machine. What is timed: asn50 with the
official connection weights, 157 classes, batch 1, fp32, ``tf.function`` (graph mode), ``training=False``; and
the representation-flow layer alone (40 iterations, as in the model). Weights are random (speed does not
depend on them). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time


def time_runs(fn, *, repeats: int, warmup: int) -> dict:
    for _ in range(warmup):
        fn()
    wall = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        wall.append(time.perf_counter() - start)
    return {"median_s": statistics.median(wall), "min_s": min(wall), "repeats": repeats}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--num-classes", type=int, default=157)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # older upstream versions use tf.keras; keep it Keras 2
    # TF turns its oneDNN kernels on by default only on CPUs with AVX-512 VNNI/BF16 or AMX; elsewhere (AVX2) its
    # Eigen kernels are 2.2x slower here. Compare against TF at its best: on unless the caller says otherwise.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from official.projects.assemblenet.configs import assemblenet as asn_config
    from official.projects.assemblenet.modeling import assemblenet as asn
    from official.projects.assemblenet.modeling import rep_flow_2d_layer

    frames, size = args.frames, args.size
    layers = asn.layers if hasattr(asn, "layers") else tf.keras.layers
    model = asn.assemblenet_v1(50, args.num_classes, num_frames=frames, model_structure=asn_config.asn50_structure,
                               input_specs=layers.InputSpec(shape=[1, frames, size, size, 3]),
                               model_edge_weights=asn_config.asn_structure_weights)
    clip = tf.constant(np.random.RandomState(0).rand(1, frames, size, size, 3).astype("float32"))
    forward = tf.function(lambda x: model(x, training=False))
    result = {"tensorflow": tf.__version__, "onednn_opts": os.environ["TF_ENABLE_ONEDNN_OPTS"],
              "threads": args.threads, "frames": frames, "size": size,
              "num_classes": args.num_classes, "forward": time_runs(lambda: forward(clip).numpy(),
                                                                    repeats=args.repeats, warmup=args.warmup)}
    flow_layer = rep_flow_2d_layer.RepresentationFlow(time=frames, depth=3, num_iter=40, bottleneck=1)
    frames_flat = tf.reshape(clip, (frames, size, size, 3))
    flow = tf.function(lambda x: flow_layer(x, training=False))
    result["flow"] = time_runs(lambda: flow(frames_flat).numpy(), repeats=args.repeats, warmup=args.warmup)
    text = json.dumps(result)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
