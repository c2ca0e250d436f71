"""The engine sub-commands (train, evaluate, predict, export) through ``assemblenet.cli.main.main``: bad input
gives one ``assemblenet: error:`` line and exit status 2; good input produces the promised files."""

from __future__ import annotations

import json

import pytest
import yaml

from assemblenet.cli.main import main
from tests.engine._helpers import VAL_VIDEOS, save_tiny_weights, tiny_config


@pytest.fixture(scope="module")
def weights(tmp_path_factory, synthetic_root):
    names = (synthetic_root / "classes.txt").read_text().split("\n")
    names = [line.split(maxsplit=1)[-1] for line in names if line.strip()][:6]
    return save_tiny_weights(tmp_path_factory.mktemp("weights") / "model.safetensors", class_names=names)


@pytest.fixture()
def config_path(tmp_path, synthetic_root):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config(synthetic_root, tmp_path / "run")))
    return path


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("assemblenet: error: ")
    return err[0]


def test_train_with_a_missing_config(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.yaml")]) == 2
    assert "config file not found" in _one_error_line(capsys)


def test_train_with_an_unknown_key_or_wrong_type_names_it(config_path, capsys):
    assert main(["train", str(config_path), "--set", "optim.lrr=0.1"]) == 2
    assert "'optim.lrr'" in _one_error_line(capsys)
    assert main(["train", str(config_path), "--set", "data.batch_size=many"]) == 2
    assert "'data.batch_size'" in _one_error_line(capsys)
    bad = config_path.with_name("bad.yaml")
    bad.write_text("model: [1, 2]\n")
    assert main(["train", str(bad)]) == 2
    assert "'model'" in _one_error_line(capsys)


def test_train_with_missing_data_is_one_line(config_path, tmp_path, capsys):
    assert main(["train", str(config_path), "--set", f"data.train.root={tmp_path / 'absent'}"]) == 2
    assert "absent" in _one_error_line(capsys)


def test_print_config_shows_the_resolved_values(config_path, capsys):
    assert main(["train", str(config_path), "--print-config", "--set", "optim.lr=0.25"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["optim"]["lr"] == 0.25 and printed["model"]["depth"] == 26


def test_evaluate_writes_the_report(config_path, weights, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["evaluate", str(config_path), "--checkpoint", str(weights), "--out", str(out), "--no-progress",
                 "--set", "eval.num_clips=2", "--set", "eval.aggregation=max"]) == 0
    printed = capsys.readouterr().out
    assert f"{VAL_VIDEOS} videos x 2 views (max over views)" in printed
    assert "mAP (official Charades)" in printed and "mAP (sklearn-style)" in printed
    report = json.loads((out / "eval_metrics.json").read_text())
    assert report["views"] == [2, 1] and report["metrics"]["num_videos"] == VAL_VIDEOS
    for name in ("predictions.txt", "per_class_ap.csv", "confusion_matrix.csv", "confusion_matrix.png"):
        assert (out / name).is_file()


def test_evaluate_and_predict_take_set_and_print_config(config_path, capsys):
    assert main(["evaluate", str(config_path), "--checkpoint", "unused", "--set", "eval.num_clips=2",
                 "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["eval"]["num_clips"] == 2
    assert main(["predict", "unused.mp4", "--config", str(config_path), "--set", "output.dir=elsewhere",
                 "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["output"]["dir"] == "elsewhere"
    assert main(["predict", "unused.mp4", "--print-config"]) == 2
    assert "need --config" in _one_error_line(capsys)
    assert main(["evaluate", str(config_path), "--checkpoint", "unused", "--set", "eval.num_clips=0"]) == 2
    assert _one_error_line(capsys).endswith(f"{config_path}: key 'eval.num_clips': must be at least 1, got 0")


def test_evaluate_with_a_missing_checkpoint(config_path, tmp_path, capsys):
    assert main(["evaluate", str(config_path), "--checkpoint", str(tmp_path / "gone.safetensors")]) == 2
    assert "checkpoint not found" in _one_error_line(capsys)


def test_predict_prints_top_classes_and_writes_a_timeline(weights, synthetic_root, tmp_path, capsys):
    video = sorted((synthetic_root / "videos").glob("*.mp4"))[0]
    timeline = tmp_path / "t.json"
    assert main(["predict", str(video), "--checkpoint", str(weights), "--topk", "3", "--json"]) == 0
    top = json.loads(capsys.readouterr().out)
    assert len(top) == 3 and top[0]["score"] >= top[1]["score"] >= top[2]["score"]
    assert main(["predict", str(video), "--checkpoint", str(weights), "--topk", "2", "--timeline", str(timeline)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].strip().startswith("1. ") and lines[2].strip().startswith("2. ")
    assert json.loads(timeline.read_text())["windows"] and timeline.with_suffix(".png").is_file()


def test_predict_in_bf16_ranks_like_fp32(weights, synthetic_root, capsys):
    video = sorted((synthetic_root / "videos").glob("*.mp4"))[0]
    scores = {}
    for precision in ("fp32", "bf16"):
        assert main(["predict", str(video), "--checkpoint", str(weights), "--topk", "6", "--json",
                     "--precision", precision]) == 0
        scores[precision] = {row["class_index"]: row["score"] for row in json.loads(capsys.readouterr().out)}
    assert scores["bf16"].keys() == scores["fp32"].keys()
    assert max(abs(scores["bf16"][k] - scores["fp32"][k]) for k in scores["fp32"]) < 0.01


def test_predict_with_an_unreadable_video(weights, tmp_path, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_text("this is not a video")
    assert main(["predict", str(broken), "--checkpoint", str(weights)]) == 2
    assert "broken.mp4" in _one_error_line(capsys)
    assert main(["predict", str(tmp_path / "absent.mp4"), "--checkpoint", str(weights)]) == 2
    assert "absent.mp4" in _one_error_line(capsys)


def test_predict_with_a_missing_checkpoint(synthetic_root, tmp_path, capsys):
    video = sorted((synthetic_root / "videos").glob("*.mp4"))[0]
    assert main(["predict", str(video), "--checkpoint", str(tmp_path / "none.safetensors")]) == 2
    assert "checkpoint not found" in _one_error_line(capsys)
    assert main(["predict", str(video)]) == 2
    assert "--checkpoint" in _one_error_line(capsys)


def test_export_torchscript_from_the_cli(weights, tmp_path, capsys):
    out = tmp_path / "m.pt"
    assert main(["export", "--checkpoint", str(weights), "--format", "torchscript", "--output", str(out)]) == 0
    assert "max |exported - eager|" in capsys.readouterr().out and out.is_file()
    assert main(["export", "--checkpoint", str(tmp_path / "x.safetensors"), "--format", "onnx"]) == 2
    assert "checkpoint not found" in _one_error_line(capsys)


@pytest.mark.slow
def test_export_onnx_with_the_defaults_is_dynamic_and_a_failed_check_leaves_no_file(weights, tmp_path, capfd,
                                                                                       caplog):
    import logging

    import onnx

    capsys = capfd  # file-descriptor capture: the exporter's C++ and Python output alike
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("model.safetensors", "model.safetensors.json"):
        (folder / name).write_bytes((weights.parent / name).read_bytes())
    # The defaults: batch size 1, the model's frames and crop size, the file beside the weights.
    with caplog.at_level(logging.INFO, logger="assemblenet.engine.export"):
        assert main(["export", "--checkpoint", str(folder / "model.safetensors"), "--format", "onnx"]) == 0
    out, err = capsys.readouterr()
    # The exporter's own log (its passes, a coloured report: some 150 lines) stays off the terminal; a progress
    # line says what takes the minute.
    assert len(out.strip().splitlines()) == 1 and "max |exported - eager|" in out, out
    assert err.strip() == "", err
    assert any(r.getMessage().startswith("exporting to ONNX") for r in caplog.records)
    dims = [d.dim_param or d.dim_value
            for d in onnx.load(str(folder / "model.onnx")).graph.input[0].type.tensor_type.shape.dim]
    assert isinstance(dims[0], str) and isinstance(dims[2], str)  # batch and time stay dynamic
    good = (folder / "model.onnx").read_bytes()
    # A check that fails (no difference is below a negative tolerance) leaves no new or temporary file, and an
    # earlier file as it was (export_model writes both formats the same way; TorchScript is the quick one).
    (folder / "model.pt").write_bytes(b"an earlier export")
    before = sorted(p.name for p in folder.iterdir())
    assert main(["export", "--checkpoint", str(folder), "--format", "torchscript", "--tolerance", "-1",
                 "--output", str(folder / "other.pt")]) == 2
    assert "other.pt: exported outputs differ from eager" in _one_error_line(capsys)
    assert main(["export", "--checkpoint", str(folder), "--format", "torchscript", "--tolerance", "-1"]) == 2
    assert sorted(p.name for p in folder.iterdir()) == before and (folder / "model.onnx").read_bytes() == good
    assert (folder / "model.pt").read_bytes() == b"an earlier export"


# -- train --smoke ---------------------------------------------------------------------------------------------
def test_smoke_run_of_a_shipped_dataset_config_then_predict_builds_its_head_without_data(tmp_path, capsys,
                                                                                          monkeypatch):
    """configs/kinetics400.yaml (num_classes auto, 120-frame evaluation clips, bf16, 44 epochs) on an official
    Kinetics-400 tree of 3 classes: --smoke runs the whole pipeline with the smoke settings."""
    from pathlib import Path

    from assemblenet.engine.config import SMOKE_OVERRIDES
    from assemblenet.engine.runlog import read_metrics
    from tests.data.datasets._official_trees import make_kinetics400, make_tiny_videos

    (tmp_path / "videos").mkdir()
    root = make_kinetics400(tmp_path, make_tiny_videos(tmp_path / "videos"))
    notes = root / "annotations"
    config = Path(__file__).resolve().parents[2] / "configs/kinetics400.yaml"
    monkeypatch.chdir(config.parents[1])  # its base: (configs/kinetics600.yaml) is relative to the working directory
    out = tmp_path / "smoke"
    assert main(["train", str(config), "--smoke", "--output", str(out), "--no-progress",
                 "--set", f"data.train={{csv_path: {notes / 'train.csv'}, root: {root}, path_template: auto}}",
                 "--set", f"data.val={{csv_path: {notes / 'validate.csv'}, root: {root}, path_template: auto, "
                          f"classes: {notes / 'train.csv'}}}"]) == 0
    assert f"smoke run passed; report: {out / 'eval'}" in capsys.readouterr().out
    for name in ("config.yaml", "metrics.jsonl", "final_metrics.json", "model.safetensors", "model.safetensors.json",
                 "training_curves.png", "eval/eval_metrics.json", "eval/predictions.txt"):
        assert (out / name).is_file(), name
    used = yaml.safe_load((out / "config.yaml").read_text())
    for key, value in SMOKE_OVERRIDES:
        section, name = key.split(".")
        assert used[section][name] == value, key
    assert used["name"] == "kinetics400" and used["data"]["dataset"] == "kinetics"
    records = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4]
    assert [r["num_videos"] for r in records if r["kind"] == "val"] == [1]  # one view of the one val video
    sidecar = json.loads((out / "model.safetensors.json").read_text())
    assert sidecar["model"]["num_classes"] == 3 and sidecar["input"]["num_frames"] == 4
    # predict rebuilds the 3-class head from the sidecar alone.
    video = root / "val/zumba/zzz_val_01_000003_000013.mp4"
    assert main(["predict", str(video), "--checkpoint", str(out), "--topk", "5", "--json"]) == 0
    top = json.loads(capsys.readouterr().out)
    assert sorted(t["class_name"] for t in top) == ["abseiling", "passing American football (in game)", "zumba"]


def test_smoke_without_output_writes_to_a_new_temporary_folder(tmp_path, monkeypatch, config_path, capsys):
    import tempfile

    from assemblenet.engine.config import smoke_overrides

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folder = dict(smoke_overrides())["output.dir"]
    assert folder.startswith(str(tmp_path / "assemblenet-smoke-")) and (tmp_path / folder).is_dir()
    assert dict(smoke_overrides(tmp_path / "mine"))["output.dir"] == str(tmp_path / "mine")
    # A folder holding a real run is refused (a smoke run removes old checkpoints); an earlier smoke run's is not.
    real = tmp_path / "real"
    (real / "checkpoints").mkdir(parents=True)
    (real / "config.yaml").write_text(yaml.safe_dump({"optim": {"max_steps": 5000}}))
    assert main(["train", str(config_path), "--smoke", "--output", str(real)]) == 2
    assert "holds another training run; a smoke run would replace its checkpoints" in _one_error_line(capsys)
    (real / "config.yaml").write_text(yaml.safe_dump({"optim": {"max_steps": 4}, "data": {"max_videos": 16},
                                                      "model": {"width_multiplier": 0.125}}))
    assert dict(smoke_overrides(real))["output.dir"] == str(real)
    # --print-config shows the smoke config (--set on top) and makes no folder.
    before = sorted(tmp_path.iterdir())
    assert main(["train", str(config_path), "--smoke", "--print-config", "--set", "data.num_frames=6"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["data"]["num_frames"] == 6 and printed["model"]["width_multiplier"] == 0.125
    assert printed["optim"]["max_steps"] == 4 and sorted(tmp_path.iterdir()) == before
