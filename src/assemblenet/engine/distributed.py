"""Multi-process training under ``torchrun``: process groups, samplers, and gathering results.

Launch with ``torchrun --nproc_per_node N -m assemblenet.cli.main train CONFIG`` (one process per GPU, NCCL) or
on CPU (gloo). The environment variables ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``/``MASTER_PORT``) select distributed mode; without them everything runs in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def env_dist_info() -> DistInfo:
    return DistInfo(rank=int(os.environ.get("RANK", 0)), world_size=int(os.environ.get("WORLD_SIZE", 1)),
                    local_rank=int(os.environ.get("LOCAL_RANK", 0)))


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group ``torchrun`` describes (NCCL on GPU, gloo on CPU); no-op for one process."""
    info = env_dist_info()
    if info.world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend)
    return info


def current_dist_info() -> DistInfo:
    if dist.is_available() and dist.is_initialized():
        return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(),
                        local_rank=int(os.environ.get("LOCAL_RANK", 0)))
    return DistInfo()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` in rank order (``[obj]`` in one process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def all_reduce_(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """``tensor`` reduced in place over every rank (``op``: sum, min or max); unchanged in one process."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op={"sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN,
                                    "max": dist.ReduceOp.MAX}[op])
    return tensor


def broadcast_buffers(module: torch.nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (BN running statistics) to every rank, so that all ranks evaluate, and
    checkpoint, the same model. Parameters are already equal under DDP."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=src)


class ResumableSampler(torch.utils.data.Sampler[tuple[int, int]]):
    """Shuffled, sharded sample order that can start mid-epoch.

    Each epoch's order is a permutation seeded by ``seed + epoch`` (identical on every rank), padded to a
    multiple of ``world_size`` and dealt round-robin, as ``DistributedSampler`` does. Each index is yielded
    together with a per-sample seed derived from (seed, epoch, position), which :class:`SeededDataset` uses
    for the sample's augmentation, so a resumed run sees exactly the samples and augmentations it would
    have seen.
    """

    def __init__(self, dataset_size: int, *, world_size: int = 1, rank: int = 0, seed: int = 0,
                 shuffle: bool = True) -> None:
        if dataset_size < 1:
            raise ValueError("the dataset is empty")
        self.dataset_size = dataset_size
        self.world_size = world_size
        self.rank = rank
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.start = 0
        self.num_samples = -(-dataset_size // world_size)

    def set_epoch(self, epoch: int, start_sample: int = 0) -> None:
        """Select the epoch and skip the first ``start_sample`` samples of this rank's share."""
        self.epoch = epoch
        self.start = start_sample

    def __len__(self) -> int:
        return self.num_samples - self.start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.dataset_size, generator=generator).tolist()
        else:
            order = list(range(self.dataset_size))
        total = self.num_samples * self.world_size
        order += order[: total - len(order)]
        mine = order[self.rank:total:self.world_size]
        for position in range(self.start, len(mine)):
            sample_seed = (self.seed * 1_000_003 + self.epoch) * 1_000_003 + position * self.world_size + self.rank
            yield mine[position], sample_seed % (2**63)


class ShardedEvalSampler(torch.utils.data.Sampler[tuple[int, int]]):
    """Every ``world_size``-th index starting at ``rank``, without padding: the shards partition the
    dataset exactly, so gathered results equal single-process results."""

    def __init__(self, dataset_size: int, *, world_size: int = 1, rank: int = 0) -> None:
        self.indices = list(range(rank, dataset_size, world_size))

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index in self.indices:
            yield index, index


class SeededDataset(torch.utils.data.Dataset[Any]):
    """Wraps a dataset so that item ``(index, seed)`` is produced under ``torch.manual_seed(seed)``.

    The wrapped datasets draw their augmentation randomness from torch's generator; seeding it per sample
    makes every sample independent of worker count, order and restarts. The caller's RNG state is restored.
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        with torch.random.fork_rng(devices=[]):
            # The CPU generator only (what the datasets draw from): torch.manual_seed would also queue a lazy
            # seed for every accelerator backend, formatting a stack trace each time (~4 ms per sample on CPU).
            torch.default_generator.manual_seed(seed)
            return self.dataset[index]

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)
