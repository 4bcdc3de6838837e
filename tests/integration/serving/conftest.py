"""Fixtures of the serving tests: one tiny model set per session (see ``tinyrun.py``)."""

from __future__ import annotations

import pytest
from tinyrun import TinyRun, build_tiny_run


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    return build_tiny_run(tmp_path_factory.mktemp("serving_home"))
