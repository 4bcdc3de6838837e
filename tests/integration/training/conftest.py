"""Fixtures of the training integration tests."""

from __future__ import annotations

import pytest
from smallrun import SmallRun, train_small


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> SmallRun:
    """A fresh store backfilled with ``synthetic:small`` (seed 42) and the towers trained on its time split."""
    return train_small(tmp_path_factory)
