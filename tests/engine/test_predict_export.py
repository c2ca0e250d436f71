"""Prediction over a whole video (timeline JSON + PNG) and TorchScript/ONNX export checked against eager."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from assemblenet.engine.export import export_model, run_exported
from assemblenet.engine.predict import predict_video, window_starts, write_timeline
from assemblenet.engine.weights import load_trained_model
from tests.engine._helpers import save_tiny_weights


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    return save_tiny_weights(tmp_path_factory.mktemp("weights") / "model.safetensors", class_names=list("abcdef"))


def test_window_starts_cover_the_video():
    assert window_starts(10, 4, 4) == [0, 4, 6]
    assert window_starts(8, 4, 2) == [0, 2, 4]
    assert window_starts(3, 4, 4) == [0]


def test_predict_scores_every_window_and_writes_a_timeline(tiny_weights, synthetic_root, tmp_path):
    model, info = load_trained_model(tiny_weights)
    video = sorted((synthetic_root / "videos").glob("*.mp4"))[0]
    prediction = predict_video(model, video, num_frames=info.input.num_frames, crop_size=info.input.crop_size,
                               class_names=info.class_names, hop=3)
    assert prediction.num_video_frames == 12
    assert prediction.window_frames == [(0, 3), (3, 6), (6, 9), (8, 11)]
    np.testing.assert_allclose(prediction.window_scores.sum(axis=1), 1.0, rtol=1e-5)  # softmax per window
    np.testing.assert_allclose(prediction.scores, prediction.window_scores.mean(axis=0), rtol=1e-6)
    # The first window equals the model applied to that clip directly.
    from assemblenet.data import open_video
    from assemblenet.data.transforms import eval_transform

    with open_video(video) as reader:
        clip = eval_transform(32, to_float=True)(torch.from_numpy(reader.get_frames([0, 1, 2, 3])).permute(3, 0, 1, 2))
    with torch.no_grad():
        direct = torch.softmax(model(clip[None]), dim=1)[0].numpy()
    np.testing.assert_allclose(prediction.window_scores[0], direct, rtol=1e-4, atol=1e-6)
    top = prediction.top(3)
    assert [s for _, _, s in top] == sorted((s for _, _, s in top), reverse=True)

    json_path, png_path = write_timeline(prediction, tmp_path / "timeline.json")
    data = json.loads(json_path.read_text())
    assert len(data["windows"]) == 4 and len(data["windows"][0]["scores"]) == 6
    assert data["windows"][1]["start_s"] == pytest.approx(0.3, abs=1e-3)  # 10 fps
    assert png_path.suffix == ".png" and png_path.stat().st_size > 1000


@pytest.mark.parametrize("fmt", ["torchscript", pytest.param("onnx", marks=pytest.mark.slow)])
def test_export_reproduces_eager_outputs(tiny_weights, tmp_path, fmt):
    model, _ = load_trained_model(tiny_weights)
    assert model.flow_layer is not None  # the representation-flow layer is part of what is exported
    # One frame pair per chunk in eager mode: the export must still not unroll the pairs of the example shape.
    model.flow_layer.chunk_pixels = 1
    path = tmp_path / ("model.pt" if fmt == "torchscript" else "model.onnx")
    report = export_model(model, path, fmt=fmt, num_frames=4, size=32)  # batch size 1, the default
    assert path.is_file() and report.max_abs_diff <= 1e-4
    # Independent checks on fresh random input at the export shape and at two others: batch and time are
    # dynamic in both formats (onnxruntime runs the ONNX file).
    if fmt == "onnx":
        import onnx

        dims = [d.dim_param or d.dim_value for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim]
        assert isinstance(dims[0], str) and isinstance(dims[2], str) and dims[1] == 3 and dims[3:] == [32, 32]
    generator = torch.Generator().manual_seed(7)
    for shape in [(2, 3, 4, 32, 32), (1, 3, 7, 32, 32), (3, 3, 2, 32, 32)]:
        x = torch.rand(*shape, generator=generator)
        with torch.no_grad():
            eager = model(x).numpy()
        np.testing.assert_allclose(run_exported(path, fmt, (x,)), eager, atol=1e-4, rtol=0)


def test_a_failing_onnx_export_is_one_plain_line_and_its_log_stays_off_the_terminal(monkeypatch, tmp_path, capfd):
    """The exporter prints its passes (Python and C++) and a coloured report; a failure is one line without
    colour codes, and nothing reaches the terminal unless asked for (assemblenet -v)."""
    import os

    from assemblenet.engine.export import ExportError, export_onnx

    def noisy_failure(*args, **kwargs):
        print("[torch.onnx] Obtain model graph ...")
        os.write(2, b"C++ warning from the exporter\n")
        raise RuntimeError("\x1b[1;31mFailed to export\x1b[0m the model\nNext steps: ...\n")

    monkeypatch.setattr(torch.onnx, "export", noisy_failure)
    model = torch.nn.Conv3d(3, 4, 1)
    with pytest.raises(ExportError) as info:
        export_onnx(model, tmp_path / "m.onnx", (torch.rand(2, 3, 2, 8, 8),))
    assert str(info.value).startswith("ONNX export failed: Failed to export the model (rerun with assemblenet -v")
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)
    out, err = capfd.readouterr()
    assert out == "" and err == "", (out, err)
    with pytest.raises(ExportError):
        export_onnx(model, tmp_path / "m.onnx", (torch.rand(2, 3, 2, 8, 8),), verbose=True)
    out, err = capfd.readouterr()
    assert "[torch.onnx] Obtain model graph" in out and "C++ warning" in err


def test_an_export_of_fewer_than_two_frames_is_refused_before_any_work(tiny_weights, tmp_path):
    from assemblenet.errors import ConfigError

    model, _ = load_trained_model(tiny_weights)
    with pytest.raises(ConfigError, match="--frames: 1; an exported model takes 2 or more frames"):
        export_model(model, tmp_path / "m.pt", fmt="torchscript", num_frames=1, size=32)
    assert not (tmp_path / "m.pt").exists()
