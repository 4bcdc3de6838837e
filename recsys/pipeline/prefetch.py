"""Compute the next item of a chunked job while the caller still writes the current one.

The feature pipeline streams customer-history snapshots into the store chunk by chunk: computing a chunk is numpy
and polars work, writing it is parquet encoding and SQLite inserts, and both release the GIL for most of their
time. On a 2-core machine, doing them one after the other leaves a core idle; :func:`prefetched` overlaps them
with one worker thread while holding at most two chunks (the one being written and the next).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
_END = object()


def prefetched(items: Iterable[T]) -> Iterator[T]:
    """The items of ``items`` in order, each next one produced in a worker thread while this one is used.

    An exception raised while producing an item is raised here, at that item. The worker asks for the next item
    only once the previous one has been handed over, so at most two exist at a time. Closing the iterator early
    waits for the item in progress and drops it.
    """
    source = iter(items)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as worker:
        pending = worker.submit(next, source, _END)
        while True:
            item = pending.result()
            if item is _END:
                return
            pending = worker.submit(next, source, _END)
            yield item  # type: ignore[misc]
