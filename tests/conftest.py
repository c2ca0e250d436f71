"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

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
def synthetic_root(tmp_path_factory) -> Path:
    """The tiny synthetic set of the engine and engine-CLI tests (``tests.engine._helpers.SYNTHETIC_KW``).
    ``tests/data`` overrides it with its own set."""
    return make_synthetic_set(tmp_path_factory.mktemp("synthetic"))
