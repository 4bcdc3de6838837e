"""Fixtures for the feature store contract tests: one test body, every backend.

``local`` always runs, in a fresh temporary RECSYS_HOME. ``hopsworks`` runs only when HOPSWORKS_API_KEY is set
(marker ``hopsworks``); its groups get a unique name suffix so runs never collide on a shared cluster.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from recsys.config import load_settings
from recsys.store import Project, connect

HAS_HOPSWORKS = bool(os.environ.get("HOPSWORKS_API_KEY"))

BACKENDS = [
    "local",
    pytest.param(
        "hopsworks",
        marks=[
            pytest.mark.hopsworks,
            pytest.mark.skipif(not HAS_HOPSWORKS, reason="needs HOPSWORKS_API_KEY"),
        ],
    ),
]


@pytest.fixture(params=BACKENDS)
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Project:
    """A connected project of each backend."""
    return connect(load_settings(backend=request.param, home=tmp_path / "home"))


@pytest.fixture
def local_project(tmp_path: Path) -> Project:
    """The embedded backend only (for properties Hopsworks does not expose: time travel, files, SQLite)."""
    return connect(load_settings(backend="local", home=tmp_path / "home"))


@pytest.fixture
def unique(project: Project) -> Callable[[str], str]:
    """Names that are unique per test run on shared backends, plain on the local one."""
    suffix = "" if project.backend == "local" else f"_{uuid.uuid4().hex[:8]}"
    return lambda base: f"{base}{suffix}"
