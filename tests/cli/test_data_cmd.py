"""The data sub-commands through ``assemblenet.cli.main.main``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from assemblenet.cli.main import main


@pytest.fixture(scope="module")
def tiny_synthetic(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "syn"
    code = main(["make-synthetic", str(out), "--videos", "8", "--classes", "4", "--size", "32", "--frames", "8",
                 "--seed", "1", "--no-progress"])
    assert code == 0
    return out


def test_make_synthetic_writes_videos_and_both_annotation_formats(tiny_synthetic, capsys):
    files = sorted(p.name for p in tiny_synthetic.iterdir())
    assert files == ["charades_classes.txt", "charades_train.csv", "charades_val.csv", "classes.txt",
                     "kinetics_train.csv", "kinetics_val.csv", "synthetic.json", "videos"]
    assert len(list((tiny_synthetic / "videos").glob("*.mp4"))) == 8
    assert json.loads((tiny_synthetic / "synthetic.json").read_text())["parameters"]["seed"] == 1


def test_check_videos_reports_broken_and_short_files(tiny_synthetic, tmp_path, capsys):
    root = tmp_path / "data"
    shutil.copytree(tiny_synthetic / "videos", root)
    (root / "broken.mp4").write_text("not a video")
    (root / "empty.avi").write_bytes(b"")
    report = tmp_path / "report.json"
    code = main(["check-videos", str(root), "--report", str(report), "--workers", "2", "--min-frames", "4",
                 "--no-progress"])
    assert code == 1
    data = json.loads(report.read_text())
    assert data["checked"] == 10 and data["ok"] == 8 and data["unreadable"] == 2
    assert {Path(b["path"]).name for b in data["bad"]} == {"broken.mp4", "empty.avi"}
    assert "broken.mp4" in capsys.readouterr().out
    # A minimum longer than the videos marks them too short.
    code = main(["check-videos", str(tiny_synthetic / "kinetics_train.csv"), "--report", str(report),
                 "--min-frames", "9", "--full", "--workers", "1", "--no-progress"])
    data = json.loads(report.read_text())
    assert code == 1 and data["too_short"] == data["checked"] > 0


def test_check_videos_all_good_exits_zero(tiny_synthetic, tmp_path):
    report = tmp_path / "r.json"
    code = main(["check-videos", str(tiny_synthetic / "charades_val.csv"), "--root", str(tiny_synthetic / "videos"),
                 "--report", str(report), "--no-progress"])
    assert code == 0 and json.loads(report.read_text())["bad"] == []


def test_flow_command_is_resumable(tiny_synthetic, tmp_path, capsys):
    out = tmp_path / "flow"
    args = ["flow", str(tiny_synthetic / "videos"), "--out", str(out), "--method", "farneback", "--format",
            "float16", "--workers", "2", "--no-progress"]
    assert main(args) == 0
    assert "8 computed, 0 already done, 0 failed" in capsys.readouterr().out
    stored = np.load(out / "syn_00000.flow.npy")
    assert stored.shape == (7, 32, 32, 2)
    assert main(args) == 0
    assert "0 computed, 8 already done" in capsys.readouterr().out


def test_flow_tvl1_default_output_folder(tiny_synthetic, tmp_path):
    root = tmp_path / "clips"
    root.mkdir()
    shutil.copy(tiny_synthetic / "videos" / "syn_00001.mp4", root / "a.mp4")
    assert main(["flow", str(root), "--max-frames", "3", "--workers", "1", "--no-progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "clips_flow" / "a").iterdir()) == [
        "flow_x_00001.jpg", "flow_x_00002.jpg", "flow_y_00001.jpg", "flow_y_00002.jpg"]


def test_bad_input_gives_one_line_error(tmp_path, capsys):
    assert main(["check-videos", str(tmp_path / "nowhere"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("assemblenet: error: ") and "nowhere" in err and err.count("\n") == 1
    assert main(["make-synthetic", str(tmp_path / "x"), "--classes", "20", "--no-progress"]) == 2
    assert "--classes must be between 2 and 12" in capsys.readouterr().err
    bad_list = tmp_path / "list.csv"
    bad_list.write_text("path,label\nonly_a_path\n")
    assert main(["flow", str(bad_list), "--no-progress"]) == 2
    assert f"{bad_list}:2:" in capsys.readouterr().err


def test_make_synthetic_compositional_task(tmp_path, capsys):
    out = tmp_path / "comp"
    assert main(["make-synthetic", str(out), "--task", "compositional", "--train-videos", "16", "--val-videos", "16",
                 "--test-videos", "16", "--seed", "2", "--no-progress"]) == 0
    assert "48 compositional videos (16 classes; 16 train / 16 val / 16 test)" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["classes.txt", "kinetics_test.csv", "kinetics_train.csv",
                                                     "kinetics_val.csv", "synthetic.json", "videos"]
    manifest = json.loads((out / "synthetic.json").read_text())
    assert manifest["task"] == "compositional"
    assert manifest["parameters"]["size"] == 32 and len(manifest["classes"]) == 16
    # The default length: one 8-frame clip (the shipped configs' data.num_frames) is the whole video.
    assert manifest["parameters"]["num_frames"] == 8 and manifest["parameters"]["seed"] == 2
    assert manifest["parameters"]["return_turns_at_frame"] == 4


def test_make_synthetic_rejects_flags_of_the_other_task(tmp_path, capsys):
    assert main(["make-synthetic", str(tmp_path / "x"), "--task", "compositional", "--classes", "4",
                 "--no-progress"]) == 2
    assert "--classes applies only to --task benchmark" in capsys.readouterr().err
    assert main(["make-synthetic", str(tmp_path / "y"), "--test-videos", "32", "--no-progress"]) == 2
    assert "--test-videos applies only to --task compositional" in capsys.readouterr().err
    assert main(["make-synthetic", str(tmp_path / "z"), "--task", "compositional", "--val-videos", "100",
                 "--no-progress"]) == 2
    assert "--val-videos must be a positive multiple of 16" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists() and not (tmp_path / "z").exists()


def test_check_videos_report_defaults_to_beside_the_data(tiny_synthetic, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "clips"
    shutil.copytree(tiny_synthetic / "videos", root)
    assert main(["check-videos", str(root), "--workers", "1", "--no-progress"]) == 0
    assert json.loads((root / "check-videos-report.json").read_text())["checked"] == 8
    assert f"report written to {root / 'check-videos-report.json'}" in capsys.readouterr().out
    listed = shutil.copy(tiny_synthetic / "kinetics_val.csv", tmp_path / "val.csv")
    assert main(["check-videos", str(listed), "--root", str(tiny_synthetic), "--no-progress"]) == 0
    assert (tmp_path / "val.check-videos-report.json").is_file()
    assert not (tmp_path / "check-videos-report.json").exists()


# -- check-dataset --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_videos(tmp_path_factory) -> dict[str, bytes]:
    from tests.data.datasets._official_trees import make_tiny_videos

    return make_tiny_videos(tmp_path_factory.mktemp("tiny"))


def _config(path: Path, dataset: str, train: dict, val: dict, num_classes: int, out: Path) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({"name": path.stem, "model": {"name": "assemblenet50", "num_classes": num_classes},
                                    "data": {"dataset": dataset, "train": train, "val": val, "num_frames": 2},
                                    "output": {"dir": str(out)}}))
    return path


def test_check_dataset_reports_counts_classes_and_histogram(tmp_path, tiny_videos, capsys):
    from tests.data.datasets._official_trees import make_ucf101

    root = make_ucf101(tmp_path, tiny_videos)
    config = _config(tmp_path / "ucf101.yaml", "ucf101", {"root": str(root), "split": "train", "fold": 1},
                     {"root": str(root), "split": "test", "fold": 1}, 3, tmp_path / "run")
    assert main(["check-dataset", str(config), "--workers", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "train: 5 listed, 4 found, 1 missing, 1 unreadable, 3 usable; 3 classes (single-label)" in out
    assert "val: 2 listed, 2 found, 0 missing, 0 unreadable, 2 usable; 3 classes" in out
    assert "model.num_classes 3: matches the train set's 3" in out
    report = json.loads((tmp_path / "run/dataset_check/dataset_check.json").read_text())
    train = report["splits"][0]
    assert train["videos_per_class"] == {"ApplyEyeMakeup": 1, "HandstandPushups": 1, "YoYo": 1}
    assert [Path(p).name for p in train["missing_videos"]] == ["v_YoYo_g09_c01.avi"]
    assert [Path(p).name for p in train["unreadable_videos"]] == ["v_ApplyEyeMakeup_g09_c01.avi"]
    assert report["problems"] == []
    png = (tmp_path / "run/dataset_check/class_histogram.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_shipped_config_checks_a_subset_of_the_classes_and_shows_the_label_mapping(tmp_path, tiny_videos, capsys):
    from tests.data.datasets._official_trees import make_ucf101

    root = make_ucf101(tmp_path, tiny_videos)  # 3 of UCF101's 101 classes
    config = Path(__file__).resolve().parents[2] / "configs/ucf101.yaml"
    assert main(["check-dataset", str(config), "--set", f"data.train.root={root}", "--set", f"data.val.root={root}",
                 "--workers", "1", "--no-progress", "--output", str(tmp_path / "r"), "--show", "2"]) == 0
    out = capsys.readouterr().out
    assert "model.num_classes auto: 3, the train set's class count" in out
    shown = [line.strip() for line in out.splitlines() if " -> " in line]
    assert len(shown) == 4  # two per split
    assert shown[0].startswith("v_ApplyEyeMakeup_g08_c01 ") and shown[0].endswith(" -> ApplyEyeMakeup (0)")
    assert shown[1].endswith("v_HandStandPushups_g08_c01.avi -> HandstandPushups (1)")
    assert shown[3].endswith("v_HandStandPushups_g01_c01.avi -> HandstandPushups (1)")


def test_check_dataset_help_states_the_exit_codes_and_the_workers_default(capsys):
    with pytest.raises(SystemExit):
        main(["check-dataset", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Exit status: 0 the run can start. 1 the run would fail" in text
    assert "2 a list or the config cannot be read: one line 'assemblenet: error: FILE:LINE: ...'" in text
    assert "(default: the cores, at most 8; " in text and "--show N" in text


def test_check_dataset_fails_in_one_line_where_the_run_would(tmp_path, tiny_videos, capsys):
    from tests.data.datasets._official_trees import make_kinetics400, make_ucf101

    root = make_ucf101(tmp_path, tiny_videos)
    config = _config(tmp_path / "ucf.yaml", "ucf101", {"root": str(root)}, {"root": str(root), "split": "test"},
                     101, tmp_path / "run")
    assert main(["check-dataset", str(config), "--workers", "1", "--no-progress", "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("assemblenet: check-dataset: the run would fail: model.num_classes is 101, but the train "
                          "set has 3 classes")
    # The Kinetics test CSV as the val set: no labels to evaluate on.
    kinetics = make_kinetics400(tmp_path, tiny_videos)
    notes = kinetics / "annotations"
    config = _config(tmp_path / "k400.yaml", "kinetics", {"csv_path": str(notes / "train.csv"), "root": str(kinetics)},
                     {"csv_path": str(notes / "test.csv"), "root": str(kinetics), "classes": str(notes / "train.csv")},
                     3, tmp_path / "run")
    assert main(["check-dataset", str(config), "--workers", "1", "--no-progress", "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "val: 1 of 1 videos have no label" in err
    # A malformed list stops the check with the file and line.
    (root / "ucfTrainTestlist/trainlist01.txt").write_text("YoYo/v_YoYo_g08_c01.avi 7\n")
    config = _config(tmp_path / "ucf.yaml", "ucf101", {"root": str(root)}, {"root": str(root), "split": "test"},
                     3, tmp_path / "run")
    assert main(["check-dataset", str(config), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("assemblenet: error: ")
    assert "trainlist01.txt:1: label 7 out of range 1..3" in err


def test_check_videos_on_an_official_kinetics_csv(tmp_path, tiny_videos, capsys):
    from tests.data.datasets._official_trees import make_kinetics400

    root = make_kinetics400(tmp_path, tiny_videos)
    report = tmp_path / "r.json"
    assert main(["check-videos", str(root / "annotations/train.csv"), "--root", str(root), "--report", str(report),
                 "--workers", "1", "--no-progress"]) == 1
    data = json.loads(report.read_text())
    assert (data["checked"], data["ok"], data["unreadable"]) == (5, 3, 2)  # one missing, one not a video
    assert {Path(b["path"]).name for b in data["bad"]} == {"_0ZXa9jcVa4_000109_000119.mp4",
                                                          "0lJAAqO6SS4_000005_000015.mp4"}


def test_make_synthetic_refuses_a_folder_that_is_not_empty_without_overwrite(tmp_path, capsys):
    out = tmp_path / "data"
    out.mkdir()
    (out / "notes.txt").write_text("someone's files")
    argv = ["make-synthetic", str(out), "--videos", "4", "--classes", "2", "--size", "16", "--frames", "8",
            "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("assemblenet: error: ") and "not empty" in err[0] \
        and "--overwrite" in err[0], err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # nothing written
    assert main([*argv, "--overwrite"]) == 0
    assert (out / "synthetic.json").is_file() and (out / "notes.txt").is_file()
