"""The config sections of the proxy-validity stage (:mod:`.proxy_validity`) and of studies across tasks
(:mod:`.tasks`), with their checks. Light (no numpy, no torch) and importing nothing else of the study package,
so that :mod:`.config` can hold them while the stage modules import :mod:`.config`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

GENERATOR_KEYWORDS = ("train_videos", "val_videos", "test_videos", "size", "num_frames", "fps")
DATA_MODES = ("generate", "check", "none")


@dataclass(frozen=True)
class ProxyValidityConfig:
    """The ``proxy_validity`` section of a study config (the ``proxy-validity`` stage).

    ``graphs`` graphs drawn uniformly from the search space with ``random.Random(sample_seed)`` (distinct by
    hash) plus the fixed wirings ``fixed``; each gets ``proxy_seeds`` proxy evaluations and ``final_seeds``
    final trainings (the retrain settings). ``top_fraction`` is the share of graphs (by final test mean) the
    top-quartile tau is computed in. ``stage=all`` runs the stage when ``enabled``."""

    enabled: bool = False
    graphs: int = 50
    fixed: tuple[str, ...] = ("asn50", "late_fusion", "rgb_only", "flow_only")
    proxy_seeds: int = 3
    final_seeds: int = 2
    sample_seed: int = 0
    top_fraction: float = 0.25


def validate_proxy_validity(check: Any, section: ProxyValidityConfig) -> None:
    """Range checks of the section through the study's :class:`~assemblenet.config_schema.Checker` (messages
    name ``proxy_validity.KEY``)."""
    from assemblenet.search.baselines import BASELINES

    check.at_least("proxy_validity.graphs", 0)
    check.at_least("proxy_validity.sample_seed", 0)
    for key in ("proxy_seeds", "final_seeds"):  # reliabilities need two seeds per side
        check.at_least(f"proxy_validity.{key}", 2)
    for i in range(len(section.fixed)):
        check.one_of(f"proxy_validity.fixed[{i}]", BASELINES)
    if len(set(section.fixed)) != len(section.fixed):
        check.fail("proxy_validity.fixed", f"must be distinct, got {list(section.fixed)}")
    if section.graphs + len(section.fixed) < 4:
        check.fail("proxy_validity.graphs", "graphs plus fixed wirings must be at least 4 for a correlation, got "
                   f"{section.graphs} + {len(section.fixed)}")
    check.within("proxy_validity.top_fraction", 0, 1, low_open=True)


@dataclass(frozen=True)
class TaskSpec:
    """One task: its ``name`` (the folder ``OUTPUT/<name>/``), the generator seed ``data_seed`` and its data
    ``root`` (null: ``<tasks.replaces>-<name>``)."""

    name: str = ""
    data_seed: int = 0
    root: str | None = None


@dataclass(frozen=True)
class TasksConfig:
    """The ``tasks`` section: empty ``items`` is a single-task study (the default)."""

    replaces: str = ""
    data: Literal["generate", "check", "none"] = "generate"
    make_synthetic: Mapping[str, Any] = field(default_factory=dict)
    items: tuple[TaskSpec, ...] = ()

    def root(self, task: TaskSpec) -> str:
        return task.root if task.root is not None else f"{self.replaces.rstrip('/')}-{task.name}"


def validate_tasks(check: Any, tasks: TasksConfig) -> None:
    """Range checks of the ``tasks`` section (messages name ``tasks.KEY``)."""
    if not tasks.items:
        return
    names = [t.name for t in tasks.items]
    for i, task in enumerate(tasks.items):
        if not task.name or "/" in task.name or task.name.startswith("."):
            check.fail(f"tasks.items[{i}].name", f"must be a plain folder name, got {task.name!r}")
        check.at_least(f"tasks.items[{i}].data_seed", 0)
    if len(set(names)) != len(names):
        check.fail("tasks.items", f"names must be distinct, got {names}")
    roots = [tasks.root(t) for t in tasks.items]
    if len(set(roots)) != len(roots):
        check.fail("tasks.items", f"data roots must be distinct, got {roots}")
    seeds = [t.data_seed for t in tasks.items]
    if len(set(seeds)) != len(seeds):
        check.fail("tasks.items", f"data_seed values must be distinct (each task is its own dataset), got {seeds}")
    if not tasks.replaces:
        check.fail("tasks.replaces", "must name the data root the search and retrain configs use (e.g. "
                   "data/compositional)")
    for key in tasks.make_synthetic:
        if key not in GENERATOR_KEYWORDS:
            check.fail(f"tasks.make_synthetic.{key}", f"unknown generator keyword; expected one of "
                       f"{list(GENERATOR_KEYWORDS)}")
