"""One serving process: ``python -m recsys.serving.process '<spec as JSON>'``, started by :mod:`.servers`.

Each of the four models runs in its own KServe ``ModelServer`` (REST only, v1 protocol, one worker). The spec
names the role, the port, the run and, for a transformer, where its predictor listens. KServe's server binds all
interfaces (``0.0.0.0``; it has no host option): the launcher only ever *talks* to 127.0.0.1, but on a shared
machine the ports are reachable from outside unless a firewall says otherwise.

The public endpoint (the query transformer) also gets :class:`BodyLimit`: a body over ``max_body_bytes`` or
one that is not JSON is answered 400 before KServe reads it, and every :class:`~.requests.BadRequest` is answered
``{"error": "<field>: <what is wrong>", "field": "<field>"}``. Every server gets :class:`CloudEventRequests`, for
the binary CloudEvents KServe's decoder fails on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from recsys.native_stderr import filter_tensorflow_start

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

ROLES = ("query_transformer", "query_predictor", "ranking_transformer", "ranking_predictor")
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ServerSpec:
    """What one server process needs to know."""

    role: str
    port: int
    run_id: str
    home: str
    backend: str = "local"
    predictor_port: int | None = None  # transformers: their predictor
    ranking_port: int | None = None  # the query transformer: the ranking transformer
    # Off loopback (a Kubernetes pod, see :mod:`.container`): the predictor's host[:port] and the ranking URL,
    # used instead of the two loopback ports above.
    predictor_host: str | None = None
    ranking_url: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown server role {self.role!r}; roles: {', '.join(ROLES)}")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServerSpec:
        return cls(**json.loads(text))


class BodyLimit:
    """ASGI middleware of the public endpoint: refuse bodies over ``max_bytes`` or not JSON, with a 400."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        import orjson

        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _reject(send, "body", f"{int(declared)} bytes, the limit is {self.max_bytes}")
            return
        body = await _read_body(receive, self.max_bytes)
        if body is None:  # the client went away
            return
        if len(body) > self.max_bytes:
            await _reject(send, "body", f"more than {self.max_bytes} bytes, the limit")
            return
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            await _reject(send, "body", f"not valid JSON ({exc})")
            return
        await self.app(scope, _replay(body, receive), send)


# The headers that make KServe decode a request as a binary CloudEvent (cloudevents' has_binary_headers).
CLOUDEVENT_HEADERS = frozenset((b"ce-specversion", b"ce-source", b"ce-type", b"ce-id"))


class CloudEventRequests:
    """ASGI middleware of every server: the binary CloudEvents that KServe cannot decode, mended or refused.

    KServe decodes a binary CloudEvent (a request with the four :data:`CLOUDEVENT_HEADERS`) before the model sees
    it, and answers two valid ones with a 500 (``AttributeError`` in ``DataPlane.decode_cloudevent``): one with a
    ``ce-contenttype`` header (in CloudEvents 1.0 an extension attribute; KServe then parses the data as JSON
    and decodes the parsed value as if it were bytes), and one without data. The first loses that header (the
    binary binding's data content type is the Content-Type header, which stays), and is then read like any other
    event; the second is a 400, as it has no request in it. Other requests pass untouched.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = scope.get("headers") or []
        names = {name for name, _ in headers}
        if scope["type"] != "http" or scope.get("method") != "POST" or not CLOUDEVENT_HEADERS.issubset(names):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:  # the client went away
            return
        if not body:
            await _reject(send, "body", "empty: the CloudEvent's data must be the request")
            return
        kept = [(name, value) for name, value in headers if name != b"ce-contenttype"]
        await self.app({**scope, "headers": kept}, _replay(body, receive), send)


async def _read_body(receive: Any, max_bytes: int | None = None) -> bytes | None:
    """The request body (reading stops once it is over ``max_bytes``); None if the client disconnected."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        if not message.get("more_body") or (max_bytes is not None and size > max_bytes):
            return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Any:
    """A ``receive`` that gives the app the body read already, then what the client sends next."""
    replayed = False

    async def replay() -> dict[str, Any]:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _reject(send: Any, field_name: str, message: str) -> None:
    import orjson

    body = orjson.dumps({"error": f"{field_name}: {message}", "field": field_name})
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def build_model(spec: ServerSpec) -> Any:
    """The loaded ``kserve.Model`` of ``spec.role`` (its run's part of the model set)."""
    from recsys.config import load_settings
    from recsys.serving.model_set import QUERY_SERVICE, RANKING_SERVICE, resolve_run
    from recsys.serving.options import ServingOptions
    from recsys.serving.wire import HttpHop
    from recsys.store import connect

    project = connect(load_settings(home=spec.home, backend=spec.backend))
    run = resolve_run(project, spec.run_id)
    options = ServingOptions.from_dict(spec.options)
    predictor = None  # a transformer's --predictor_host: our hop, not KServe's client (see HttpHop)
    if spec.predictor_host is not None or spec.predictor_port is not None:
        host = spec.predictor_host or f"{LOOPBACK}:{spec.predictor_port}"
        # a transformer and its predictor share the model name, as KServe's own predictor call assumes
        name = QUERY_SERVICE if spec.role == "query_transformer" else RANKING_SERVICE
        predictor = HttpHop(host if "://" in host else f"http://{host}", name)
    if spec.role == "query_predictor":
        from recsys.serving.query_predictor import QueryPredictor

        model: Any = QueryPredictor(run)
    elif spec.role == "ranking_predictor":
        from recsys.serving.ranking_predictor import RankingPredictor

        model = RankingPredictor(run)
    elif spec.role == "ranking_transformer":
        from recsys.serving.ranking_transformer import RankingTransformer

        model = RankingTransformer(project, run, options, predictor=predictor)
    else:
        from recsys.serving.query_transformer import QueryTransformer

        ranking = HttpHop(spec.ranking_url or f"http://{LOOPBACK}:{spec.ranking_port}", RANKING_SERVICE)
        model = QueryTransformer(project, run, options, ranking=ranking, predictor=predictor)
    model.load()
    return model


def serve(spec: ServerSpec) -> None:
    """Load the model and serve it until SIGTERM/SIGINT (KServe's handlers stop the server gracefully)."""
    import kserve
    from kserve import model_server
    from starlette.responses import JSONResponse

    from recsys.serving.options import ServingOptions
    from recsys.serving.requests import BadRequest

    model = build_model(spec)

    async def bad_request(_: Any, exc: BadRequest) -> JSONResponse:
        return JSONResponse({"error": str(exc), "field": exc.field}, status_code=400)

    model_server.app.add_exception_handler(BadRequest, bad_request)
    model_server.app.add_middleware(CloudEventRequests)
    if spec.role == "query_transformer":
        model_server.app.add_middleware(BodyLimit, max_bytes=ServingOptions.from_dict(spec.options).max_body_bytes)
    server = kserve.ModelServer(
        http_port=spec.port,
        workers=1,
        enable_grpc=False,
        enable_docs_url=False,
        enable_latency_logging=False,
    )
    for name in ("uvicorn.access", "kserve.trace"):  # a log line per request costs more than our stages
        logging.getLogger(name).setLevel(logging.WARNING)
    use_uvloop()
    server.start([model])


def use_uvloop() -> bool:
    """Run the server's event loop on uvloop (a dependency; asyncio's own loop if it cannot be imported).

    KServe's ``event_loop="auto"`` never takes effect: ``ModelServer.start`` calls ``asyncio.run`` itself, so
    uvicorn's loop setup is skipped and the server ran on asyncio's selector loop, whose polling and socket writes
    were the largest part of a server's CPU outside the model under load. The policy makes ``asyncio.run`` build a
    uvloop loop: ~14% more requests/s through the four servers (``benchmarks/serving.py``).
    ``RECSYS_EVENT_LOOP=asyncio`` keeps asyncio's own loop.

    KServe configures the loop ``asyncio.get_event_loop()`` returns before its ``asyncio.run``; uvloop's policy
    does not create one on that call as asyncio's does, so one is set here.
    """
    if os.environ.get("RECSYS_EVENT_LOOP", "uvloop") == "asyncio":
        return False
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.set_event_loop(asyncio.new_event_loop())
    return True


def run(spec: ServerSpec) -> int:
    """Serve until stopped; a load failure is one line on stderr and exit code 2 (the parent reports it)."""
    from recsys.errors import RecsysError

    try:
        serve(spec)
    except RecsysError as exc:
        print(f"error: {spec.role}: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m recsys.serving.process '<server spec as JSON>'", file=sys.stderr)
        return 2
    return run(ServerSpec.from_json(args[0]))


if __name__ == "__main__":
    filter_tensorflow_start()  # the predictors' logs start with what they say, not TensorFlow's start-up lines
    sys.exit(main())
