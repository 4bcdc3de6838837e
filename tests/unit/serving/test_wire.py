"""What travels between the servers: columnar inputs, and the public endpoint's body limit."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import orjson
import polars as pl
import pytest
from aiohttp import web
from kserve.errors import InferenceError

from recsys.serving.process import CLOUDEVENT_HEADERS, BodyLimit, CloudEventRequests, ServerSpec
from recsys.serving.requests import BadRequest
from recsys.serving.wire import HttpHop, columns_to_arrays, frame_to_columns, listed

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


LENGTHS = {"customer_id": None, "last_article_ids": 2, "age": None}
GOOD = {"customer_id": ["a"], "last_article_ids": [[1, 2]], "age": [31.0]}


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("last_article_ids", [1]),  # one id where a list of ids belongs
        ("last_article_ids", [[1]]),  # a list of another length
        ("last_article_ids", [[1.5, 2]]),
        ("last_article_ids", [["1", "2"]]),
        ("last_article_ids", [[True, 2]]),
        ("last_article_ids", [[10**30, 2]]),  # beyond int64
        ("customer_id", [7]),
        ("customer_id", [None]),
        ("customer_id", [{"id": "a"}]),
        ("customer_id", [["a"]]),
        ("age", ["31"]),  # numpy would read it as 31
        ("age", [True]),
        ("age", [[31.0]]),
        ("age", [1e308]),  # inf as a float32
        ("age", [-(10**39)]),
    ],
)
def test_values_of_the_wrong_type_or_shape_name_the_input(name: str, values: list[Any]) -> None:
    with pytest.raises(BadRequest) as caught:
        columns_to_arrays({**GOOD, name: values}, KINDS, LENGTHS)
    assert caught.value.field == f"inputs.{name}"


def test_the_largest_float32_and_nulls_are_taken() -> None:
    columns = {"customer_id": ["a", "b", "c"], "last_article_ids": [[1, 2]] * 3, "age": [3.4e38, None, -3.4e38]}
    arrays, n = columns_to_arrays(columns, KINDS, LENGTHS)
    assert n == 3 and np.isfinite(arrays["age"][[0, 2]]).all() and np.isnan(arrays["age"][1])
    assert arrays["last_article_ids"].dtype == np.int64 and arrays["last_article_ids"].shape == (3, 2)


def test_frame_to_columns_keeps_order_and_nulls_and_sends_numbers_as_arrays() -> None:
    frame = pl.DataFrame(
        {"a": ["x", "MISSING"], "b": [1.5, None], "c": [1, 2], "d": [1, None]}, schema_overrides={"b": pl.Float32}
    )
    columns = frame_to_columns(frame)
    assert list(columns) == ["a", "b", "c", "d"] and columns["a"] == ["x", "MISSING"] and columns["d"] == [1, None]
    assert columns["b"].dtype == np.float32 and columns["b"][0] == 1.5 and np.isnan(columns["b"][1])
    assert columns["c"].tolist() == [1, 2]
    # on the wire (HttpHop's encoding, or listed() for other encoders) a null is a JSON null either way
    assert orjson.loads(orjson.dumps(columns, option=orjson.OPT_SERIALIZE_NUMPY))["b"] == [1.5, None]
    assert listed(columns) == {"a": ["x", "MISSING"], "b": [1.5, None], "c": [1, 2], "d": [1, None]}
    assert frame_to_columns(frame, ["c"]).keys() == {"c"}


def test_server_spec_round_trip() -> None:
    spec = ServerSpec("ranking_transformer", 8082, "run-1", "/tmp/home", predictor_port=8083, options={"max_top_k": 5})
    assert ServerSpec.from_json(spec.to_json()) == spec
    with pytest.raises(ValueError, match="unknown server role"):
        ServerSpec("gateway", 1, "run-1", "/tmp")


# -- the body limit, as an ASGI middleware in front of a stand-in app that echoes what it read ---------------


async def _call(middleware: Any, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[int, Any]:
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


async def _echo_headers(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = (await receive())["body"]
    names = [name.decode() for name, _ in scope["headers"]]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": orjson.dumps({"read": body.decode(), "headers": names})})


def test_cloudevents_that_kserve_cannot_decode_are_mended_or_refused() -> None:
    events = CloudEventRequests(_echo_headers)
    event = [(name, b"x") for name in sorted(CLOUDEVENT_HEADERS)]
    extension = [*event, (b"ce-contenttype", b"application/json")]
    status, echoed = asyncio.run(_call(events, [b'{"a": 1}'], extension))
    assert status == 200 and echoed["read"] == '{"a": 1}' and "ce-contenttype" not in echoed["headers"]
    assert set(echoed["headers"]) == {name.decode() for name in CLOUDEVENT_HEADERS}
    status, error = asyncio.run(_call(events, [b""], event))  # KServe would decode the missing data: a 500
    assert status == 400 and error["field"] == "body"
    # not a binary CloudEvent (one header short): KServe reads it as a plain request, untouched here
    status, echoed = asyncio.run(_call(events, [b""], extension[1:]))
    assert status == 200 and "ce-contenttype" in echoed["headers"]


class _Downstream:
    """A real HTTP server on a free loopback port, in its own thread and loop, that answers like a predictor (or
    fails like one when the body asks it to)."""

    def __init__(self) -> None:
        self.seen: list[tuple[dict[str, Any], Mapping[str, str]]] = []
        self.loop = asyncio.new_event_loop()
        self.port = 0
        started = threading.Event()
        threading.Thread(target=self._run, args=(started,), daemon=True).start()
        assert started.wait(10)

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/v1/models/{name}:predict", self._predict)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = self.runner.addresses[0][1]
        started.set()
        self.loop.run_forever()

    async def _predict(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.seen.append((body, request.headers.copy()))  # names stay case-insensitive
        if body.get("fail"):
            return web.json_response({"error": "instances: expected a list"}, status=400)
        return web.json_response({"predictions": [len(body["inputs"]["x"])], "name": request.match_info["name"]})

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture
def downstream() -> Iterator[_Downstream]:
    server = _Downstream()
    yield server
    server.stop()


def _calls(hop: HttpHop, payloads: list[dict[str, Any]], headers: dict[str, str], close: bool = True) -> list[Any]:
    """The hop's answers (or errors) to ``payloads``, in one event loop."""

    async def run() -> list[Any]:
        out: list[Any] = []
        for payload in payloads:
            try:
                out.append(await hop(payload, headers))
            except InferenceError as exc:
                out.append(exc)
        if close:
            await hop.close()
        return out

    return asyncio.run(run())


def test_http_hop_posts_json_and_forwards_only_the_request_id(downstream: _Downstream) -> None:
    hop = HttpHop(f"http://127.0.0.1:{downstream.port}/", "ranking")
    headers = {"X-Request-Id": "r-1", "Authorization": "secret"}
    answers = _calls(hop, [{"inputs": {"x": [1, 2, 3]}}, {"inputs": {"x": [4]}}], headers)
    assert answers == [{"predictions": [3], "name": "ranking"}, {"predictions": [1], "name": "ranking"}]
    body, sent = downstream.seen[0]
    assert body == {"inputs": {"x": [1, 2, 3]}}
    assert sent["X-Request-Id"] == "r-1" and "Authorization" not in sent
    assert sent["Content-Type"] == "application/json"


def test_http_hop_raises_with_the_other_servers_status_and_error(downstream: _Downstream) -> None:
    hop = HttpHop(f"http://127.0.0.1:{downstream.port}", "ranking")
    answers = _calls(hop, [{"fail": True}, {"inputs": {"x": [1]}}], {})
    assert isinstance(answers[0], InferenceError)
    assert "answered 400" in str(answers[0]) and "instances: expected a list" in str(answers[0])
    assert answers[1] == {"predictions": [1], "name": "ranking"}  # the hop still works after an error


def test_one_http_hop_serves_two_event_loops(downstream: _Downstream) -> None:
    """A session is bound to its loop: the same hop called from a second loop makes a new one, not an error."""
    hop = HttpHop(f"http://127.0.0.1:{downstream.port}", "ranking")
    for close in (False, True):  # the first loop ends with the hop's session still open
        assert _calls(hop, [{"inputs": {"x": [1]}}], {}, close) == [{"predictions": [1], "name": "ranking"}]
