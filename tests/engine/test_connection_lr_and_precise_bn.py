"""The connection logits' optimiser group, and precise BN (re-estimated statistics before validation)."""

from __future__ import annotations

import torch
from torch import nn

from assemblenet.engine import run_training
from assemblenet.engine.config import load_config
from assemblenet.engine.modeling import build_model, precise_bn
from assemblenet.engine.optim import ATTENTION_GROUP, CONNECTION_GROUP, build_optimizer, build_scheduler

from ._helpers import tiny_config


def _model_and_optimizer(attention_mode=None, **optim):
    cfg = load_config({"model": {"name": "assemblenet50_searchable", "depth": 26, "width_multiplier": 0.125,
                                 "attention_mode": attention_mode},
                       "optim": {"weight_decay": 1e-4, **optim}})
    model, _ = build_model(cfg.model, 5)
    return model, cfg, build_optimizer(model, cfg.optim, lr=0.2)


def test_connection_logits_get_their_own_rate_and_no_decay():
    model, _, optimizer = _model_and_optimizer(connection_lr_multiplier=25.0)
    groups = {g["name"]: g for g in optimizer.param_groups}
    logits = {id(p) for n, p in model.named_parameters() if n.endswith("edge_logits")}
    assert logits and {id(p) for p in groups[CONNECTION_GROUP]["params"]} == logits
    assert groups[CONNECTION_GROUP]["lr"] == 0.2 * 25.0 and groups[CONNECTION_GROUP]["weight_decay"] == 0.0
    assert groups["decay"]["lr"] == 0.2 and groups["decay"]["weight_decay"] == 1e-4
    every = [id(p) for g in optimizer.param_groups for p in g["params"]]
    assert sorted(every) == sorted(id(p) for p in model.parameters() if p.requires_grad)  # each exactly once


def test_peer_attention_logits_get_their_own_rate_and_no_decay():
    model, _, optimizer = _model_and_optimizer("peer", connection_lr_multiplier=10.0, attention_lr_multiplier=1e4)
    groups = {g["name"]: g for g in optimizer.param_groups}
    logits = {id(p) for n, p in model.named_parameters() if n.endswith("peer_logits")}
    assert logits and {id(p) for p in groups[ATTENTION_GROUP]["params"]} == logits
    assert groups[ATTENTION_GROUP]["lr"] == 0.2 * 1e4 and groups[ATTENTION_GROUP]["weight_decay"] == 0.0
    assert groups[CONNECTION_GROUP]["lr"] == 0.2 * 10.0
    every = [id(p) for g in optimizer.param_groups for p in g["params"]]
    assert sorted(every) == sorted(id(p) for p in model.parameters() if p.requires_grad)
    _, _, plain = _model_and_optimizer(attention_lr_multiplier=1e4)
    assert ATTENTION_GROUP not in {g["name"] for g in plain.param_groups}  # no attention, no group


def test_connection_group_can_skip_the_warm_up():
    for warmup, first_factor in ((True, 0.1), (False, 1.0)):
        _, cfg, optimizer = _model_and_optimizer(connection_lr_multiplier=10.0)
        build_scheduler(optimizer, total_steps=100, warmup_steps=10, schedule="cosine", peak_lr=0.2, min_lr=0.0,
                        connection_warmup=warmup)
        groups = {g["name"]: g for g in optimizer.param_groups}
        assert abs(groups["decay"]["lr"] - 0.2 * 0.1) < 1e-12  # everything else warms up
        assert abs(groups[CONNECTION_GROUP]["lr"] - 2.0 * first_factor) < 1e-12


def test_precise_bn_is_the_plain_mean_of_the_batch_statistics():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(3, 4, 1), nn.BatchNorm3d(4, momentum=0.01))
    batches = [torch.rand(2, 3, 2, 4, 4) * (k + 1) for k in range(3)]
    model.eval()
    used = precise_bn(model, batches, torch.device("cpu"))
    assert used == 3 and not model.training and model[1].momentum == 0.01
    with torch.no_grad():
        feats = [model[0](b) for b in batches]
    means = torch.stack([f.mean(dim=(0, 2, 3, 4)) for f in feats]).mean(0)
    variances = torch.stack([f.transpose(0, 1).reshape(4, -1).var(dim=1, unbiased=True) for f in feats]).mean(0)
    torch.testing.assert_close(model[1].running_mean, means)
    torch.testing.assert_close(model[1].running_var, variances)


def test_precise_bn_changes_evaluation_not_the_training_trajectory(synthetic_root):
    results = {}
    for batches in (0, 3):
        cfg = tiny_config(synthetic_root, None, train={"num_threads": 1, "progress": False,
                                                       "precise_bn_batches": batches, "eval_every_epochs": 0})
        results[batches] = run_training(cfg, max_steps=6)
    plain, precise = results[0].model.state_dict(), results[3].model.state_dict()
    params = {n for n, _ in results[0].model.named_parameters()}
    for name in params:
        torch.testing.assert_close(plain[name], precise[name], rtol=0, atol=0)  # same updates
    stats = [n for n in plain if n.endswith("running_mean")]
    assert any(not torch.equal(plain[n], precise[n]) for n in stats)
    # After 6 steps at momentum 0.01 the running means are still close to their initial zeros; precise BN's
    # are the real activation means.
    drift = lambda sd: sum(float(sd[n].abs().mean()) for n in stats)  # noqa: E731
    assert drift(precise) > 5 * drift(plain)


def test_contributions_are_measured_after_training_without_changing_it(synthetic_root):
    results = {}
    for batches in (0, 2):
        cfg = tiny_config(synthetic_root, None, train={"num_threads": 1, "progress": False, "precise_bn_batches": 2,
                                                       "contribution_batches": batches, "eval_every_epochs": 0})
        results[batches] = run_training(cfg, max_steps=4)
    assert results[0].connection_contributions == {}
    measured = results[2].connection_contributions
    assert set(measured) == set(results[2].connection_weights)  # every edge of the graph
    assert all(value > 0 and value == value for value in measured.values())
    assert results[2].metrics == results[0].metrics  # measured after validation, on its own RNG
    plain, with_contributions = results[0].model.state_dict(), results[2].model.state_dict()
    for name, tensor in plain.items():
        torch.testing.assert_close(with_contributions[name], tensor, rtol=0, atol=0)  # BN statistics too
