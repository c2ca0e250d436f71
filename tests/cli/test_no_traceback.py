"""No traceback, anywhere in the CLI: every sub-command given bad arguments or bad files exits with status 2 and
exactly one line on stderr, ``assemblenet: error: ...``, naming what is wrong.

Table-driven and in-process (``main(argv)``): an exception escaping ``main`` is what a user would see as a
traceback, so the test fails on it. Each row also says what the line must name.
"""

from __future__ import annotations

import collections
import copy
import io
import logging
import traceback
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Callable

import pytest
import torch
import yaml

from assemblenet.cli.main import main
from tests.engine._helpers import save_tiny_weights, tiny_config


class NotATensor:
    """Pickled by reference into a .pt file: what torch's weights-only loader refuses."""


def _write_config(path: Path, cfg: dict) -> str:
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory, synthetic_root) -> dict[str, str]:
    """Every bad (and good) input the table refers to, written once."""
    root = tmp_path_factory.mktemp("bad_inputs")
    good = tiny_config(synthetic_root, root / "run")
    paths: dict[str, str] = {"root": str(root), "synthetic": str(synthetic_root)}
    paths["config"] = _write_config(root / "good.yaml", good)

    # Case 1: non-UTF-8 bytes in a list (Latin-1 'caf\xe9 dancing'), and a JSON list starting with a UTF-16 mark.
    latin = root / "latin1_train.csv"
    latin.write_bytes(b"path,label\nvideos/syn_00000.mp4,caf\xe9 dancing\n")
    kinetics = copy.deepcopy(good)
    kinetics["data"].update(dataset="kinetics", train={"csv_path": str(latin), "root": str(synthetic_root)},
                            val={"csv_path": str(latin), "root": str(synthetic_root)})
    paths["latin1_config"] = _write_config(root / "latin1.yaml", kinetics)
    paths["latin1_list"] = str(latin)
    utf16 = root / "list.csv"
    utf16.write_bytes("path,label\nvideos/syn_00000.mp4,a\n".encode("utf-16"))
    paths["utf16_list"] = str(utf16)

    # Case 2: every validation video missing.
    missing_val = root / "missing_val.csv"
    missing_val.write_text("path,label\nabsent/a.mp4,slide_right\nabsent/b.mp4,slide_left\n")
    lists = copy.deepcopy(good)
    lists["data"].update(dataset="kinetics",
                         train={"csv_path": str(Path(synthetic_root) / "kinetics_train.csv"),
                                "classes": str(Path(synthetic_root) / "classes.txt")},
                         val={"csv_path": str(missing_val), "root": str(synthetic_root),
                              "classes": str(Path(synthetic_root) / "classes.txt")})
    paths["missing_val_config"] = _write_config(root / "missing_val.yaml", lists)

    # Case 9: a .pt that is not weights-only.
    evil = root / "step_00000001.pt"
    torch.save({"model": {}, "extra": collections.OrderedDict(x=NotATensor())}, evil)
    paths["evil_pt"] = str(evil)
    paths["weights"] = str(save_tiny_weights(root / "weights" / "model.safetensors"))
    paths["video"] = str(next((Path(synthetic_root) / "videos").glob("*.mp4")))
    not_video = root / "clip.mp4"
    not_video.write_text("not a video")
    paths["not_video"] = str(not_video)

    # Case 11: a folder that is not empty.
    used = root / "used"
    used.mkdir()
    (used / "notes.txt").write_text("someone's files")
    paths["used_folder"] = str(used)

    search = root / "search.yaml"
    search.write_text(yaml.safe_dump({"name": "t", "fitness": {"kind": "toy"},
                                      "search": {"max_evaluations": 2, "batch_size": 1}}))
    paths["search_config"] = str(search)
    bad_yaml = root / "bad.yaml"
    bad_yaml.write_bytes(b"model: {name: caf\xe9}\n")
    paths["latin1_yaml"] = str(bad_yaml)
    return paths


# (row id, argv from the files above, what the one line must contain)
Row = tuple[str, Callable[[dict[str, str]], list[str]], str]
ROWS: list[Row] = [
    # usage errors
    ("no-such-option", lambda f: ["train", f["config"], "--bogus"], "unrecognized arguments: --bogus"),
    ("missing-argument", lambda f: ["evaluate", f["config"]], "--checkpoint"),
    ("not-an-integer", lambda f: ["check-videos", f["root"], "--workers", "many"], "--workers"),
    ("search-workers-zero", lambda f: ["search", f["search_config"], "--workers", "0"], "executor.workers"),
    ("search-budget-negative", lambda f: ["search", f["search_config"], "--max-evaluations", "-1"],
     "search.max_evaluations"),
    ("demo-evaluations-zero", lambda f: ["demo", "--evaluations", "0", "--output", f["root"] + "/demo"],
     "--evaluations"),
    # case 7: --frames
    ("export-frames-1", lambda f: ["export", "--checkpoint", f["weights"], "--format", "onnx", "--frames", "1"],
     "--frames: expected an integer >= 2, got 1"),
    ("export-frames-1-torchscript",
     lambda f: ["export", "--checkpoint", f["weights"], "--format", "torchscript", "--frames", "1"],
     "--frames: expected an integer >= 2"),
    # configs
    ("missing-config", lambda f: ["train", f["root"] + "/nope.yaml"], "config file not found"),
    ("latin1-config", lambda f: ["train", f["latin1_yaml"]], "byte offset"),
    ("unknown-key", lambda f: ["train", f["config"], "--set", "optim.lrr=0.1"], "'optim.lrr'"),
    ("bad-type", lambda f: ["check-dataset", f["config"], "--set", "data.batch_size=many"], "'data.batch_size'"),
    # case 5: registry lookups name the key and the choices, in train, check-dataset and evaluate alike
    ("train-unknown-model", lambda f: ["train", f["config"], "--set", "model.name=resnet50"],
     "key 'model.name': unknown model 'resnet50'; choices: assemblenet"),
    ("check-dataset-unknown-model", lambda f: ["check-dataset", f["config"], "--set", "model.name=resnet50"],
     "key 'model.name': unknown model 'resnet50'; choices: "),
    ("evaluate-unknown-model",
     lambda f: ["evaluate", f["config"], "--checkpoint", f["weights"], "--set", "model.name=resnet50"],
     "key 'model.name': unknown model"),
    ("unknown-dataset", lambda f: ["train", f["config"], "--set", "data.dataset=imagenet"],
     "key 'data.dataset': unknown dataset 'imagenet'; choices: charades"),
    ("unknown-graph", lambda f: ["train", f["config"], "--set", "model.graph=asn999"], "key 'model.graph'"),
    ("describe-unknown-model", lambda f: ["describe", "assemblenet5"],
     "unknown model 'assemblenet5': expected a preset"),
    # case 6: device choices
    ("predict-unknown-device", lambda f: ["predict", f["video"], "--checkpoint", f["weights"], "--device", "tpu"],
     "--device: unknown device 'tpu'; choices: auto, cpu, cuda or cuda:N"),
    ("train-unknown-device", lambda f: ["train", f["config"], "--set", "train.device=tpu"], "'train.device'"),
    ("predict-cuda-without-gpu", lambda f: ["predict", f["video"], "--checkpoint", f["weights"], "--device", "cuda"],
     "--device: 'cuda' requested but no GPU is available"),
    ("flow-unknown-device", lambda f: ["flow", f["video"], "--device", "tpu", "--output", f["root"] + "/flow"],
     "--device: unknown device 'tpu'"),
    # case 10: a null dataset argument names its key
    ("null-csv-path", lambda f: ["train", f["config"], "--set", "data.dataset=kinetics",
                                 "--set", "data.train.csv_path=null"], "key 'data.train.csv_path': null"),
    ("check-dataset-null-csv-path", lambda f: ["check-dataset", f["config"], "--set", "data.dataset=kinetics",
                                               "--set", "data.train.csv_path=null"], "'data.train.csv_path'"),
    ("unknown-dataset-argument", lambda f: ["train", f["config"], "--set", "data.train.colour=blue"],
     "'data.train.colour': not an argument"),
    # case 1: encodings, in every command that reads a list
    ("train-latin1-list", lambda f: ["train", f["latin1_config"]], "latin1_train.csv:2: byte offset 35"),
    ("check-dataset-latin1-list", lambda f: ["check-dataset", f["latin1_config"], "--no-progress"],
     "latin1_train.csv:2: byte offset 35: b'\\xe9' is not UTF-8"),
    ("check-videos-latin1-list", lambda f: ["check-videos", f["latin1_list"], "--no-progress"], "byte offset"),
    ("flow-latin1-list", lambda f: ["flow", f["latin1_list"], "--no-progress"], "byte offset"),
    ("check-videos-utf16-list", lambda f: ["check-videos", f["utf16_list"], "--no-progress"], "UTF-16 text"),
    # case 2: train runs check-dataset's check before any step
    ("train-val-all-missing", lambda f: ["train", f["missing_val_config"], "--no-progress"],
     "val: none of the 2 listed videos is usable (2 missing, 0 unreadable)"),
    # case 9: checkpoints
    ("predict-pickled-pt", lambda f: ["predict", f["video"], "--checkpoint", f["evil_pt"]],
     "refused: not a weights-only checkpoint"),
    ("export-pickled-pt", lambda f: ["export", "--checkpoint", f["evil_pt"], "--format", "torchscript"],
     "refused: not a weights-only checkpoint"),
    ("evaluate-pickled-pt", lambda f: ["evaluate", f["config"], "--checkpoint", f["evil_pt"]], "refused"),
    ("missing-checkpoint", lambda f: ["export", "--checkpoint", f["root"] + "/x.safetensors", "--format", "onnx"],
     "checkpoint not found"),
    ("predict-missing-video", lambda f: ["predict", f["root"] + "/none.mp4", "--checkpoint", f["weights"]],
     "video not found"),
    ("predict-not-a-video", lambda f: ["predict", f["not_video"], "--checkpoint", f["weights"]], "clip.mp4"),
    # case 11: make-synthetic and a folder that holds something
    ("make-synthetic-used-folder", lambda f: ["make-synthetic", f["used_folder"], "--no-progress"],
     "not empty (1 entries); give a new folder, or --overwrite"),
    # data tools
    ("check-videos-missing", lambda f: ["check-videos", f["root"] + "/none"], "no such folder or list file"),
    ("flow-missing", lambda f: ["flow", f["root"] + "/none"], "no such folder"),
    ("prepare-videos-missing", lambda f: ["prepare-videos", f["root"] + "/none", f["root"] + "/prepared"], "none"),
    # search tools
    ("search-missing-config", lambda f: ["search", f["root"] + "/none.yaml"], "not found"),
    ("search-report-missing", lambda f: ["search-report", f["root"] + "/none"], "none"),
    ("search-study-missing", lambda f: ["search-study", f["root"] + "/none.yaml"], "not found"),
]


@pytest.mark.parametrize("argv_of, expected", [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_bad_input_is_one_error_line_with_exit_status_2(files, argv_of, expected) -> None:
    argv = argv_of(files)
    if "no GPU is available" in expected and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out, err = io.StringIO(), io.StringIO()
    # What the command logs at WARNING and above reaches the user's stderr too (main's logging.basicConfig).
    handler = logging.StreamHandler(err)
    handler.setLevel(logging.WARNING)
    logging.getLogger().addHandler(handler)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            status = main(argv)
    except BaseException as exc:  # noqa: BLE001 - what a user would see as a traceback
        pytest.fail(f"{argv} escaped main (a traceback for the user):\n{''.join(traceback.format_exception(exc))}")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    assert status == 2, (argv, status, lines)
    assert len(lines) == 1 and lines[0].startswith("assemblenet: error: "), lines
    assert "Traceback" not in err.getvalue() + out.getvalue()
    assert expected in lines[0], (expected, lines[0])


def test_train_with_an_unusable_val_split_stops_before_any_step(files) -> None:
    """Case 2: the check happens before training, so nothing of a run is written."""
    run = Path(files["root"]) / "preflight_run"
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        assert main(["train", files["missing_val_config"], "--output", str(run), "--no-progress"]) == 2
    assert not (run / "checkpoints").exists() and not (run / "metrics.jsonl").exists()
