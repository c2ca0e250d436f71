"""AssembleNet++ through the engine: training with peer attention and object maps, prediction with a video's
object maps, export, and the config-time check for missing object maps."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from assemblenet.cli.main import main
from assemblenet.data.synthetic import OBJECT_CLASSES
from assemblenet.engine.export import export_model, run_exported
from assemblenet.engine.predict import predict_video
from assemblenet.engine.trainer import run_training
from assemblenet.engine.weights import load_trained_model
from assemblenet.errors import ConfigError
from tests.engine._helpers import tiny_config

# RGB and object stems, two level-0 nodes, a level-3 output: small enough to train and export in seconds.
GRAPH = {"format": "assemblenet-graph/v1", "name": "tiny_plus", "nodes": [
    {"id": 0, "stem": "rgb", "temporal_dilation": 1},
    {"id": 1, "stem": "object", "temporal_dilation": 1},
    {"id": 2, "level": 0, "inputs": [0, 1], "filters": 4},
    {"id": 3, "level": 0, "inputs": [1], "filters": 4, "temporal_dilation": 2},
    {"id": 4, "level": 3, "inputs": [2, 3, 1], "filters": 8, "spatial_stride": 2},
]}


@pytest.fixture(scope="module")
def plus_root(tmp_path_factory):
    from assemblenet.data import make_synthetic

    root = tmp_path_factory.mktemp("synthetic_plus")
    make_synthetic(root, num_videos=24, num_classes=4, size=32, num_frames=8, seed=3, multi_label_fraction=0.0,
                   val_fraction=0.25, progress=False, objects=True)
    (root / "tiny_plus.yaml").write_text(yaml.safe_dump(GRAPH))
    return root


def plus_config(root, output_dir, **data):
    return tiny_config(
        root, output_dir,
        model={"name": "assemblenet50_searchable", "graph": str(root / "tiny_plus.yaml"), "attention_mode": "peer",
               "num_object_classes": len(OBJECT_CLASSES), "depth": 26, "width_multiplier": 1.0},
        data={"object_root": str(root / "objects"), **data},
        optim={"epochs": 1, "warmup_epochs": 0},
    )


@pytest.fixture(scope="module")
def trained(plus_root, tmp_path_factory):
    return run_training(plus_config(plus_root, tmp_path_factory.mktemp("plus_run") / "run"))


def test_train_and_predict_with_peer_attention_and_object_maps(plus_root, trained):
    result = trained
    assert result.steps == 4 and np.isfinite(result.metrics["top1"])
    model, info = load_trained_model(result.weights_path)
    assert model.attention_mode == "peer" and model.has_object_stem and model.num_object_classes == 6
    sidecar = json.loads((result.weights_path.parent / "model.safetensors.json").read_text())
    assert sidecar["model"]["overrides"]["attention_mode"] == "peer"

    video = sorted((plus_root / "videos").glob("*.mp4"))[0]
    maps = plus_root / "objects" / "videos" / f"{video.stem}.npz"
    prediction = predict_video(model, video, num_frames=info.input.num_frames, crop_size=info.input.crop_size, hop=4,
                               objects=maps)
    assert prediction.window_scores.shape == (2, 4)
    with pytest.raises(ConfigError, match="object stem: give the video's object maps"):
        predict_video(model, video, num_frames=4, crop_size=32)
    # The CLI: `assemblenet predict VIDEO --checkpoint W --objects MAPS`.
    assert main(["predict", str(video), "--checkpoint", str(result.weights_path), "--objects", str(maps),
                 "--json"]) == 0


@pytest.mark.parametrize("fmt", ["torchscript", pytest.param("onnx", marks=pytest.mark.slow)])
def test_export_with_object_input(trained, tmp_path, fmt):
    model, _ = load_trained_model(trained.weights_path)
    path = tmp_path / f"model.{fmt}"
    report = export_model(model, path, fmt=fmt, batch_size=1, num_frames=4, size=32)
    assert report.input_shapes == [(1, 3, 4, 32, 32), (1, 6, 4, 32, 32)] and report.max_abs_diff <= 1e-4
    x, objects = torch.rand(1, 3, 4, 32, 32), torch.rand(1, 6, 4, 32, 32)
    with torch.no_grad():
        eager = model(x, objects=objects).numpy()
    np.testing.assert_allclose(run_exported(path, fmt, (x, objects), ["video", "objects"]), eager, atol=1e-4)


def test_an_object_graph_without_object_maps_fails_at_config_time(plus_root, tmp_path, capsys):
    config = plus_config(plus_root, tmp_path / "run")
    del config["data"]["object_root"]
    with pytest.raises(ConfigError, match=r"key 'data.object_root': the model's graph has an object stem \(node 1\)"):
        run_training(config)
    assert not (tmp_path / "run").exists()
    path = tmp_path / "plus.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "data.object_root" in error
    # The preset too.
    config["model"] = {"name": "assemblenet_plus50", "depth": 26, "width_multiplier": 0.125}
    with pytest.raises(ConfigError, match=r"object stem \(node 4\)"):
        run_training(config)
