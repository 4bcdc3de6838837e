"""``recommend --run`` over HTTP: the servers answer with their own run, so another one is an error, not a list."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.integration.test_cli import assert_clean_error, run

SERVED = "run-20261122T090811Z-294508"
ARTICLE = {"article_id": 1114700010, "score": 0.5, "prod_name": "Slim top", "source": "model"}


class _Recommender(BaseHTTPRequestHandler):
    """The public endpoint's answer shape, for any customer, from servers started with run ``SERVED``."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        customer = body["instances"][0]["customer_id"]
        prediction = {"customer_id": customer, "source": "model", "run_id": SERVED, "articles": [ARTICLE]}
        data = json.dumps({"predictions": [prediction], "run_id": SERVED, "timings_ms": {"total": 1.0}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: object) -> None:  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recommender)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/models/recommender:predict"
    server.shutdown()
    server.server_close()


def test_recommend_for_another_run_than_the_servers_is_an_error(url: str, tmp_path: Path) -> None:
    proc = run("inference_pipeline", "recommend", "c1", "--url", url, "--run", "run-other", home=tmp_path)
    assert_clean_error(proc, "--run run-other", f"answered with run {SERVED}", "serve --run run-other", "--in-process")
    assert "1114700010" not in proc.stdout  # the other run's list is not printed as if it were run-other's


def test_recommend_for_the_served_run_prints_its_list(url: str, tmp_path: Path) -> None:
    proc = run("inference_pipeline", "recommend", "c1", "--url", url, "--run", SERVED, home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "1114700010" in proc.stdout and SERVED in proc.stdout and proc.stderr == ""
