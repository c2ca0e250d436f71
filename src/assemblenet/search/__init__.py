"""Connection-learning-guided evolutionary architecture search (AssembleNet, ICLR 2020), and its baselines.

See ``docs/search.md``. Entry points: :class:`SearchRunner` (run or resume one search), :func:`write_report`
(report and overlays), :class:`SearchSpace` (membership, random overly-connected graphs), the strategies in
:mod:`assemblenet.search.strategies` (registered in :mod:`assemblenet.search.registry`), the mutations in
:mod:`assemblenet.search.mutations`, and the fitness interface in :mod:`assemblenet.search.fitness`.

Importing the package fills the strategy registry (the strategies module is torch-free); everything else loads
lazily, as in :mod:`assemblenet.engine`, so that ``assemblenet --help`` stays fast.
"""

from __future__ import annotations

from assemblenet.lazy import lazy_attributes
from assemblenet.search import strategies  # noqa: F401 - registers the strategies

_EXPORTS = {
    "SearchConfig": "config", "load_search_config": "config", "search_config_from_dict": "config",
    "SearchError": "evolution", "SearchRunner": "evolution", "SearchSummary": "evolution",
    "derive_trial_seed": "evolution",
    "FitnessFunction": "fitness", "FitnessResult": "fitness", "FitnessUnavailableError": "fitness",
    "ProxyTrainingFitness": "fitness", "build_fitness": "fitness",
    "write_report": "report",
    "SearchSpace": "space", "asn50_space": "space",
    "EvaluationRecord": "store", "RunStore": "store",
    "make_strategy": "registry", "register_strategy": "registry", "strategy_names": "registry",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_attributes(__name__, _EXPORTS)
