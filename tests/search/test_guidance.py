"""Connection-learning guidance on a real proxy: a node reads two informative stems and one of pure noise,
the proxy trains through the engine's loop, and the guided rule must condemn exactly the noise edge."""

from __future__ import annotations

import pytest
import torch

from assemblenet.data.datasets import factory
from assemblenet.graph.spec import AssembleNetGraph, BlockNode, StemNode, StemType
from assemblenet.search.config import SpaceConfig
from assemblenet.search.fitness import ProxyTrainingFitness
from assemblenet.search.mutations import PruneRule, guided_connection_mutation
from assemblenet.search.space import SearchSpace


class BrightQuadrant(torch.utils.data.Dataset):
    """Class k = quadrant k of the RGB clip is brighter. The ``flow`` input is fresh Gaussian noise on every
    read, so it carries nothing about the class."""

    multi_label = False
    num_classes = 4
    class_names = ["top_left", "top_right", "bottom_left", "bottom_right"]

    def __init__(self, *, split: str, size: int = 16, frames: int = 4, **_: object) -> None:
        self.seed = 0 if split == "train" else 1
        self.count = 256 if split == "train" else 64
        self.labels = torch.randint(0, 4, (self.count,), generator=torch.Generator().manual_seed(self.seed))
        self.size, self.frames = size, frames

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int):
        g = torch.Generator().manual_seed(self.seed * 100_003 + i)
        label = int(self.labels[i])
        half = self.size // 2
        rgb = torch.rand(3, self.frames, self.size, self.size, generator=g) * 0.5
        row, col = divmod(label, 2)
        rgb[:, :, row * half:(row + 1) * half, col * half:(col + 1) * half] += 0.5
        flow = torch.randn(2, self.frames, self.size, self.size)  # torch's generator: noise, seeded per sample
        meta = {"video_id": f"{self.seed}-{i}", "video_index": i, "clip_index": 0, "crop_index": 0}
        return {"rgb": rgb, "flow": flow}, torch.tensor(label), meta


NOISE_EDGE = (2, 3)
GRAPH = AssembleNetGraph([
    StemNode(StemType.RGB, 1), StemNode(StemType.RGB, 2), StemNode(StemType.FLOW, 1),
    BlockNode(level=0, inputs=(0, 1, 2), filters=32, temporal_dilation=1, spatial_stride=1),
    BlockNode(level=1, inputs=(3,), filters=64, temporal_dilation=1, spatial_stride=2),
    BlockNode(level=2, inputs=(4,), filters=128, temporal_dilation=1, spatial_stride=2),
    BlockNode(level=3, inputs=(5,), filters=256, temporal_dilation=1, spatial_stride=2),
])


def _proxy(multiplier: float) -> ProxyTrainingFitness:
    return ProxyTrainingFitness(
        train_config=None, steps=40, metric="top1", width_multiplier=0.125,
        overrides={
            "model.depth": 26, "model.flow_mode": "precomputed",
            "data.dataset": "bright_quadrant", "data.train": {"split": "train"}, "data.val": {"split": "val"},
            "data.num_frames": 4, "data.crop_size": 16, "data.batch_size": 8, "data.num_workers": 0,
            "data.modalities": ["rgb", "flow"],
            "optim.lr": 0.1, "optim.reference_batch_size": 8, "optim.warmup_steps": 0,
            "optim.connection_lr_multiplier": multiplier,
            "train.precise_bn_batches": 4, "train.eval_every_epochs": 0, "train.progress": False,
            "train.device": "cpu", "eval.metric": "top1", "eval.batch_size": 16,
        },
    )


@pytest.fixture()
def bright_quadrant(monkeypatch):
    monkeypatch.setitem(factory.DATASETS, "bright_quadrant", BrightQuadrant)


@pytest.mark.parametrize("seed", [0, 1])
def test_guided_rule_prunes_exactly_the_noise_edge_after_a_real_proxy(bright_quadrant, seed):
    result = _proxy(10.0)(GRAPH, seed=seed)
    assert result.fitness > 0.5  # the task was learned (chance: 0.25)
    rule = PruneRule("relative", relative_threshold=0.5, min_pruned=0)  # no make-up: the ratio alone decides
    assert rule.select(GRAPH, result.learned_weights) == [NOISE_EDGE]
    space = SearchSpace(SpaceConfig(stems=("rgb", "rgb", "flow"), stem_dilations=(1, 2), dilations=(1,),
                                    nodes_per_level=(1, 1, 1, 1), max_nodes_per_level=(2, 2, 2, 2),
                                    level_filters=(32, 64, 128, 256), filter_quantum=8))
    child = guided_connection_mutation(GRAPH, result.learned_weights, space=space,
                                       rng=__import__("random").Random(seed), rule=rule)
    assert child is not None and child.mutation.details["pruned"] == [list(NOISE_EDGE)]


def test_without_the_connection_rate_the_noise_edge_is_weakest_but_not_condemned(bright_quadrant):
    # What the multiplier buys: at the plain rate the ordering is already right, but the ratios stay near 1
    # (a node's common weight scale is invisible to the loss and the relative differences grow slowly).
    weights = _proxy(1.0)(GRAPH, seed=0).learned_weights
    into = {s: weights[(s, 3)] for s in (0, 1, 2)}
    assert min(into, key=into.get) == NOISE_EDGE[0]
    assert PruneRule("relative", relative_threshold=0.5, min_pruned=0).select(GRAPH, weights) == []
