"""Fixtures of the engine tests."""

from __future__ import annotations

import pytest
import torch

from tests.engine._helpers import make_synthetic_set


@pytest.fixture(autouse=True)
def _single_thread():
    # The suite shares two cores with other work.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    return make_synthetic_set(tmp_path_factory.mktemp("synthetic"))
