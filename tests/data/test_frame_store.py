"""The frame store: decoded once, served to other dataset objects, invalidated by changed files, bounded."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from assemblenet.data import ClipSampling, ClipViews, make_synthetic, synthetic_dataset
from assemblenet.data.datasets import base
from assemblenet.data.frame_store import INDEX_FILE, FrameStore, build_frame_store, open_frame_store


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("synthetic")
    make_synthetic(folder, num_videos=8, num_classes=2, size=32, num_frames=8, progress=False)
    return folder


def _dataset(root: Path, mode: str = "train", cache_frames: bool = True, **options):
    # Random crops and flips in training mode, so a clip depends on the frames and the seeded draws alike.
    return synthetic_dataset(root, split="train", sampling=ClipSampling(num_frames=4),
                             views=ClipViews(mode=mode, crop_size=24, scale=(0.3, 1.0), hflip_prob=0.5),
                             cache_frames=cache_frames, **options)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every video file a dataset opens to decode, in order."""
    opened: list[str] = []
    real = base.open_video

    def counting(path, **kwargs):
        opened.append(str(path))
        return real(path, **kwargs)

    monkeypatch.setattr(base, "open_video", counting)
    return opened


def _samples(dataset, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(seed)
    return [dataset[i][:2] for i in range(len(dataset))]


def test_store_is_written_once_and_serves_other_datasets_without_decoding(root: Path, tmp_path: Path,
                                                                          decodes: list[str]) -> None:
    built = build_frame_store(tmp_path / "train", _dataset(root), limit_bytes=2**30)
    videos = len(_dataset(root).items)
    assert built.store is not None and built.decoded == videos == len(built.store)
    assert len(decodes) == videos
    assert built.total_bytes == sum(int(np.prod(e["shape"])) * 3 for e in built.store._entries.values())

    again = build_frame_store(tmp_path / "train", _dataset(root), limit_bytes=2**30)  # a resumed search
    assert again.decoded == 0 and len(decodes) == videos

    for _ in range(2):  # two evaluations, each with its own dataset objects
        dataset = _dataset(root)
        dataset.attach_frame_store(open_frame_store(tmp_path / "train", dataset))
        _samples(dataset)
        assert dataset.frame_store.hits == videos
    assert len(decodes) == videos  # nothing decoded after the store was written


@pytest.mark.parametrize("mode", ["train", "test"])
def test_stored_frames_give_exactly_the_clips_of_decoding(root: Path, tmp_path: Path, mode: str) -> None:
    stored = _dataset(root, mode)
    build_frame_store(tmp_path / mode, stored, limit_bytes=2**30)
    stored.attach_frame_store(FrameStore(tmp_path / mode))
    for (clip_a, target_a), (clip_b, target_b) in zip(_samples(_dataset(root, mode)), _samples(stored)):
        assert torch.equal(clip_a, clip_b) and torch.equal(target_a, target_b)
    assert stored.frame_store.hits == len(stored.items)


def test_a_changed_video_is_decoded_again_and_the_store_rebuilt(root: Path, tmp_path: Path,
                                                                decodes: list[str]) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(root, data)
    build_frame_store(tmp_path / "train", _dataset(data), limit_bytes=2**30)
    decodes.clear()
    changed = _dataset(data).frame_store_paths()[0]
    status = os.stat(changed)
    os.utime(changed, ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))  # same size, newer mtime

    dataset = _dataset(data)
    dataset.attach_frame_store(open_frame_store(tmp_path / "train", dataset))
    assert not dataset.frame_store.fresh(changed)
    _samples(dataset)
    assert decodes == [changed]  # only the changed file was decoded, the others came from the store
    assert dataset.frame_store.stale == {changed}

    decodes.clear()
    with open(changed, "ab") as file:  # another size too
        file.write(b"\0")
    rebuilt = build_frame_store(tmp_path / "train", _dataset(data), limit_bytes=2**30)
    assert rebuilt.decoded == len(rebuilt.store) and rebuilt.store.fresh(changed)


def test_a_split_over_the_limit_is_not_stored_and_decodes_as_before(root: Path, tmp_path: Path) -> None:
    folder = tmp_path / "train"
    whole = build_frame_store(folder, _dataset(root), limit_bytes=2**30).total_bytes
    # An older store in the folder is removed, not served, when the split no longer fits.
    built = build_frame_store(folder, _dataset(root, cache_frames=True), limit_bytes=whole - 1)
    assert built.store is None and "more than" in built.reason
    assert not folder.exists()
    assert open_frame_store(folder, _dataset(root)) is None
    exact = build_frame_store(folder, _dataset(root), limit_bytes=whole)  # the bound is inclusive
    assert exact.store is not None and exact.total_bytes == whole


def test_store_for_other_videos_or_options_is_not_used(root: Path, tmp_path: Path) -> None:
    build_frame_store(tmp_path / "train", _dataset(root), limit_bytes=2**30)
    fewer = _dataset(root)
    fewer.keep_videos(3)
    assert open_frame_store(tmp_path / "train", fewer) is None
    smaller = _dataset(root, decode_short_side=16)
    assert open_frame_store(tmp_path / "train", smaller) is None


def test_a_killed_build_leaves_no_store_and_the_next_build_completes(root: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = _dataset(root)
    real = dataset.decode_whole_video
    calls = []

    def dies_on_the_third(index: int):
        calls.append(index)
        if len(calls) == 3:
            raise KeyboardInterrupt  # stands for the process dying mid-write (not a broken video)
        return real(index)

    monkeypatch.setattr(dataset, "decode_whole_video", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        build_frame_store(tmp_path / "train", dataset, limit_bytes=2**30)
    assert not (tmp_path / "train" / INDEX_FILE).exists()
    assert open_frame_store(tmp_path / "train", _dataset(root)) is None
    built = build_frame_store(tmp_path / "train", _dataset(root), limit_bytes=2**30)
    assert built.decoded == len(_dataset(root).items)


def test_unreadable_videos_are_left_out_and_counted(root: Path, tmp_path: Path) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(root, data)
    broken = _dataset(data).frame_store_paths()[1]
    Path(broken).write_bytes(b"not a video")
    built = build_frame_store(tmp_path / "train", _dataset(data), limit_bytes=2**30)
    assert built.unreadable == 1 and broken not in built.store
    assert len(built.store) == len(_dataset(data).items) - 1


def test_store_needs_cache_frames_and_pickles_as_its_folder(root: Path, tmp_path: Path) -> None:
    from assemblenet.errors import ConfigError

    store = build_frame_store(tmp_path / "train", _dataset(root), limit_bytes=2**30).store
    with pytest.raises(ConfigError, match="cache_frames"):
        _dataset(root, cache_frames=False).attach_frame_store(store)
    copy = pickle.loads(pickle.dumps(store))
    path = _dataset(root).frame_store_paths()[0]
    assert copy.folder == store.folder and np.array_equal(copy.lookup(path).frames, store.lookup(path).frames)
    assert len(pickle.dumps(store)) < 1000  # the folder, not the frames
