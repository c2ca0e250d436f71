"""Mutations of AssembleNet graphs. Each returns a valid child in the search space, or ``None`` (rejected).

- Connection, guided: drop the edges that the parent's learned connection weights condemn (:class:`PruneRule`:
  by default each edge's weight relative to the strongest edge into the same node, since training fixes only
  these ratios), then add random new edges so that the expected edge count stays the same. A block that loses
  all its outgoing edges this way is judged useless and absorbed: it is removed and its filters go to another
  node of its level (keeping the budget). The pruned edges are never re-added, by the additions nor by the
  repair, so the child holds exactly the parent's other edges (except those of absorbed nodes) plus new ones.
- Connection, matched (the control of guided evolution): prune as many edges at the same nodes as the guided
  rule would, chosen at random, and continue the same way.
- Connection, random (where no learned weights exist): each edge is dropped with a fixed probability.

In both, ``details`` lists ``pruned``, ``added``, ``absorbed`` ([removed, receiver] pairs) and ``repaired``
edges, in the parent's node indices (a connection mutation keeps the indices of the surviving nodes).
- Dilation: change one node's or stem's temporal dilation to another allowed value.
- Split: replace a node by two at the same level with half the filters each; both read the node's inputs
  and feed its consumers.
- Merge: replace two nodes of one level by one with their summed filters, the union of their inputs and
  consumers, and the dilation of one of them.

- Attention (AssembleNet++ peer attention): one block node's attention sources are redrawn. Guided (the
  parent's learned attention is known): keep the node's ``top_k`` strongest learned peers; random (the
  control): keep ``top_k`` of its sources at random; either way add one random candidate that was no source,
  so a node is never stuck at what it has. :func:`read_off_attention` is the one-shot read-off: every node's
  sources become its ``top_k`` strongest learned peers.

Split and merge keep each level's channel budget. Attention sources travel with the nodes: a removed node's
place in other nodes' sources goes to the node that took its filters, a split node's twin attends where it
did and is attended where it was, and a merged node attends to the union of both. Every child is repaired
(edges are added so that every block has an input and every non-output node a consumer) and checked against
the space; a child that cannot be repaired is rejected. Node indices are kept by connection, dilation and
attention mutations.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from assemblenet.errors import GraphError
from assemblenet.graph.spec import OUTPUT_LEVEL, AssembleNetGraph, BlockNode
from assemblenet.search.attention import attention_per_node, strongest_peers, with_attention_sources
from assemblenet.search.draft import GraphDraft
from assemblenet.search.fitness_types import AttentionWeights
from assemblenet.search.space import SearchSpace

EdgeWeights = Mapping[tuple[int, int], float]


@dataclass(frozen=True)
class Mutation:
    """What was done to the parent; ``details`` is JSON-serialisable and uses the parent's node indices."""

    kind: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.details}


@dataclass(frozen=True)
class MutationResult:
    graph: AssembleNetGraph
    mutation: Mutation


PRUNE_RULES = ("relative", "absolute")
CONNECTION_MODES = ("guided", "matched", "random")


@dataclass(frozen=True)
class PruneRule:
    """Which of a parent's edges its learned connection weights condemn.

    Only edges into nodes with several inputs are candidates (a single input is never scaled, so it has no
    learned weight to read). ``relative`` (the default) compares each edge with the strongest edge into the
    same node and condemns those below ``relative_threshold`` times it: scale-free, because a node's fused
    input feeds conv -> BatchNorm, so training fixes only the ratios of its weights, never their common scale.
    ``absolute`` is the paper's rule: sigmoid strength below ``threshold``.

    Where the rule condemns fewer than ``min_pruned`` edges, the weakest candidates (by the rule's score)
    make up the number, so a guided mutation always prunes something and never turns into another kind.
    The make-up never removes a node's last input.
    """

    kind: str = "relative"
    threshold: float = 0.2
    relative_threshold: float = 0.5
    min_pruned: int = 1

    def scores(self, graph: AssembleNetGraph, weights: EdgeWeights) -> dict[tuple[int, int], float]:
        """The score of every candidate edge: its relative strength, or its sigmoid weight (absolute)."""
        out: dict[tuple[int, int], float] = {}
        for target, inputs in _multi_input_targets(graph, weights).items():
            strongest = max(weights[(s, target)] for s in graph.predecessors(target) if (s, target) in weights)
            for source in inputs:
                w = weights[(source, target)]
                if self.kind == "relative":
                    out[(source, target)] = w / strongest if strongest > 0 else 1.0
                else:
                    out[(source, target)] = w
        return out

    def select(self, graph: AssembleNetGraph, weights: EdgeWeights, *, extra: int = 0) -> list[tuple[int, int]]:
        """The condemned edges, weakest first. ``extra`` condemns that many more of the next-weakest edges
        (a mutation retrying after its child was a duplicate: the same parent tends to give the same child)."""
        scores = self.scores(graph, weights)
        limit = self.relative_threshold if self.kind == "relative" else self.threshold
        chosen = {e for e, score in scores.items() if score < limit}
        wanted = max(len(chosen), self.min_pruned) + extra
        if len(chosen) < wanted:
            remaining = {t: len(graph.predecessors(t)) - sum(1 for e in chosen if e[1] == t) for _, t in scores}
            for edge in sorted(scores, key=lambda e: (scores[e], e)):
                if len(chosen) >= wanted:
                    break
                if edge not in chosen and remaining[edge[1]] > 1:
                    chosen.add(edge)
                    remaining[edge[1]] -= 1
        return sorted(chosen, key=lambda e: (scores[e], e))  # weakest first


def _multi_input_targets(graph: AssembleNetGraph, weights: EdgeWeights) -> dict[int, list[int]]:
    """Targets with several inputs, each with its prunable inputs: those carrying a learned weight, except the
    only outgoing edge of a block alone at its level (pruning it would leave a node that cannot be absorbed,
    so it would be spared and the mutation would change nothing)."""
    out: dict[int, list[int]] = {}
    for target in range(len(graph.nodes)):
        inputs = graph.predecessors(target)
        if len(inputs) > 1:
            weighted = [s for s in inputs if (s, target) in weights and not _indispensable(graph, s)]
            if weighted:
                out[target] = weighted
    return out


def _indispensable(graph: AssembleNetGraph, source: int) -> bool:
    node = graph.nodes[source]
    return (isinstance(node, BlockNode) and node.level < OUTPUT_LEVEL and len(graph.successors(source)) == 1
            and len(graph.nodes_at_level(node.level)) == 1)


def rule_from_config(mutation: Any) -> PruneRule:
    """The prune rule a search config's ``mutation`` section describes."""
    return PruneRule(mutation.prune_rule, threshold=mutation.prune_threshold,
                     relative_threshold=mutation.relative_threshold, min_pruned=mutation.min_pruned)


def below_threshold_edges(graph: AssembleNetGraph, weights: EdgeWeights, threshold: float) -> list[tuple[int, int]]:
    """The edges the paper's absolute rule prunes (sigmoid weight below ``threshold``), without make-up."""
    return PruneRule("absolute", threshold=threshold, min_pruned=0).select(graph, weights)


def guided_connection_mutation(
    graph: AssembleNetGraph,
    learned_weights: EdgeWeights,
    *,
    space: SearchSpace,
    rng: random.Random,
    rule: PruneRule = PruneRule(),
    extra: int = 0,
) -> MutationResult | None:
    """Prune the edges ``rule`` condemns (``extra``: that many more of the next weakest), then add random
    edges (see the module docstring)."""
    pruned = rule.select(graph, learned_weights, extra=extra)
    if not pruned:
        return None  # no edge into a multi-input node carries a weight
    return _rewire(graph, pruned, space=space, rng=rng, kind="connection-guided",
                   extra=_rule_details(rule, extra))


def matched_connection_mutation(
    graph: AssembleNetGraph,
    learned_weights: EdgeWeights,
    *,
    space: SearchSpace,
    rng: random.Random,
    rule: PruneRule = PruneRule(),
    extra: int = 0,
) -> MutationResult | None:
    """The matched control of the guided mutation: at every node where the guided rule would prune k edges,
    prune k of its inputs chosen at random instead, then add edges the same way. Only the choice of which
    edges differs from guided evolution, not how many, where, or what follows."""
    guided = rule.select(graph, learned_weights, extra=extra)
    if not guided:
        return None
    per_target: dict[int, int] = {}
    for _, target in guided:
        per_target[target] = per_target.get(target, 0) + 1
    multi = _multi_input_targets(graph, learned_weights)
    chosen: set[tuple[int, int]] = set()
    for target in sorted(per_target):
        chosen.update((source, target) for source in rng.sample(multi[target], per_target[target]))
    pruned = [(e.source, e.target) for e in graph.edges() if (e.source, e.target) in chosen]
    extra_details = {**_rule_details(rule, extra), "guided_would_prune": [list(e) for e in guided]}
    return _rewire(graph, pruned, space=space, rng=rng, kind="connection-matched", extra=extra_details)


def _rule_details(rule: PruneRule, extra: int = 0) -> dict[str, Any]:
    details: dict[str, Any] = ({"rule": "relative", "relative_threshold": rule.relative_threshold}
                               if rule.kind == "relative" else {"rule": "absolute", "threshold": rule.threshold})
    details["min_pruned"] = rule.min_pruned
    if extra:
        details["extra_pruned"] = extra
    return details


def threshold_connections(
    graph: AssembleNetGraph,
    learned_weights: EdgeWeights,
    *,
    space: SearchSpace,
    rng: random.Random,
    rule: PruneRule = PruneRule(),
) -> MutationResult | None:
    """One-shot connection search: drop the edges ``rule`` condemns and add nothing (only repairs)."""
    pruned = rule.select(graph, learned_weights)
    if not pruned:
        return None
    return _rewire(graph, pruned, space=space, rng=rng, kind="oneshot-threshold", extra=_rule_details(rule),
                   add_random_edges=False)


def random_connection_mutation(
    graph: AssembleNetGraph,
    *,
    space: SearchSpace,
    rng: random.Random,
    prune_probability: float,
) -> MutationResult | None:
    """Drop each edge with ``prune_probability`` (used where a parent has no learned weights)."""
    pruned = [(e.source, e.target) for e in graph.edges() if rng.random() < prune_probability]
    if not pruned:
        return None
    return _rewire(graph, pruned, space=space, rng=rng, kind="connection-random",
                   extra={"prune_probability": prune_probability})


def _rewire(
    graph: AssembleNetGraph,
    pruned: list[tuple[int, int]],
    *,
    space: SearchSpace,
    rng: random.Random,
    kind: str,
    extra: dict[str, Any],
    add_random_edges: bool = True,
) -> MutationResult | None:
    draft = GraphDraft.from_graph(graph)
    parent_edge_count = len(graph.edges())
    for source, target in pruned:
        draft.nodes[target].inputs.discard(source)
    absorbed, spared = _absorb_disconnected(draft, graph, pruned, rng)
    pruned = [e for e in pruned if e not in spared]
    forbidden = frozenset(pruned)
    existing = set(draft.edges())
    candidates = [e for e in draft.allowed_edges() if e not in existing and e not in forbidden]
    added: list[tuple[int, int]] = []
    if candidates and add_random_edges:
        # Each candidate is added independently, so the expected edge count equals the parent's.
        p = min(1.0, (parent_edge_count - len(existing)) / len(candidates))
        added = [e for e in candidates if rng.random() < p]
        for source, target in added:
            draft.nodes[target].inputs.add(source)
    child = _finish(draft, space, rng, forbidden=forbidden)
    if child is None or child.graph.canonical_hash() == graph.canonical_hash():
        return None  # invalid, or nothing changed (every condemned edge was spared and nothing added)
    repaired = sorted(set(child.edges_as_pairs()) - existing - set(added))
    details = {**extra, "pruned": [list(e) for e in pruned], "added": [list(e) for e in added]}
    if spared:
        details["spared"] = [list(e) for e in spared]
    if absorbed:
        details["absorbed"] = [list(pair) for pair in absorbed]
    if repaired:
        details["repaired"] = [list(e) for e in repaired]
    return MutationResult(child.graph, Mutation(kind, details))


def _absorb_disconnected(
    draft: GraphDraft, parent: AssembleNetGraph, pruned: list[tuple[int, int]], rng: random.Random
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Remove each block whose every outgoing edge was pruned and give its filters to a random node of its
    level (keeping the budget): the learned weights say it is not worth its channels. A block alone at its
    level cannot be absorbed; it keeps the last of its pruned outgoing edges in ``pruned`` order (the
    strongest, for a guided rule's weakest-first list). Returns the ``(removed, receiver)`` pairs and the
    spared edges."""
    dead = [
        i for i in draft.order
        if not draft.nodes[i].is_stem and draft.nodes[i].level < OUTPUT_LEVEL
        and parent.successors(i) and not draft.consumers(i)
    ]
    absorbed, spared = [], []
    for node_id in dead:
        level = draft.nodes[node_id].level
        receivers = [i for i in draft.blocks_at_level(level) if i != node_id and i not in dead]
        if not receivers:
            keep = [e for e in pruned if e[0] == node_id][-1]
            draft.nodes[keep[1]].inputs.add(node_id)
            spared.append(keep)
            continue
        receiver = rng.choice(receivers)
        draft.nodes[receiver].filters += draft.nodes[node_id].filters
        draft.remove(node_id, heir=receiver)
        absorbed.append((node_id, receiver))
    return absorbed, spared


def read_off_attention(
    graph: AssembleNetGraph, attention: AttentionWeights, *, top_k: int = 1
) -> MutationResult | None:
    """The one-shot attention read-off (AssembleNet++, Fig. 2): every block node with learned peer attention
    keeps as attention sources its ``top_k`` strongest peers (softmax weight averaged over the node's
    connections; :mod:`assemblenet.search.attention`). Nodes without learned attention keep theirs. Returns
    None when ``attention`` holds nothing for this graph. ``details`` lists ``[node, peers, mean weights]``."""
    per_node = attention_per_node(attention, graph)
    chosen = {target: strongest_peers(weights, top_k) for target, weights in sorted(per_node.items()) if weights}
    if not chosen:
        return None
    child = with_attention_sources(graph, chosen)
    sources = [[t, peers, [round(per_node[t][p], 6) for p in peers]] for t, peers in chosen.items()]
    return MutationResult(child, Mutation("attention-readoff", {"top_k": top_k, "attention_sources": sources}))


def attention_mutation(
    graph: AssembleNetGraph,
    *,
    space: SearchSpace,
    rng: random.Random,
    learned_attention: AttentionWeights | None = None,
    top_k: int = 1,
) -> MutationResult | None:
    """Redraw one block node's attention sources (see the module docstring). Guided where
    ``learned_attention`` holds the node's peers, else random. Returns None when nothing changed."""
    choices = [i for i in graph.block_indices if len(graph.attention_candidates(i)) > top_k]
    if not choices:
        return None
    node = rng.choice(choices)
    current = graph.attention_sources(node)
    learned = attention_per_node(learned_attention, graph).get(node) if learned_attention else None
    if learned:
        kept = strongest_peers(learned, top_k)
    else:
        kept = sorted(rng.sample(current, min(top_k, len(current))))
    others = [p for p in graph.attention_candidates(node) if p not in current and p not in kept]
    added = [rng.choice(others)] if others else []
    new = sorted(set(kept) | set(added))
    old = graph.nodes[node].attention_sources  # type: ignore[union-attr]
    if old is not None and set(new) == set(old):
        return None
    child = with_attention_sources(graph, {node: new})
    if not space.contains(child):
        return None
    details = {"node": node, "old": None if old is None else list(old), "new": new, "kept": kept, "added": added}
    return MutationResult(child, Mutation("attention-guided" if learned else "attention-random", details))


def dilation_mutation(graph: AssembleNetGraph, *, space: SearchSpace, rng: random.Random) -> MutationResult | None:
    draft = GraphDraft.from_graph(graph)
    choices = [i for i in draft.order if len(space.dilations_for(draft.nodes[i])) > 1]
    if not choices:
        return None
    node_id = rng.choice(choices)
    node = draft.nodes[node_id]
    old = node.dilation
    node.dilation = rng.choice([d for d in space.dilations_for(node) if d != old])
    child = _finish(draft, space, rng)
    if child is None:
        return None
    return MutationResult(child.graph, Mutation("dilation", {"node": node_id, "old": old, "new": node.dilation}))


def split_mutation(graph: AssembleNetGraph, *, space: SearchSpace, rng: random.Random) -> MutationResult | None:
    draft = GraphDraft.from_graph(graph)
    choices = [i for i in draft.order if space.can_split(draft, i)]
    if not choices:
        return None
    node_id = rng.choice(choices)
    node = draft.nodes[node_id]
    total = node.filters
    half = (total // space.quantum // 2) * space.quantum
    node.filters = total - half
    attention = None if node.attention is None else set(node.attention)
    twin = type(node)(node.level, node.dilation, half, inputs=set(node.inputs), attention=attention)
    twin_id = draft.add(twin, after=node_id)
    for consumer in draft.consumers(node_id):
        draft.nodes[consumer].inputs.add(twin_id)
    for other in draft.nodes.values():  # both halves attend where the node did
        if other.attention is not None and node_id in other.attention:
            other.attention.add(twin_id)
    child = _finish(draft, space, rng)
    if child is None:
        return None
    return MutationResult(child.graph, Mutation("split", {"node": node_id, "filters": [total - half, half]}))


def merge_mutation(graph: AssembleNetGraph, *, space: SearchSpace, rng: random.Random) -> MutationResult | None:
    draft = GraphDraft.from_graph(graph)
    levels = sorted({draft.nodes[i].level for i in draft.order if not draft.nodes[i].is_stem})
    levels = [level for level in levels if space.can_merge_at(draft, level)]
    if not levels:
        return None
    level = rng.choice(levels)
    keep_id, drop_id = sorted(rng.sample(draft.blocks_at_level(level), 2), key=draft.order.index)
    keep, drop = draft.nodes[keep_id], draft.nodes[drop_id]
    keep.filters += drop.filters
    keep.inputs |= drop.inputs
    keep.dilation = rng.choice([keep.dilation, drop.dilation])
    if keep.attention is not None:  # the union of both sources; None (every candidate) absorbs any set
        keep.attention = None if drop.attention is None else keep.attention | drop.attention
    for consumer in draft.consumers(drop_id):
        draft.nodes[consumer].inputs.add(keep_id)
    draft.remove(drop_id, heir=keep_id)
    child = _finish(draft, space, rng)
    if child is None:
        return None
    return MutationResult(child.graph, Mutation("merge", {"nodes": [keep_id, drop_id], "level": level}))


@dataclass
class _Child:
    graph: AssembleNetGraph
    ids: list[int]  # draft id of each child node

    def edges_as_pairs(self) -> list[tuple[int, int]]:
        return [(self.ids[e.source], self.ids[e.target]) for e in self.graph.edges()]


def _finish(
    draft: GraphDraft, space: SearchSpace, rng: random.Random, *, forbidden: frozenset = frozenset()
) -> _Child | None:
    if not draft.repair(rng, forbidden=forbidden):
        return None
    try:
        graph = draft.to_graph()
    except GraphError:
        return None
    if not space.contains(graph):
        return None
    return _Child(graph, draft.sorted_ids())


# ---------------------------------------------------------------------- choosing a mutation
def mutate(
    parent: AssembleNetGraph,
    *,
    space: SearchSpace,
    rng: random.Random,
    kind: str | None = None,
    probabilities: Mapping[str, float] | None = None,
    connection: str = "guided",
    learned_weights: EdgeWeights | None = None,
    rule: PruneRule = PruneRule(),
    prune_probability: float = 0.2,
    max_attempts: int = 20,
    accept: Callable[[AssembleNetGraph], bool] = lambda graph: True,
    learned_attention: AttentionWeights | None = None,
    attention_top_k: int = 1,
) -> MutationResult | None:
    """Apply a mutation of ``kind`` (or one drawn by ``probabilities``), retrying with fresh randomness while
    it gives no valid child or ``accept`` rejects the child (e.g. a duplicate).

    The kind never changes silently: only after ``max_attempts`` failures of the chosen kind are the other
    kinds (those with a positive probability) tried, and such a child's details say ``fallback_from``. A
    connection mutation's retries (attempt a) condemn ``a // 2`` more of the next-weakest edges, since a parent
    that wins the tournament again would otherwise give the child it gave before.
    Returns None when nothing works.

    ``connection`` says how a connection mutation picks the edges it prunes: ``guided`` (by ``rule`` on the
    parent's ``learned_weights``), ``matched`` (as many edges at the same nodes, at random), or ``random``
    (each edge with ``prune_probability``). Guided and matched need ``learned_weights``; without them (a
    failed parent) the connection mutation is ``random``. The ``attention`` mutation is guided by the parent's
    ``learned_attention`` when ``connection`` is ``guided``, else random; it keeps ``attention_top_k`` peers.
    """
    if connection not in CONNECTION_MODES:
        raise ValueError(f"connection must be one of {CONNECTION_MODES}, got {connection!r}")
    probabilities = dict(probabilities or {})
    if kind is None:
        kinds = [k for k in sorted(probabilities) if probabilities[k] > 0]
        kind = rng.choices(kinds, weights=[probabilities[k] for k in kinds])[0]
    others = [k for k in sorted(probabilities) if probabilities[k] > 0 and k != kind]
    rng.shuffle(others)
    given = MutationInputs(space, rng, connection=connection, learned_weights=learned_weights, rule=rule,
                           prune_probability=prune_probability, learned_attention=learned_attention,
                           attention_top_k=attention_top_k)
    for attempt_kind in [kind, *others]:
        if attempt_kind not in MUTATIONS:
            raise ValueError(f"unknown mutation kind {attempt_kind!r}; expected one of {list(MUTATIONS)}")
        mutation_kind = MUTATIONS[attempt_kind]
        for attempt in range(max_attempts):
            result = mutation_kind.apply(parent, dataclasses.replace(given, extra=attempt // 2))
            if result is None:
                if not mutation_kind.applicable(parent, given):
                    break  # structurally impossible for this parent: retrying cannot help
                continue
            if accept(result.graph):
                if attempt_kind != kind:
                    mutation = Mutation(result.mutation.kind, {**result.mutation.details, "fallback_from": kind})
                    return MutationResult(result.graph, mutation)
                return result
    return None


@dataclass(frozen=True)
class MutationInputs:
    """What a mutation of any kind may read besides the parent (see :func:`mutate`). ``extra``: how many more
    edges a connection mutation condemns on a retry."""

    space: SearchSpace
    rng: random.Random
    connection: str = "guided"
    learned_weights: EdgeWeights | None = None
    rule: PruneRule = PruneRule()
    prune_probability: float = 0.2
    learned_attention: AttentionWeights | None = None
    attention_top_k: int = 1
    extra: int = 0


@dataclass(frozen=True)
class MutationKind:
    """One row of :data:`MUTATIONS`. ``apply`` makes a child (None: rejected, try again); ``applicable`` is
    False when no child of this kind can exist for the parent, so retrying cannot help."""

    apply: Callable[[AssembleNetGraph, MutationInputs], MutationResult | None]
    applicable: Callable[[AssembleNetGraph, MutationInputs], bool]


def _connection(parent: AssembleNetGraph, given: MutationInputs) -> MutationResult | None:
    weights, space, rng = given.learned_weights, given.space, given.rng
    if given.connection == "guided" and weights is not None:
        return guided_connection_mutation(parent, weights, space=space, rng=rng, rule=given.rule, extra=given.extra)
    if given.connection == "matched" and weights is not None:
        return matched_connection_mutation(parent, weights, space=space, rng=rng, rule=given.rule, extra=given.extra)
    return random_connection_mutation(parent, space=space, rng=rng, prune_probability=given.prune_probability)


def _attention(parent: AssembleNetGraph, given: MutationInputs) -> MutationResult | None:
    learned = given.learned_attention if given.connection == "guided" else None
    return attention_mutation(parent, space=given.space, rng=given.rng, top_k=given.attention_top_k,
                              learned_attention=learned)


def _can_rewire(parent: AssembleNetGraph, given: MutationInputs) -> bool:
    return True  # a rejected connection mutation may succeed with fresh randomness or more pruning


def _can_change_a_dilation(parent: AssembleNetGraph, given: MutationInputs) -> bool:
    draft = GraphDraft.from_graph(parent)
    return any(len(given.space.dilations_for(draft.nodes[i])) > 1 for i in draft.order)


def _can_split(parent: AssembleNetGraph, given: MutationInputs) -> bool:
    draft = GraphDraft.from_graph(parent)
    return any(given.space.can_split(draft, i) for i in draft.order)


def _can_merge(parent: AssembleNetGraph, given: MutationInputs) -> bool:
    draft = GraphDraft.from_graph(parent)
    return any(given.space.can_merge_at(draft, draft.nodes[i].level) for i in draft.order
               if not draft.nodes[i].is_stem)


def _can_redraw_attention(parent: AssembleNetGraph, given: MutationInputs) -> bool:
    return any(len(parent.attention_candidates(i)) > given.attention_top_k for i in parent.block_indices)


# The mutation kinds: the keys of ``mutation.probabilities`` (config validation reads them) and what each does.
MUTATIONS: dict[str, MutationKind] = {
    "connection": MutationKind(_connection, _can_rewire),
    "dilation": MutationKind(lambda parent, given: dilation_mutation(parent, space=given.space, rng=given.rng),
                             _can_change_a_dilation),
    "split": MutationKind(lambda parent, given: split_mutation(parent, space=given.space, rng=given.rng), _can_split),
    "merge": MutationKind(lambda parent, given: merge_mutation(parent, space=given.space, rng=given.rng), _can_merge),
    "attention": MutationKind(_attention, _can_redraw_attention),
}


def next_kind(probabilities: Mapping[str, float], credits: dict[str, float]) -> str:
    """The next child's mutation kind by smooth weighted round robin: every kind earns its probability in
    credit, the kind with the most credit (ties: by name) is dealt and pays the total back. Any run of n
    children then holds each kind n * p times, give or take one, so the realised mix is the configured one
    even in a short search; independent draws scatter it (10 draws at p = 0.5 give 3 or fewer connection
    mutations 17% of the time). ``credits`` is the scheduler's state and is updated in place."""
    kinds = [k for k in sorted(probabilities) if probabilities[k] > 0]
    total = sum(probabilities[k] for k in kinds)
    for k in kinds:
        credits[k] = credits.get(k, 0.0) + probabilities[k] / total
    chosen = max(kinds, key=lambda k: (credits[k], -kinds.index(k)))
    credits[chosen] -= 1.0
    return chosen
