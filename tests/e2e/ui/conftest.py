"""Fixtures of the UI tests: a tiny trained model set of their own and the four real servers on free ports.

The model set comes from the serving tests' builder (``tests/integration/serving/tinyrun.py``), imported from
its folder; the UI tests buy articles, so they get their own store rather than share the serving tests'.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration" / "serving"))

from tinyrun import TinyRun, build_tiny_run

from recsys.serving.servers import Ports, ServingStack, running_servers


@pytest.fixture(scope="session")
def ui_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    return build_tiny_run(tmp_path_factory.mktemp("ui_home"))


@pytest.fixture(scope="session")
def ui_stack(ui_run: TinyRun, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServingStack]:
    """The four KServe servers of the tiny run on free loopback ports, stopped at the end of the session."""
    logs = tmp_path_factory.mktemp("ui_serving_logs")
    with running_servers(ui_run.settings, ui_run.run_id, ports=Ports(0, 0, 0, 0), log_dir=logs) as stack:
        yield stack


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, ui_run: TinyRun, ui_stack: ServingStack) -> ServingStack:
    """The app's settings (it reads the environment like every program of the project): the store and endpoint."""
    monkeypatch.setenv("RECSYS_HOME", str(ui_run.settings.home.resolve()))
    monkeypatch.setenv("RECSYS_UI_ENDPOINT_URL", ui_stack.url)
    return ui_stack
