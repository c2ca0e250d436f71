"""Every metric against an independent computation (scikit-learn or a brute-force definition), on random data
with ties, classes without positives and videos without labels."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from assemblenet.engine import metrics as M


def _multilabel_case(seed: int, *, n: int = 40, k: int = 9, tied: bool):
    rng = np.random.default_rng(seed)
    scores = rng.random((n, k))
    if tied:
        scores = np.round(scores, 1)  # many ties
    targets = (rng.random((n, k)) < 0.25).astype(int)
    targets[:, 2] = 0  # a class without positives
    targets[:4] = 0  # videos without any label
    targets[5, 3] = 1  # keep at least one positive elsewhere
    return scores, targets


def _brute_force_charades_ap(scores: np.ndarray, targets: np.ndarray) -> list[float]:
    """The official definition written out loop by loop: unlabeled videos get -inf everywhere; rank by score,
    ties in video order; AP = mean precision at each positive; classes without positives skipped (nan)."""
    n, k = scores.shape
    out = []
    for c in range(k):
        column = [(-np.inf if targets[i].sum() == 0 else scores[i, c], i) for i in range(n)]
        ranked = sorted(column, key=lambda pair: (-pair[0], pair[1]))
        positives = sum(targets[i, c] for i in range(n))
        if positives == 0:
            out.append(float("nan"))
            continue
        hits, total = 0, 0.0
        for rank, (_, i) in enumerate(ranked, start=1):
            if targets[i, c]:
                hits += 1
                total += hits / rank
        out.append(total / positives)
    return out


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("tied", [False, True])
def test_sklearn_style_ap_matches_sklearn(seed, tied):
    scores, targets = _multilabel_case(seed, tied=tied)
    ours = M.sklearn_average_precision(scores, targets)
    keep = targets.sum(axis=0) > 0
    assert np.isnan(ours[~keep]).all()
    for c in np.flatnonzero(keep):
        assert ours[c] == pytest.approx(skm.average_precision_score(targets[:, c], scores[:, c]), abs=1e-12)
    expected_map = skm.average_precision_score(targets[:, keep], scores[:, keep], average="macro")
    assert M.sklearn_map(scores, targets) == pytest.approx(expected_map, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("tied", [False, True])
def test_charades_ap_matches_brute_force_definition(seed, tied):
    scores, targets = _multilabel_case(seed, tied=tied)
    ours = M.charades_average_precision(scores, targets)
    expected = _brute_force_charades_ap(scores, targets)
    np.testing.assert_allclose(ours, expected, atol=1e-12, equal_nan=True)
    assert M.charades_map(scores, targets) == pytest.approx(np.nanmean(expected), abs=1e-12)


def test_charades_ap_ranks_unlabeled_videos_last():
    # An unlabeled video with the top score would cost precision in the sklearn-style AP, not in the official.
    scores = np.array([[0.9], [0.8], [0.1]])
    targets = np.array([[0], [1], [0]])
    assert M.charades_average_precision(scores, targets)[0] == pytest.approx(1.0)
    assert M.sklearn_average_precision(scores, targets)[0] == pytest.approx(0.5)
    assert skm.average_precision_score(targets[:, 0], scores[:, 0]) == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(3))
def test_both_maps_agree_without_ties_or_unlabeled_videos(seed):
    rng = np.random.default_rng(seed)
    scores = rng.random((30, 7))
    targets = (rng.random((30, 7)) < 0.3).astype(int)
    targets[np.arange(30), rng.integers(0, 7, 30)] = 1  # every video has a label
    assert M.charades_map(scores, targets) == pytest.approx(M.sklearn_map(scores, targets), abs=1e-12)


def _single_label_case(seed: int, *, n: int = 60, k: int = 8, tied: bool):
    rng = np.random.default_rng(seed)
    scores = rng.random((n, k))
    if tied:
        scores = np.round(scores * 3) / 3
    targets = rng.integers(0, k - 1, n)  # class k-1 never occurs
    return scores, targets


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_topk_matches_sklearn(seed, tied, k):
    scores, targets = _single_label_case(seed, tied=tied)
    num_classes = scores.shape[1]
    # sklearn breaks ties towards the higher class index; ours towards the lower one. Reversing the class
    # order turns one convention into the other.
    expected = skm.top_k_accuracy_score(num_classes - 1 - targets, scores[:, ::-1], k=k,
                                        labels=np.arange(num_classes))
    assert M.topk_accuracy(scores, targets, k) == pytest.approx(expected, abs=1e-12)


def test_topk_on_multi_hot_targets_is_hit_at_k():
    scores = np.array([[0.9, 0.5, 0.1], [0.2, 0.3, 0.8], [0.5, 0.5, 0.4]])
    targets = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]])
    assert M.topk_accuracy(scores, targets, 1) == 0.0
    assert M.topk_accuracy(scores, targets, 2) == pytest.approx(1 / 3)
    assert M.topk_accuracy(scores, targets, 3) == pytest.approx(2 / 3)  # the unlabeled video never hits


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("tied", [False, True])
def test_confusion_matrix_and_mean_class_accuracy_match_sklearn(seed, tied):
    scores, targets = _single_label_case(seed, tied=tied)
    k = scores.shape[1]
    predicted = np.argmax(scores, axis=1)  # numpy's argmax also picks the lowest index among ties
    ours = M.confusion_matrix(M.class_ranks(scores)[:, 0], targets, k)
    np.testing.assert_array_equal(ours, skm.confusion_matrix(targets, predicted, labels=np.arange(k)))
    with pytest.warns(UserWarning):  # sklearn warns about the class that never occurs
        expected = skm.balanced_accuracy_score(targets, predicted)
    assert M.mean_class_accuracy(scores, targets) == pytest.approx(expected, abs=1e-12)
    assert np.isnan(M.per_class_accuracy(scores, targets)[k - 1])


def test_compute_metrics_reports_both_maps_by_name():
    scores, targets = _multilabel_case(0, tied=True)
    multi = M.compute_metrics(scores, targets, multi_label=True)
    assert {"map", "map_sklearn", "top1", "top5"} <= set(multi)
    assert "mean_class_accuracy" not in multi
    assert multi["map"] != multi["map_sklearn"]  # ties and unlabeled videos separate the definitions
    scores, labels = _single_label_case(1, tied=False)
    single = M.compute_metrics(scores, labels, multi_label=False)
    assert single["top1"] == pytest.approx(skm.accuracy_score(labels, scores.argmax(1)))
    one_hot = np.eye(scores.shape[1])[labels]
    keep = one_hot.sum(0) > 0
    assert single["map_sklearn"] == pytest.approx(
        skm.average_precision_score(one_hot[:, keep], scores[:, keep], average="macro"))
    assert M.primary_metric_name("auto", True) == "map" and M.primary_metric_name("auto", False) == "top1"
