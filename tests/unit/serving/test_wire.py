"""What travels between the servers: columnar inputs, and the public endpoint's body limit."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import orjson
import polars as pl
import pytest

from recsys.serving.process import BodyLimit, ServerSpec
from recsys.serving.requests import BadRequest
from recsys.serving.wire import columns_to_arrays, frame_to_columns

KINDS = {"customer_id": "string", "last_article_ids": "int", "age": "float"}


def test_columns_to_arrays() -> None:
    arrays, n = columns_to_arrays(
        {"customer_id": ["a", ""], "last_article_ids": [[1, 2], [3, -1]], "age": [31, None], "extra": [0, 0]}, KINDS
    )
    assert n == 2 and set(arrays) == set(KINDS)  # unknown columns are ignored
    assert arrays["customer_id"].dtype == object and arrays["last_article_ids"].shape == (2, 2)
    assert arrays["age"].dtype == np.float32 and math.isnan(arrays["age"][1])


@pytest.mark.parametrize(
    ("columns", "field"),
    [
        ([1], "inputs"),
        ({"customer_id": ["a"], "age": [1.0]}, "inputs.last_article_ids"),
        ({"customer_id": ["a"], "last_article_ids": [[1]], "age": ["old"]}, "inputs.age"),
        ({"customer_id": ["a"], "last_article_ids": [[1, 2], [3]], "age": [1.0, 2.0]}, "inputs.last_article_ids"),
        ({"customer_id": ["a"], "last_article_ids": [[1]], "age": [1.0, 2.0]}, "inputs"),
    ],
)
def test_bad_columns_name_the_input(columns: Any, field: str) -> None:
    with pytest.raises(BadRequest) as caught:
        columns_to_arrays(columns, KINDS)
    assert caught.value.field == field


def test_frame_to_columns_keeps_order_and_nulls() -> None:
    frame = pl.DataFrame({"a": ["x", "MISSING"], "b": [1.5, None]}, schema_overrides={"b": pl.Float32})
    assert frame_to_columns(frame) == {"a": ["x", "MISSING"], "b": [1.5, None]}


def test_server_spec_round_trip() -> None:
    spec = ServerSpec("ranking_transformer", 8082, "run-1", "/tmp/home", predictor_port=8083, options={"max_top_k": 5})
    assert ServerSpec.from_json(spec.to_json()) == spec
    with pytest.raises(ValueError, match="unknown server role"):
        ServerSpec("gateway", 1, "run-1", "/tmp")


# -- the body limit, as an ASGI middleware in front of a stand-in app that echoes what it read ---------------


async def _call(middleware: BodyLimit, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[int, Any]:
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await middleware({"type": "http", "method": "POST", "headers": headers}, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], orjson.loads(body)


async def _echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": orjson.dumps({"read": body.decode()})})


def test_body_limit() -> None:
    limit = BodyLimit(_echo, max_bytes=32)
    ok = b'{"instances": []}'
    assert asyncio.run(_call(limit, [ok], [(b"content-length", str(len(ok)).encode())])) == (
        200,
        {"read": ok.decode()},
    )
    assert asyncio.run(_call(limit, [ok[:5], ok[5:]], [])) == (200, {"read": ok.decode()})  # chunked: replayed whole
    status, error = asyncio.run(_call(limit, [b"x" * 40], [(b"content-length", b"40")]))
    assert status == 400 and error["field"] == "body" and "limit is 32" in error["error"]
    status, error = asyncio.run(_call(limit, [b"{" * 20, b"{" * 20], []))  # no length announced: counted
    assert status == 400 and error["field"] == "body"
    status, error = asyncio.run(_call(limit, [b"{not json"], []))
    assert status == 400 and error["error"].startswith("body: not valid JSON")
