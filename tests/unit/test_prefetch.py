"""prefetched: the next chunk is made in a worker while this one is used, in order, never more than one ahead."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from recsys.pipeline.prefetch import prefetched


def _numbers(n: int, log: list[str], delay: float = 0.0) -> Iterator[int]:
    for i in range(n):
        time.sleep(delay)
        log.append(f"made {i}")
        yield i


def test_items_come_in_order_and_all_of_them() -> None:
    assert list(prefetched(_numbers(50, []))) == list(range(50))
    assert list(prefetched([])) == []


def test_the_next_item_is_made_while_this_one_is_used_but_never_two_ahead() -> None:
    log: list[str] = []
    for i in prefetched(_numbers(4, log)):
        time.sleep(0.05)  # the worker has time to run ahead, if it would
        log.append(f"used {i}")
    # item i+1 is made while i is used (before "used i"), and i+2 only once i+1 has been handed over
    assert log == ["made 0", "made 1", "used 0", "made 2", "used 1", "made 3", "used 2", "used 3"]


def test_items_are_made_in_another_thread_overlapping_the_consumer() -> None:
    makers: set[str] = set()

    def slow() -> Iterator[int]:
        for i in range(4):
            makers.add(threading.current_thread().name)
            time.sleep(0.1)
            yield i

    started = time.perf_counter()
    for _ in prefetched(slow()):
        time.sleep(0.1)
    elapsed = time.perf_counter() - started
    assert makers and all(name.startswith("prefetch") for name in makers)
    assert elapsed < 0.7  # one after the other would take 0.8 s; overlapped about 0.5 s


def test_an_error_while_making_an_item_is_raised_at_that_item() -> None:
    def failing() -> Iterator[int]:
        yield 0
        yield 1
        raise ValueError("chunk 2 is bad")

    got = []
    with pytest.raises(ValueError, match="chunk 2 is bad"):
        for i in prefetched(failing()):
            got.append(i)
    assert got == [0, 1]


def test_closing_early_stops_asking_for_items() -> None:
    log: list[str] = []
    items = prefetched(_numbers(100, log))
    assert next(items) == 0
    items.close()
    assert log == ["made 0", "made 1"]  # the one in progress is finished and dropped; nothing more is made
