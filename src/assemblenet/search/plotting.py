"""The figures of ``search-report`` and ``search-study``: one way to make a figure, one colour per strategy."""

from __future__ import annotations

from typing import Any

# One colour per strategy, the same in every figure.
STRATEGY_COLOURS = {"evolution": "C3", "evolution-unguided": "C1", "random": "C0", "oneshot": "C2",
                    "oneshot-attention": "C4"}


def new_figure(width: float = 6.4, height: float = 4.2) -> Any:
    """A matplotlib figure on an Agg canvas (the object API: no pyplot global state, no display needed); save it
    with :func:`assemblenet.fileio.save_figure`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(figure)
    return figure


def strategy_colour(strategy: str, k: int = 0) -> str:
    """The strategy's colour; an unknown strategy takes the k-th colour after the known ones."""
    return STRATEGY_COLOURS.get(strategy, f"C{5 + k}")


def finish_figure(figure: Any, axes: Any, path: Any, *, legend_loc: str = "best", legend: bool = True) -> None:
    """The common end of a search figure: a light grid, the legend when something is labelled, a tight layout,
    and an atomic PNG write."""
    from assemblenet import fileio

    axes.grid(True, alpha=0.3)
    if legend and axes.get_legend_handles_labels()[1]:
        axes.legend(loc=legend_loc, fontsize="small")
    figure.tight_layout()
    fileio.save_figure(figure, path, format="png")
