"""Multi-view evaluation: view aggregation (mean/max) and report files, against direct computations.

Uses a stand-in dataset and model (defined here only) so the expected scores can be computed by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from assemblenet.engine import metrics as M
from assemblenet.engine.evaluator import evaluate, read_charades_submission, write_eval_outputs

NUM_VIDEOS, NUM_VIEWS, K = 7, 3, 4


class _Views(torch.utils.data.Dataset):
    """Item i is view i % NUM_VIEWS of video i // NUM_VIEWS; its clip is constant, so the stand-in model's
    logits are known in closed form."""

    def __init__(self, multi_label: bool) -> None:
        self.multi_label = multi_label
        self.num_classes = K
        self.class_names = [f"class{i}" for i in range(K)]
        rng = np.random.default_rng(0)
        self.values = rng.normal(size=(NUM_VIDEOS * NUM_VIEWS, K)).astype(np.float32)
        if multi_label:
            self.targets = (rng.random((NUM_VIDEOS, K)) < 0.4).astype(np.float32)
        else:
            self.targets = rng.integers(0, K, NUM_VIDEOS)

    def __len__(self):
        return NUM_VIDEOS * NUM_VIEWS

    def __getitem__(self, index):
        video = index // NUM_VIEWS
        clip = torch.from_numpy(self.values[index]).view(K, 1, 1, 1).expand(K, 2, 4, 4).clone()
        target = torch.tensor(self.targets[video]) if self.multi_label else torch.tensor(int(self.targets[video]))
        return clip, target, {"video_index": video, "video_id": f"vid{video}"}


class _MeanLogits(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3, 4))


def _expected(dataset: _Views, aggregation: str) -> np.ndarray:
    logits = torch.from_numpy(dataset.values)
    probs = torch.sigmoid(logits) if dataset.multi_label else torch.softmax(logits, dim=1)
    probs = probs.numpy().astype(np.float64).reshape(NUM_VIDEOS, NUM_VIEWS, K)
    return probs.mean(axis=1) if aggregation == "mean" else probs.max(axis=1)


@pytest.mark.parametrize("multi_label", [False, True])
@pytest.mark.parametrize("aggregation", ["mean", "max"])
def test_views_are_aggregated_per_video(multi_label, aggregation):
    dataset = _Views(multi_label)
    result = evaluate(_MeanLogits(), dataset, batch_size=4, aggregation=aggregation)
    expected = _expected(dataset, aggregation)
    np.testing.assert_allclose(result.scores, expected, rtol=1e-6)
    assert result.video_ids == [f"vid{v}" for v in range(NUM_VIDEOS)] and result.num_views == NUM_VIDEOS * NUM_VIEWS
    targets = dataset.targets
    assert result.metrics["map"] == pytest.approx(M.charades_map(expected, targets))
    assert result.metrics["top1"] == pytest.approx(M.topk_accuracy(expected, targets, 1))
    if not multi_label:
        assert result.metrics["mean_class_accuracy"] == pytest.approx(M.mean_class_accuracy(expected, targets))


def test_report_files(tmp_path):
    dataset = _Views(False)
    result = evaluate(_MeanLogits(), dataset, batch_size=5)
    written = write_eval_outputs(result, tmp_path)
    ids, scores = read_charades_submission(written["predictions"])
    assert ids == result.video_ids
    np.testing.assert_allclose(scores, result.scores, rtol=1e-5)
    matrix = np.loadtxt(written["confusion_matrix"], delimiter=",", skiprows=1, usecols=range(1, K + 1))
    assert matrix.sum() == NUM_VIDEOS and np.trace(matrix) == pytest.approx(result.metrics["top1"] * NUM_VIDEOS)
    ap_rows = written["per_class_ap"].read_text().splitlines()
    assert ap_rows[0] == "class_index,class_name,positives,ap_charades,ap_sklearn" and len(ap_rows) == K + 1
    assert written["confusion_matrix_png"].stat().st_size > 1000
