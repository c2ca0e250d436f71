"""Every trainable parameter of every model gets a gradient: DDP runs without ``find_unused_parameters``, which
fails at the second step when one does not. Layers a node never calls must not exist."""

import warnings

import pytest
import torch

from assemblenet.graph import AssembleNetGraph, BlockNode, StemNode, StemType, official_graph
from assemblenet.graph.official import official_graph_names
from assemblenet.models import build_assemblenet, build_assemblenet_lite, create_model, list_models

MODES = [None, "self", "peer"]
TINY = dict(width_multiplier=0.125)


def _unused_parameters(model: torch.nn.Module) -> list[str]:
    model.train()
    x = torch.rand(2, 3, 4, 32, 32)
    objects = torch.randint(0, model.num_object_classes, (2, 1, 4, 32, 32)) if model.has_object_stem else None
    model(x, None, objects).logsumexp(dim=1).sum().backward()
    return [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list_models())
def test_every_preset_gives_every_trainable_parameter_a_gradient(name, mode):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the dead-node warning is tested below
        model = create_model(name, num_classes=3, attention_mode=mode, **TINY)
    assert _unused_parameters(model) == []


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", official_graph_names())
def test_every_official_graph_gives_every_trainable_parameter_a_gradient(name, mode):
    torch.manual_seed(0)
    graph = official_graph(name)
    build = build_assemblenet_lite if graph.uses_filter_triples else build_assemblenet
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build(graph=graph, num_classes=3, attention_mode=mode, **TINY)
    assert _unused_parameters(model) == []


def test_asnp50_node_9_is_pruned_with_a_warning_unless_peer_attention_reads_it():
    graph = official_graph("asnp50")
    assert graph.unreachable_nodes() == [9]
    assert graph.unreachable_nodes(through_attention=True) == []  # higher nodes attend to it
    with pytest.warns(UserWarning, match=r"node\(s\) \[9\] reach no output"):
        model = build_assemblenet(graph=graph, num_classes=3, **TINY)
    assert model.pruned_nodes == [9]
    assert not any(name.startswith("nodes.4.") for name, _ in model.named_parameters())
    outputs = model.forward_nodes(torch.rand(1, 3, 4, 32, 32), None, torch.randint(0, 151, (1, 1, 4, 32, 32)))
    assert outputs[9].numel() == 0 and outputs[10].numel() > 0
    assert (9, 13) not in model.connection_weights()
    # The learned graph keeps node 9 and the weights the official graph gave it.
    assert model.graph_with_learned_weights().nodes[9].edge_weights == graph.nodes[9].edge_weights
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is pruned: no warning
        peer = build_assemblenet(graph=graph, num_classes=3, attention_mode="peer", **TINY)
    assert peer.pruned_nodes == []


def test_a_chain_of_dead_nodes_and_a_stem_feeding_only_them_are_all_pruned():
    rgb, flow = StemNode(StemType.RGB), StemNode(StemType.FLOW)
    nodes = (rgb, flow,
             BlockNode(level=0, inputs=(0,), filters=8),      # 2: alive
             BlockNode(level=0, inputs=(1,), filters=8),      # 3: dead (feeds 4 only)
             BlockNode(level=1, inputs=(3,), filters=8),      # 4: dead (feeds nothing)
             BlockNode(level=3, inputs=(2,), filters=8))      # 5: the output
    graph = AssembleNetGraph(nodes, name="chain", allow_dead_nodes=True)
    assert graph.unreachable_nodes() == [1, 3, 4]
    with pytest.warns(UserWarning, match=r"\[1, 3, 4\]"):
        model = build_assemblenet(graph=graph, num_classes=2, width_multiplier=0.25)
    assert model.flow_layer is None and not model.has_flow_stem  # the only flow stem is dead: no flow computed
    assert _unused_parameters(model) == []
    # The learned graph keeps every node: stems carry no weights, pruned or not (a pruned stem used to raise).
    learned = model.graph_with_learned_weights()
    assert learned.nodes[:2] == (rgb, flow)
    assert [node.edge_weights for node in learned.nodes[2:]] == [None] * 4  # single inputs: nothing to learn
