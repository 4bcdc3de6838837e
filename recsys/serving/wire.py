"""What travels between the four servers: plain JSON values, and the hops that carry them.

A *hop* is the call from a transformer to the next server: over HTTP between processes (:class:`HttpHop`, or
KServe's own predictor call), or a direct call of the same ``kserve.Model`` object in the in-process chain
(:func:`local_predictor`, :func:`local_model`). The objects do not know which one they were given.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import polars as pl
from kserve import Model
from kserve.inference_client import InferenceRESTClient, RESTConfig

from recsys.serving.requests import BadRequest

Payload = dict[str, Any]
Hop = Callable[[Payload, dict[str, str] | None], Awaitable[Payload]]
Timings = dict[str, float]


@contextmanager
def timed(timings: Timings, name: str) -> Iterator[None]:
    """Add the block's wall time to ``timings[name]`` in milliseconds."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + (time.perf_counter() - start) * 1000


def rounded(timings: Mapping[str, float]) -> dict[str, float]:
    return {name: round(ms, 3) for name, ms in timings.items()}


# -- columns as JSON -----------------------------------------------------------------------------------------


def columns_to_arrays(columns: Any, kinds: Mapping[str, str]) -> tuple[dict[str, np.ndarray], int]:
    """The v1 columnar ``inputs`` back to arrays of the given kinds (``string``, ``int``, ``float``; null → NaN).

    Returns the arrays and the number of rows; :class:`BadRequest` names the input that is missing or malformed.
    """
    if not isinstance(columns, dict):
        raise BadRequest("inputs", "expected an object of columns")
    out: dict[str, np.ndarray] = {}
    lengths = set()
    for name, kind in kinds.items():
        if name not in columns or not isinstance(columns[name], list):
            raise BadRequest(f"inputs.{name}", "missing, or not a list")
        values = columns[name]
        try:
            if kind == "string":
                out[name] = np.asarray(values, dtype=object)
            elif kind == "int":
                out[name] = np.asarray(values, dtype=np.int64)
            else:
                out[name] = np.asarray(values, dtype=np.float64).astype(np.float32)
        except (TypeError, ValueError, OverflowError) as exc:
            raise BadRequest(f"inputs.{name}", f"not {kind} values of one shape ({exc})") from None
        lengths.add(len(values))
    if len(lengths) > 1:
        raise BadRequest("inputs", f"columns of different lengths {sorted(lengths)}")
    return out, lengths.pop() if lengths else 0


def frame_to_columns(frame: pl.DataFrame) -> dict[str, list[Any]]:
    """A frame as the v1 columnar ``inputs`` (a NaN stays NaN in process; JSON encoding makes it null)."""
    return frame.to_dict(as_series=False)


# -- hops -----------------------------------------------------------------------------------------------------


class HttpHop:
    """POST a v1 payload to ``/v1/models/<name>:predict`` of another server (KServe's REST client)."""

    def __init__(self, base_url: str, model_name: str, timeout_s: float = 30.0) -> None:
        self.base_url, self.model_name = base_url, model_name
        self._client = InferenceRESTClient(RESTConfig(protocol="v1", timeout=timeout_s))

    async def __call__(self, payload: Payload, headers: dict[str, str] | None = None) -> Payload:
        forwarded = {k: v for k, v in (headers or {}).items() if k.lower() == "x-request-id"}
        return await self._client.infer(self.base_url, payload, model_name=self.model_name, headers=forwarded)


def local_predictor(model: Model) -> Hop:
    """The predictor's ``predict`` called directly (the in-process chain)."""

    async def hop(payload: Payload, headers: dict[str, str] | None = None) -> Payload:
        return await model.predict(payload, headers)

    return hop


def local_model(model: Model) -> Hop:
    """A whole server — preprocess, predict, postprocess — called directly (the in-process chain)."""

    async def hop(payload: Payload, headers: dict[str, str] | None = None) -> Payload:
        return await run_model(model, payload, headers)

    return hop


async def run_model(model: Model, payload: Any, headers: dict[str, str] | None = None) -> Payload:
    """What KServe does with a request, without HTTP: preprocess → predict → postprocess."""
    prepared = await model.preprocess(payload, headers)
    return await model.postprocess(await model.predict(prepared, headers), headers)
