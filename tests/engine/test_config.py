"""Config schema: YAML loading, base files, dotted overrides, up-front validation, and the shipped configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from assemblenet.engine.config import (
    Config,
    apply_overrides,
    describe_schema,
    load_config,
    parse_override,
    save_config,
)
from assemblenet.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


def test_defaults_follow_the_documented_recipe():
    cfg = load_config({})
    assert (cfg.data.num_frames, cfg.data.crop_size) == (32, 224)
    assert cfg.optim.optimizer == "sgd" and cfg.optim.momentum == 0.9 and cfg.optim.schedule == "cosine"
    assert cfg.optim.warmup_epochs > 0 and cfg.optim.scale_lr


def test_overrides_are_parsed_as_yaml_values():
    assert parse_override("optim.lr=0.1") == ("optim.lr", 0.1)
    assert parse_override("data.modalities=[rgb, flow]") == ("data.modalities", ["rgb", "flow"])
    assert parse_override("model.graph=null") == ("model.graph", None)
    assert parse_override("output.dir=runs/a=b") == ("output.dir", "runs/a=b")
    cfg = load_config({}, ["optim.lr=0.1", "data.train.csv_path=/x.csv", "train.amp=bf16"])
    assert cfg.optim.lr == 0.1 and cfg.data.train == {"csv_path": "/x.csv"} and cfg.train.amp == "bf16"


@pytest.mark.parametrize("overrides, key", [
    (["optim.lrr=0.1"], "optim.lrr"),
    (["modle.name=x"], "modle"),
    (["optim.lr=fast"], "optim.lr"),
    (["optim.epochs=2.5"], "optim.epochs"),
    (["train.amp=fp8"], "train.amp"),
    (["data.batch_size=0"], "data.batch_size"),
    (["eval.num_crops=2"], "eval.num_crops"),
    (["model.dropout=true"], "model.dropout"),
])
def test_bad_keys_and_values_name_the_key(overrides, key):
    with pytest.raises(ConfigError) as info:
        load_config({}, overrides)
    message = str(info.value)
    assert message.startswith(f"config: key '{key}': ") and "\n" not in message


@pytest.mark.parametrize("text, key, message", [
    ("optim: {lrr: 0.1}\n", "optim.lrr", "unknown key; did you mean 'lr'?"),
    ("optim: {epochs: 2.5}\n", "optim.epochs", "expected an integer, got 2.5"),
    ("optim: {lr: fast}\n", "optim.lr", "expected a number, got 'fast'"),
    ("train: {amp: fp8}\n", "train.amp", "expected one of ['none', 'bf16', 'fp16'], got 'fp8'"),
    ("data: {batch_size: 0}\n", "data.batch_size", "must be at least 1, got 0"),
    ("model: {dropout: 1.5}\n", "model.dropout", "must be in [0, 1), got 1.5"),
])
def test_file_errors_are_one_line_naming_the_file_and_dotted_key(tmp_path, text, key, message):
    path = tmp_path / "train.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: key '{key}': {message}"


def test_a_dataset_section_with_a_non_string_key_is_a_config_error(tmp_path):
    # data.train/data.val become build_dataset's keyword arguments: a non-string key used to pass the config
    # and fail at the build with "TypeError: keywords must be strings" (a traceback instead of one line).
    path = tmp_path / "train.yaml"
    path.write_text("data: {train: {1: 2}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: key 'data.train.1': expected a string key"
    assert load_config({"data": {"val": {"root": "videos", "num_frames": 4}}}).data.val == {"root": "videos",
                                                                                          "num_frames": 4}


def test_unknown_key_suggests_the_close_one():
    with pytest.raises(ConfigError, match="did you mean 'lr'"):
        load_config({"optim": {"lrr": 1.0}})


def test_override_through_a_scalar_is_rejected():
    with pytest.raises(ConfigError, match="'optim.lr' is not a section"):
        apply_overrides({"optim": {"lr": 1.0}}, ["optim.lr.x=1"])


def test_base_files_merge_and_paths_are_named_in_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # base: is relative to the working directory, like every path in a config
    (tmp_path / "base.yaml").write_text("optim: {lr: 0.5, epochs: 3}\ndata: {num_frames: 8}\n")
    (tmp_path / "child.yaml").write_text("base: base.yaml\noptim: {epochs: 7}\n")
    cfg = load_config(tmp_path / "child.yaml")
    assert (cfg.optim.lr, cfg.optim.epochs, cfg.data.num_frames) == (0.5, 7, 8)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub/base.yaml").write_text("optim: {lr: 0.25}\n")  # beside the file: not the one meant
    (tmp_path / "sub/child.yaml").write_text("base: base.yaml\n")
    assert load_config(tmp_path / "sub/child.yaml").optim.lr == 0.5
    (tmp_path / "sub/orphan.yaml").write_text("base: sub/nowhere.yaml\n")
    with pytest.raises(ConfigError, match=r"orphan\.yaml: key 'base': base file not found: sub/nowhere\.yaml "
                                          r"\(relative paths in a config are relative to the working directory: "):
        load_config(tmp_path / "sub/orphan.yaml")
    (tmp_path / "bad.yaml").write_text("base: base.yaml\noptim: {momentum: high}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: key 'optim\.momentum': expected a number, got 'high'"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match="loops"):
        load_config(tmp_path / "loop.yaml")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(tmp_path / "list.yaml")


def test_saved_config_round_trips(tmp_path):
    cfg = load_config({}, ["optim.lr=0.3", "model.graph=asn101", "data.val.root=/v"])
    path = save_config(cfg, tmp_path / "c.yaml")
    assert load_config(path) == cfg
    assert isinstance(load_config(cfg), Config) and load_config(cfg) is not cfg


def test_schema_description_lists_every_key():
    text = describe_schema()
    for key in ("model.graph", "optim.lr", "optim.max_steps", "train.amp", "eval.aggregation", "output.dir"):
        assert f"\n{key}:" in f"\n{text}"


SHIPPED = sorted(CONFIG_DIR.glob("*.yaml"))


@pytest.fixture()
def at_repo_root(monkeypatch):
    """The shipped configs' relative paths (base: among them) are relative to the repository root."""
    monkeypatch.chdir(CONFIG_DIR.parent)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_configs_validate(path, at_repo_root):
    cfg = load_config(path)
    assert cfg.name == path.stem
    raw = yaml.safe_load(path.read_text())
    assert raw.get("name") == path.stem


def test_shipped_configs_cover_the_paper_settings(at_repo_root):
    names = {p.stem for p in SHIPPED}
    assert {"synthetic", "charades_assemblenet50", "charades_assemblenet101", "moments_in_time", "kinetics600",
            "smarthome", "ucf101"} <= names
    charades = load_config(CONFIG_DIR / "charades_assemblenet50.yaml")
    assert charades.train.loss == "bce" and charades.eval.metric == "map"
    assert load_config(CONFIG_DIR / "charades_assemblenet101.yaml").model.name == "assemblenet101"
    smarthome = load_config(CONFIG_DIR / "smarthome.yaml")
    assert smarthome.eval.metric == "mean_class_accuracy"
    # Every dataset config takes its class count from the training set (a subset of the classes works).
    datasets = [p for p in SHIPPED if p.stem != "compositional"]
    assert {p.stem: load_config(p).model.num_classes for p in datasets} == {p.stem: "auto" for p in datasets}


def test_num_classes_is_auto_or_a_positive_count():
    assert load_config({}).model.num_classes == "auto"
    assert load_config({"model": {"num_classes": 7}}).model.num_classes == 7
    with pytest.raises(ConfigError, match=r"key 'model.num_classes': must be at least 1, got 0"):
        load_config({"model": {"num_classes": 0}})
    with pytest.raises(ConfigError, match=r"key 'model.num_classes': expected an integer or one of \['auto'\], "
                                          r"got 'many'"):
        load_config({"model": {"num_classes": "many"}})


def test_the_model_build_keys_are_the_config_fields_every_builder_takes():
    # MODEL_BUILD_KEYS is derived from ModelConfig (fields marked as build options); it must be exactly the
    # ModelConfig fields build_assemblenet takes besides the graph and class count, and the Lite builder must take
    # them too, but num_object_classes (no object stem; the spec leaves it out at its default).
    import dataclasses
    import inspect

    from assemblenet.engine.config import MODEL_BUILD_KEYS, ModelConfig
    from assemblenet.models import build_assemblenet
    from assemblenet.models.lite import build_assemblenet_lite

    fields = [f.name for f in dataclasses.fields(ModelConfig)]
    standard = set(inspect.signature(build_assemblenet).parameters) - {"graph", "num_classes"}
    lite = set(inspect.signature(build_assemblenet_lite).parameters)
    assert MODEL_BUILD_KEYS == tuple(name for name in fields if name in standard)
    assert set(MODEL_BUILD_KEYS) - lite == {"num_object_classes"}
