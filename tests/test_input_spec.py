"""The input spec: one place for the defaults of a model's input, read by the config, the clip sampling, the
datasets, the weights sidecar, predict and export."""

from __future__ import annotations

import dataclasses
import inspect

from assemblenet.input_spec import DATASET_CLIP_FRAMES, DEFAULT_INPUT, InputSpec


def _default(function, name):
    return inspect.signature(function).parameters[name].default


def test_the_config_sampling_datasets_predict_and_export_default_to_the_one_input_spec():
    from assemblenet.data.datasets.base import VideoDataset
    from assemblenet.data.sampling import ClipSampling
    from assemblenet.engine.config import DataConfig
    from assemblenet.engine.export import export_model
    from assemblenet.engine.predict import predict_video

    assert DataConfig().input_spec() == DEFAULT_INPUT
    sampling = ClipSampling()
    assert (sampling.stride, sampling.target_fps) == (DEFAULT_INPUT.stride, DEFAULT_INPUT.target_fps)
    assert tuple(_default(VideoDataset.__init__, "modalities")) == DEFAULT_INPUT.modalities
    assert (_default(export_model, "num_frames"), _default(export_model, "size")) == \
        (DEFAULT_INPUT.num_frames, DEFAULT_INPUT.crop_size)
    assert _default(predict_video, "stride") == DEFAULT_INPUT.stride


def test_a_dataset_built_without_sampling_cuts_shorter_clips_than_the_model_reads():
    # The one default that differs on purpose (browsing, tests); the engine always passes data.num_frames.
    from assemblenet.data.sampling import ClipSampling
    from assemblenet.engine.config import load_config
    from assemblenet.engine.datasets import dataset_kwargs

    assert ClipSampling().num_frames == DATASET_CLIP_FRAMES < DEFAULT_INPUT.num_frames
    cfg = load_config({"data": {"train": {"root": "videos"}, "val": {"root": "videos"}}})
    for split in ("train", "val"):
        assert dataset_kwargs(cfg, split)["sampling"].num_frames == DEFAULT_INPUT.num_frames


def test_the_sidecar_entry_round_trips_and_falls_back_to_the_training_config_then_the_default():
    spec = InputSpec(num_frames=8, stride=2, crop_size=64, modalities=("rgb", "flow"))
    entry = spec.sidecar_entry()
    assert entry == {"num_frames": 8, "crop_size": 64, "modalities": ["rgb", "flow"]}
    # The sidecar records no stride: a model read back is predicted with the default one.
    assert InputSpec.from_sidecar(entry, {}) == dataclasses.replace(spec, stride=DEFAULT_INPUT.stride)
    assert InputSpec.from_sidecar({}, {"num_frames": 4, "modalities": ["flow"]}) == \
        InputSpec(num_frames=4, modalities=("flow",))
    assert InputSpec.from_sidecar({"crop_size": 32}, {"crop_size": 96}).crop_size == 32
    assert InputSpec.from_sidecar({}, {}) == DEFAULT_INPUT
