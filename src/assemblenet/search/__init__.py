"""Connection-learning-guided evolutionary architecture search (AssembleNet, ICLR 2020), and its baselines.

See ``docs/search.md``. Entry points: :class:`SearchRunner` (run or resume one search), :func:`write_report`
(report and overlays), :class:`SearchSpace` (membership, random overly-connected graphs), the mutations in
:mod:`assemblenet.search.mutations`, and the fitness interface in :mod:`assemblenet.search.fitness`.
"""

from assemblenet.search.config import SearchConfig, load_search_config, search_config_from_dict
from assemblenet.search.evolution import SearchError, SearchRunner, SearchSummary, derive_trial_seed
from assemblenet.search.fitness import (
    FitnessFunction,
    FitnessResult,
    FitnessUnavailableError,
    ProxyTrainingFitness,
    build_fitness,
)
from assemblenet.search.report import write_report
from assemblenet.search.space import SearchSpace, asn50_space
from assemblenet.search.store import EvaluationRecord, RunStore

__all__ = [
    "EvaluationRecord", "FitnessFunction", "FitnessResult", "FitnessUnavailableError", "ProxyTrainingFitness",
    "RunStore", "SearchConfig", "SearchError", "SearchRunner", "SearchSpace", "SearchSummary", "asn50_space",
    "build_fitness", "derive_trial_seed", "load_search_config", "search_config_from_dict", "write_report",
]
