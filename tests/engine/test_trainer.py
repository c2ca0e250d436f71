"""The training loop on the tiny synthetic set: outputs, schedule, resume after SIGKILL, divergence, options,
and the programmatic API the search uses."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from assemblenet.engine import checkpoint as ckpt
from assemblenet.engine.config import load_config
from assemblenet.engine.loss import TrainingDivergedError
from assemblenet.engine.optim import lr_factor
from assemblenet.engine.runlog import read_metrics
from assemblenet.engine.trainer import Trainer, run_training
from assemblenet.errors import DataError
from tests.engine._helpers import TRAIN_VIDEOS, tiny_config

REPO = Path(__file__).resolve().parents[2]


def test_training_writes_a_complete_run_and_follows_the_schedule(synthetic_root, tmp_path):
    out = tmp_path / "run"
    cfg = tiny_config(synthetic_root, out, optim={"epochs": 2, "warmup_epochs": 1},
                      train={"checkpoint_every_steps": 2, "keep_checkpoints": 3})
    result = run_training(cfg)
    steps_per_epoch = TRAIN_VIDEOS // 4
    assert result.steps == 2 * steps_per_epoch
    for name in ("config.yaml", "metrics.jsonl", "final_metrics.json", "model.safetensors",
                 "model.safetensors.json", "training_curves.png", "eval/predictions.txt", "eval/per_class_ap.csv",
                 "eval/confusion_matrix.csv", "eval/confusion_matrix.png", "eval/eval_metrics.json"):
        assert (out / name).is_file(), name
    assert [s for s, _ in ckpt.list_checkpoints(out)][-1] == result.steps

    records = read_metrics(out / "metrics.jsonl")
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == list(range(1, result.steps + 1))
    peak = 0.1  # lr 0.1 at reference batch 4 = the batch size
    for r in train:  # step s logs the rate of update s, the (s-1)-th counted from 0
        expected = peak * lr_factor(r["step"] - 1, total_steps=result.steps, warmup_steps=steps_per_epoch)
        assert r["lr"] == pytest.approx(expected, rel=1e-6)
    assert all(math.isfinite(r["loss"]) for r in train)
    val = [r for r in records if r["kind"] == "val"]
    assert [r["step"] for r in val] == [steps_per_epoch, 2 * steps_per_epoch]

    final = json.loads((out / "final_metrics.json").read_text())
    assert final["metrics"]["top1"] == pytest.approx(result.metrics["top1"])
    assert {"map", "map_sklearn", "top1", "top5", "mean_class_accuracy", "metric"} <= set(result.metrics)
    lines = (out / "eval/predictions.txt").read_text().splitlines()
    assert len(lines) == result.metrics["num_videos"] and len(lines[0].split()) == 1 + 6
    sidecar = json.loads((out / "model.safetensors.json").read_text())
    assert sidecar["class_names"][:2] == ["slide_right", "slide_left"] and sidecar["multi_label"] is False
    # model.num_classes: auto (the default) took the training set's 6 classes; the sidecar records the count.
    assert result.model.num_classes == 6
    assert sidecar["model"]["num_classes"] == 6 and sidecar["config"]["model"]["num_classes"] == 6

    # The learned graph carries what the connection logits learned, at the unscaled widths.
    assert result.learned_graph.has_edge_weights
    assert result.learned_graph.nodes[14].filters == 512
    for (source, target), weight in result.connection_weights.items():
        node = result.learned_graph.nodes[target]
        if len(node.inputs) > 1:
            assert node.edge_weights[node.inputs.index(source)] == pytest.approx(weight)

    # Restarting a finished run resumes at its end: no more steps, the same metrics.
    again = run_training(cfg)
    assert again.resumed_from is not None and again.steps == result.steps
    assert again.metrics == pytest.approx(result.metrics)


def _start_train(config_path: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "assemblenet.cli.main", "train", str(config_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=REPO)


def test_sigkill_mid_run_then_restart_matches_an_uninterrupted_run(synthetic_root, tmp_path):
    sections = dict(optim={"epochs": 4, "warmup_epochs": 1}, train={"checkpoint_every_steps": 3},
                    eval={"num_clips": 2})
    reference = run_training(tiny_config(synthetic_root, tmp_path / "reference", **sections))

    out = tmp_path / "killed"
    config_path = tmp_path / "killed.yaml"
    config_path.write_text(yaml.safe_dump(tiny_config(synthetic_root, out, **sections)))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    process = _start_train(config_path, env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if any(step >= 6 for step, _ in ckpt.list_checkpoints(out)):
            break
        time.sleep(0.005)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = ckpt.list_checkpoints(out)[-1][0]
    assert killed_at < reference.steps and not (out / "final_metrics.json").exists()

    finished = subprocess.run([sys.executable, "-m", "assemblenet.cli.main", "train", str(config_path)],
                              capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert f"resumed from {ckpt.checkpoint_path(out, killed_at)}" in finished.stderr
    final = json.loads((out / "final_metrics.json").read_text())["metrics"]
    for key in ("map", "map_sklearn", "top1", "top5", "mean_class_accuracy"):
        assert final[key] == pytest.approx(reference.metrics[key], abs=1e-6), key
    resumed_weights = load_file(str(out / "model.safetensors"))
    for name, tensor in reference.model.state_dict().items():
        torch.testing.assert_close(resumed_weights[name], tensor, rtol=1e-5, atol=1e-6, msg=name)
    steps = [r["step"] for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "train"]
    assert steps == list(range(1, reference.steps + 1))  # records of the lost steps were replaced, not doubled


class _NaNAfter(torch.utils.data.Dataset):
    """Serves the wrapped dataset, but NaN clips from the ``good``-th item on (a diverging run)."""

    def __init__(self, dataset, good: int) -> None:
        self.dataset, self.good, self.served = dataset, good, 0
        self.num_classes, self.class_names, self.multi_label = dataset.num_classes, dataset.class_names, False

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        clip, target, meta = self.dataset[index]
        self.served += 1
        return (clip * float("nan") if self.served > self.good else clip), target, meta


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(synthetic_root, tmp_path):
    from assemblenet.engine.datasets import build_split

    out = tmp_path / "run"
    cfg = load_config(tiny_config(synthetic_root, out, train={"checkpoint_every_steps": 2}))
    train = _NaNAfter(build_split(cfg, "train"), good=4 * 3)  # three good steps of batch 4
    with pytest.raises(TrainingDivergedError) as info:
        run_training(cfg, train_dataset=train)
    message = str(info.value)
    assert "\n" not in message and "step 4" in message and str(ckpt.checkpoint_path(out, 2)) in message
    assert [s for s, _ in ckpt.list_checkpoints(out)] == [2]
    state = ckpt.load_checkpoint(ckpt.checkpoint_path(out, 2))
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
    assert read_metrics(out / "metrics.jsonl")[-1]["kind"] == "error"


def test_frozen_bn_ema_bf16_and_clipping(synthetic_root):
    cfg = load_config(tiny_config(synthetic_root, None, optim={"max_steps": 3, "grad_clip_norm": 0.5},
                                  train={"amp": "bf16", "ema_decay": 0.9}, model={"frozen_bn": True}))
    trainer = Trainer(cfg)
    initial = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    result = trainer.fit()
    assert result.steps == 3 and math.isfinite(result.metrics["map"])
    trained = trainer.model.state_dict()
    bn_stats = [k for k in trained if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert bn_stats and all(torch.equal(trained[k], initial[k]) for k in bn_stats)  # frozen BN
    weights = [k for k in trained if k.endswith("conv.weight")]
    assert any(not torch.equal(trained[k], initial[k]) for k in weights)  # yet the network trained
    assert result.model is trainer.ema.module  # evaluation used the EMA weights
    ema = trainer.ema.module.state_dict()
    assert any(not torch.equal(ema[k], trained[k]) for k in weights)
    assert trainer.scheduler.last_epoch == 3


def test_fp16_on_cpu_is_rejected_up_front(synthetic_root):
    from assemblenet.errors import ConfigError

    with pytest.raises(ConfigError, match="train.amp"):
        run_training(tiny_config(synthetic_root, None, train={"amp": "fp16"}))


def test_search_api_trains_a_graph_within_a_step_budget_without_writing(synthetic_root, tmp_path, monkeypatch):
    from assemblenet.graph import official_graph

    monkeypatch.chdir(tmp_path)
    base = tiny_config(synthetic_root, tmp_path / "should_not_exist")
    base["model"]["width_multiplier"] = 1.0
    graph = official_graph("asn50", with_weights=False)
    kwargs = dict(graph=graph, output_dir=None, seed=5, max_steps=3, width_multiplier=0.125,
                  overrides={"optim.lr": 0.05}, device="cpu")
    first = run_training(base, **kwargs)
    second = run_training(base, **kwargs)
    assert first.steps == 3 and not (tmp_path / "should_not_exist").exists() and not list(tmp_path.iterdir())
    assert first.metrics == second.metrics and first.connection_weights == second.connection_weights
    assert set(first.connection_weights) == {(e.source, e.target) for e in graph.edges()}
    assert first.learned_graph.nodes[14].filters == 512 and first.learned_graph.has_edge_weights
    assert "top1" in first.metrics and first.metric == first.metrics["top1"]


def test_multi_label_charades_style_training_uses_bce_and_charades_map(synthetic_root, tmp_path):
    out = tmp_path / "run"
    cfg = tiny_config(synthetic_root, out, optim={"max_steps": 4},
                      data={"train": {"root": str(synthetic_root), "split": "train", "annotation": "charades"},
                            "val": {"root": str(synthetic_root), "split": "val", "annotation": "charades"}})
    trainer = Trainer(load_config(cfg))
    assert trainer.multi_label and trainer.loss_kind == "bce" and trainer.primary_metric == "map"
    result = trainer.fit()
    assert result.metric == result.metrics["map"] and "mean_class_accuracy" not in result.metrics
    ids, _ = zip(*(line.split(maxsplit=1) for line in (out / "eval/predictions.txt").read_text().splitlines()))
    csv_ids = [line.split(",")[0] for line in (synthetic_root / "charades_val.csv").read_text().splitlines()[1:]]
    assert sorted(ids) == sorted(csv_ids)  # every validation video, multi-action ones included
    assert not (out / "eval/confusion_matrix.csv").exists()


class _WorkerPid(torch.utils.data.Dataset):
    """Adds the serving process id to each sample's meta; everything else is the wrapped dataset's."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index):
        clip, target, meta = self.inner[index]
        meta["pid"] = os.getpid()
        return clip, target, meta

    def __getattr__(self, name):
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


def test_training_workers_persist_across_epochs(synthetic_root):
    # The same worker process serves every epoch, so what it caches (video indexes, known-bad files) survives.
    from assemblenet.data import ClipSampling, ClipViews, build_dataset

    cfg = load_config(tiny_config(synthetic_root, None, data={"num_workers": 1}))
    dataset = _WorkerPid(build_dataset("synthetic", root=synthetic_root, split="train",
                                       sampling=ClipSampling(num_frames=4), views=ClipViews(crop_size=32)))
    trainer = Trainer(cfg, train_dataset=dataset, progress=False)
    served = []
    for epoch in range(2):
        trainer.epoch = epoch
        loader, _ = trainer._train_loader()
        served.append({pid for _clip, _target, meta in loader for pid in meta["pid"]})
    assert len(served[0]) == 1 and served[0] == served[1] and os.getpid() not in served[0]


def test_clips_per_video_keeps_clips_per_step_and_multiplies_steps_per_epoch(synthetic_root):
    from assemblenet.errors import ConfigError

    cfg = load_config(tiny_config(synthetic_root, None, optim={"max_steps": 2},
                                  data={"clips_per_video": 2, "prefetch_factor": 3}))
    trainer = Trainer(cfg)
    assert trainer.items_per_batch == 2 and trainer.steps_per_epoch == TRAIN_VIDEOS // 2  # 2x the steps of k=1
    loader, _ = trainer._train_loader()
    clips, targets, meta = next(iter(loader))
    assert clips.shape[0] == targets.shape[0] == 4 and clips.dtype == torch.uint8  # batch_size clips per step
    assert meta["video_index"][0] == meta["video_index"][1]  # two clips of one decoded video
    assert trainer.fit().steps == 2
    with pytest.raises(ConfigError, match="multiple of data.clips_per_video"):
        load_config(tiny_config(synthetic_root, None, data={"clips_per_video": 3}))
    workers = Trainer(load_config(tiny_config(synthetic_root, None, data={"num_workers": 1, "prefetch_factor": 3})))
    assert workers._train_loader()[0].prefetch_factor == 3  # data.prefetch_factor reaches the DataLoader


def test_run_eval_works_before_fit(synthetic_root, tmp_path):
    # run_eval used a metrics log that only fit() created (AttributeError before).
    from assemblenet.engine.runlog import read_metrics

    trainer = Trainer(load_config(tiny_config(synthetic_root, tmp_path / "run")))
    result = trainer.run_eval()
    assert result.metrics["num_videos"] == 11
    trainer.metrics_log.close()
    assert [row["kind"] for row in read_metrics(tmp_path / "run" / "metrics.jsonl")] == ["val"]


def test_a_bad_val_list_fails_before_the_first_step(synthetic_root, tmp_path):
    # A copy of the set whose val CSV names a class that classes.txt lacks.
    root = tmp_path / "data"
    root.mkdir()
    for entry in synthetic_root.iterdir():
        (root / entry.name).symlink_to(entry)
    (root / "kinetics_val.csv").unlink()
    lines = (synthetic_root / "kinetics_val.csv").read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ",juggling"
    (root / "kinetics_val.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    with pytest.raises(DataError, match=r"kinetics_val.csv:3: .*'juggling'"):
        run_training(tiny_config(root, out))
    assert not out.exists()  # no step ran: no checkpoint, no metrics, not even the folder


def test_an_explicit_num_classes_is_checked_against_the_training_set(synthetic_root):
    from assemblenet.errors import ConfigError

    cfg = load_config(tiny_config(synthetic_root, None, model={"num_classes": 5}))
    with pytest.raises(ConfigError, match=r"key 'model.num_classes': 5, but the training set has 6 classes"):
        Trainer(cfg)


def test_max_videos_keeps_videos_spread_over_the_list_and_every_class(synthetic_root):
    from assemblenet.engine.datasets import build_split

    full = build_split(load_config(tiny_config(synthetic_root, None)), "train")
    kept = build_split(load_config(tiny_config(synthetic_root, None, data={"max_videos": 5})), "train")
    assert [item.path for item in kept.items] == [full.items[k].path for k in (0, 4, 8, 12, 16)]
    assert kept.class_names == full.class_names and len(kept) == 5


def test_every_relative_path_of_a_config_is_relative_to_the_working_directory(synthetic_root, tmp_path,
                                                                               monkeypatch, caplog):
    """base:, the data roots, model.pretrained and output.dir of a config in a sub-folder all resolve against the
    working directory, not the config's folder."""
    import logging

    from tests.engine._helpers import save_tiny_weights

    work = tmp_path / "work"
    (work / "configs").mkdir(parents=True)
    (work / "syn").symlink_to(synthetic_root)
    save_tiny_weights(work / "init/model.safetensors")
    base = tiny_config(Path("syn"), Path("runs/relative"), model={"pretrained": "init/model.safetensors"},
                       data={"max_videos": 4}, optim={"max_steps": 1, "warmup_epochs": 0})
    (work / "configs/base.yaml").write_text(yaml.safe_dump(base))
    (work / "configs/child.yaml").write_text("base: configs/base.yaml\nname: child\n")
    monkeypatch.chdir(work)
    with caplog.at_level(logging.INFO, logger="assemblenet.engine.modeling"):
        result = run_training("configs/child.yaml")
    assert "initialised from init/model.safetensors" in caplog.text
    assert result.steps == 1 and result.metrics["num_videos"] == 4
    assert (work / "runs/relative/model.safetensors").is_file() and not (work / "configs/runs").exists()


@pytest.mark.parametrize("preflight", ["decode", "exists"])
def test_skipped_videos_are_counted_per_split_in_every_output(synthetic_root, tmp_path, preflight):
    """Half the training videos are unreadable and one validation video is missing: each is skipped, and the
    count (with the files) is in metrics.jsonl, final_metrics.json and eval_metrics.json. The pre-flight finds
    them up front (decode); with preflight: exists the loader meets the unreadable ones mid-run, in its
    workers, and they are counted just the same."""
    lines = (synthetic_root / "kinetics_train.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:17]
    broken = tmp_path / "broken"
    broken.mkdir()
    train_rows = []
    for k, row in enumerate(rows):
        path, label = row.split(",", 1)
        if k % 2:
            (broken / Path(path).name).write_text("not a video")
            path = str(broken / Path(path).name)
        else:
            path = str(synthetic_root / path)
        train_rows.append(f"{path},{label}")
    train_list = tmp_path / "train.csv"
    train_list.write_text("\n".join([header, *train_rows]) + "\n")
    val_lines = (synthetic_root / "kinetics_val.csv").read_text().splitlines()
    val_list = tmp_path / "val.csv"
    val_list.write_text("\n".join([val_lines[0], "videos/absent.mp4," + val_lines[1].split(",", 1)[1],
                                   *val_lines[1:]]) + "\n")
    classes = str(synthetic_root / "classes.txt")
    cfg = tiny_config(synthetic_root, tmp_path / "run", optim={"max_steps": 4, "warmup_steps": 1},
                      data={"dataset": "kinetics", "num_workers": 1,
                            "train": {"csv_path": str(train_list), "classes": classes},
                            "val": {"csv_path": str(val_list), "root": str(synthetic_root), "classes": classes},
                            **({} if preflight == "decode" else {"preflight": preflight})})  # decode: the default
    result = run_training(cfg)
    unreadable = {str(broken / Path(row.split(",")[0]).name) for k, row in enumerate(rows) if k % 2}
    assert set(result.skipped_videos["train"]) <= unreadable
    if preflight == "decode":
        assert set(result.skipped_videos["train"]) == unreadable  # every one, found before the first step
    else:
        assert result.skipped_videos["train"]  # those the 4 steps met
    assert list(result.skipped_videos["val"]) == [str(synthetic_root / "videos/absent.mp4")]

    final = json.loads((tmp_path / "run" / "final_metrics.json").read_text())
    assert final["skipped_videos"] == {"train": len(result.skipped_videos["train"]), "val": 1}
    assert set(final["skipped"]["train"]) == set(result.skipped_videos["train"])
    report = json.loads((tmp_path / "run" / "eval" / "eval_metrics.json").read_text())
    assert report["skipped_videos"] == 1 and list(report["skipped"]) == list(result.skipped_videos["val"])
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    train_counts = [r["skipped_videos"] for r in records if r["kind"] == "train"]
    assert train_counts[-1] == len(result.skipped_videos["train"]) and train_counts == sorted(train_counts)
    val_counts = [r["skipped_videos"] for r in records if r["kind"] == "val"]
    assert val_counts and set(val_counts) == {1}
    listed = {path for r in records if r["kind"] == "skipped" and r["split"] == "train" for path in r["videos"]}
    assert listed == set(result.skipped_videos["train"])
