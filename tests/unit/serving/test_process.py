"""The serving process's event loop: uvloop, as KServe's ``event_loop="auto"`` promises but does not deliver."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest
import uvloop

from recsys.serving.process import use_uvloop


@pytest.fixture
def restored_policy() -> Iterator[None]:
    policy = asyncio.get_event_loop_policy()
    yield
    current = asyncio.get_event_loop_policy()
    if current is not policy:  # close the loop use_uvloop set
        with contextlib.suppress(RuntimeError):
            current.get_event_loop().close()
    asyncio.set_event_loop_policy(policy)


async def _running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def test_asyncio_run_runs_on_uvloop(restored_policy: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECSYS_EVENT_LOOP", raising=False)
    assert use_uvloop()
    # what KServe's ModelServer.start does: configure the current loop, then asyncio.run its servers
    assert isinstance(asyncio.get_event_loop(), uvloop.Loop)
    assert isinstance(asyncio.run(_running_loop()), uvloop.Loop)


def test_the_environment_keeps_asyncios_loop(restored_policy: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSYS_EVENT_LOOP", "asyncio")
    assert not use_uvloop()
    assert not isinstance(asyncio.run(_running_loop()), uvloop.Loop)
