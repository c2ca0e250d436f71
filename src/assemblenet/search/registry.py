"""The registry of search strategies: each strategy registers itself under its config name.

:mod:`assemblenet.search.strategies` defines the strategies (``@register_strategy("evolution")``) and the
``assemblenet.search`` package imports it, so the registry is full whenever any search module is importable.
This module imports nothing of the search, so that :mod:`assemblenet.search.config` (validation) and the CLI
(``--strategy`` choices) can read the names while the strategies themselves import the config. Nothing here
imports torch: ``assemblenet --help`` reads it.

The mutation kinds have their table in :data:`assemblenet.search.mutations.MUTATIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from assemblenet.errors import UnknownNameError

# A Strategy subclass; typed loosely because the strategies module imports this one, not the reverse.
S = TypeVar("S", bound=type)


@dataclass(frozen=True)
class StrategySpec:
    """A registered strategy: its config ``name``, the class, and what the rest of the search needs to know
    of it. ``learns_attention``: its fitness must report learned peer attention (AssembleNet++). ``mutates``:
    it breeds children from parents (the study reports its mutation mix)."""

    name: str
    factory: Callable[[], Any]
    learns_attention: bool = False
    mutates: bool = False


_STRATEGIES: dict[str, StrategySpec] = {}


def register_strategy(name: str, *, learns_attention: bool = False, mutates: bool = False) -> Callable[[S], S]:
    """Class decorator: register a :class:`~assemblenet.search.strategies.Strategy` subclass under ``name``
    (the value of the config's ``strategy`` key) and set its ``name`` attribute."""

    def register(cls: S) -> S:
        if name in _STRATEGIES:
            raise ValueError(f"strategy {name!r} is already registered")
        setattr(cls, "name", name)  # S is any class here (see above), so the attribute is set by name
        _STRATEGIES[name] = StrategySpec(name, cls, learns_attention=learns_attention, mutates=mutates)
        return cls

    return register


def strategy_names() -> tuple[str, ...]:
    """The registered strategy names, in registration order (the order ``--help`` and errors list them)."""
    return tuple(_STRATEGIES)


def strategy_spec(name: str) -> StrategySpec:
    try:
        return _STRATEGIES[name]
    except KeyError:
        raise UnknownNameError("strategy", name, list(_STRATEGIES), key="strategy") from None


def make_strategy(name: str) -> Any:
    """A fresh instance of the strategy registered as ``name`` (a
    :class:`~assemblenet.search.strategies.Strategy`)."""
    return strategy_spec(name).factory()
