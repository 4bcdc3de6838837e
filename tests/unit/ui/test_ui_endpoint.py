"""The endpoint client: a closed port is "down" with the start command; an error status keeps the server's text."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from recsys.config import load_settings
from recsys.serving.servers import free_port
from recsys.ui.endpoint import EndpointClient, EndpointDown, EndpointError, endpoint_url


class _Handler(BaseHTTPRequestHandler):
    """Answers like KServe: 400 with a field for customer "bad", else one prediction."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        instance = body["instances"][0]
        if instance["customer_id"] == "bad":
            status, answer = 400, {"error": "instances[0].top_k: must be between 1 and 100", "field": "x"}
        else:
            article = {"article_id": 1, "score": 0.5, "source": "model"}
            prediction = {"customer_id": instance["customer_id"], "source": "model", "articles": [article],
                          "article_ids": [1], "run_id": "run-x", "timings_ms": {"total": 1.5}}  # fmt: skip
            status, answer = 200, {"predictions": [prediction], "run_id": "run-x"}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        data = b'{"name": "recommender", "ready": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_endpoint() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1/models/recommender:predict"
    finally:
        server.shutdown()
        server.server_close()


def test_answer_parsed(fake_endpoint: str) -> None:
    client = EndpointClient(fake_endpoint, timeout_s=5)
    assert client.ready()
    answer = client.recommend("c1", 3, {"age": 30.0})
    assert (answer.customer_id, answer.source, answer.run_id) == ("c1", "model", "run-x")
    assert answer.article_ids == [1] and answer.timings_ms == {"total": 1.5}


def test_error_status_keeps_the_message(fake_endpoint: str) -> None:
    with pytest.raises(EndpointError, match=r"HTTP 400: instances\[0\].top_k: must be") as caught:
        EndpointClient(fake_endpoint).recommend("bad", 3)
    assert caught.value.status == 400


def test_closed_port_is_down_with_the_start_command() -> None:
    client = EndpointClient(f"http://127.0.0.1:{free_port()}/v1/models/recommender:predict", timeout_s=2)
    assert not client.ready()
    with pytest.raises(EndpointDown, match=r"make serve.*python -m inference_pipeline serve"):
        client.recommend("c1", 3)


def test_default_url_follows_the_serving_port() -> None:
    settings = load_settings(serving_port=9123)
    assert endpoint_url(settings) == "http://127.0.0.1:9123/v1/models/recommender:predict"
    assert endpoint_url(load_settings(ui_endpoint_url="http://h:1/x:predict")) == "http://h:1/x:predict"
