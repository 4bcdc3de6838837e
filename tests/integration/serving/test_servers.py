"""The real thing: ``serve`` starts the four KServe servers on free loopback ports; requests over HTTP.

One ``serve`` process for the module (it is also what the teardown checks: SIGTERM stops all four servers and
the launcher exits cleanly). A purchase written to the online store disappears from the next answer; bad
requests get a 400 naming the field and the next good request still works, at the public endpoint and at the
query predictor and ranking transformer behind it.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tinyrun import TinyRun
from typer.testing import CliRunner

from inference_pipeline.serve_cli import register
from recsys.cli_support import make_app
from recsys.features.common import MISSING
from recsys.serving.actions import record_purchase
from recsys.serving.model_set import QUERY_SERVICE, RANKING_SERVICE, query_schema, ranker_schema, resolve_run
from recsys.serving.tower_inputs import query_columns

# The inference CLI with the serving commands (what ``python -m inference_pipeline`` registers).
CLI = "from recsys.cli_support import make_app, main_guard; from inference_pipeline.serve_cli import register; " \
      "app = make_app('inference_pipeline', ''); register(app); main_guard(app)"  # fmt: skip


@dataclass
class Served:
    url: str
    process: subprocess.Popen
    output: list[str]
    home: Path


def server_processes(home: Path) -> list[int]:
    """Pids of serving processes started for ``home`` (their spec names it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "recsys.serving.process" in cmdline and str(home) in cmdline:
                pids.append(int(entry.name))
    return pids


@pytest.fixture(scope="module")
def served(tiny_run: TinyRun) -> Iterator[Served]:
    home = tiny_run.settings.home.resolve()
    env = {**os.environ, "RECSYS_HOME": str(home), "COLUMNS": "200"}
    process = subprocess.Popen(
        [sys.executable, "-c", CLI, "serve", "--run", tiny_run.run_id, "--port", "0", "--query-predictor-port", "0",
         "--ranking-port", "0", "--ranking-predictor-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    output: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if "Ctrl-C stops" in line:  # the last line serve prints once it is up
                found.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not found.wait(240):
            pytest.fail("serve did not print its endpoint:\n" + "".join(output))
        url = re.search(r"(http://127\.0\.0\.1:\d+/\S+)", "".join(output))
        assert url is not None, output
        yield Served(url.group(1), process, output, home)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0, "".join(output)
    deadline = time.monotonic() + 10
    while server_processes(home) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not server_processes(home), "a server outlived serve"
    assert "stopped" in "".join(output)


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as client:
        yield client


def ask(client: httpx.Client, served: Served, body: object) -> httpx.Response:
    return client.post(served.url, json=body)


def test_serve_prints_how_to_call_it(served: Served) -> None:
    text = "".join(served.output)
    assert "curl -s -X POST" in text and served.url in text
    assert "0.0.0.0" in text  # KServe binds every interface: say so
    assert len(server_processes(served.home)) == 4


def test_known_customers(served: Served, client: httpx.Client, tiny_run: TinyRun) -> None:
    customers = tiny_run.recent_buyers(2)
    when = tiny_run.request_time.isoformat()
    response = ask(
        client, served, {"instances": [{"customer_id": c, "top_k": 10, "request_time": when} for c in customers]}
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["run_id"] == tiny_run.run_id
    for prediction, customer in zip(answer["predictions"], customers, strict=True):
        assert prediction["customer_id"] == customer and prediction["source"] == "model"
        tiny_run.check_answer(prediction, 10)
        assert prediction["timings_ms"]["ranking.rank.model"] > 0


def test_a_purchase_disappears_from_the_next_answer(served: Served, client: httpx.Client, tiny_run: TinyRun) -> None:
    customer = tiny_run.recent_buyers(1, skip=5)[0]
    body = {"instances": [{"customer_id": customer, "top_k": 12, "request_time": tiny_run.request_time.isoformat()}]}
    before = ask(client, served, body).json()["predictions"][0]["article_ids"]
    bought = before[0]
    record_purchase(tiny_run.project, customer, bought, tiny_run.request_time - timedelta(hours=1))
    after = ask(client, served, body).json()["predictions"][0]
    assert bought not in after["article_ids"]
    assert len(after["article_ids"]) == 12


def test_unknown_customers_get_an_answer(served: Served, client: httpx.Client, tiny_run: TinyRun) -> None:
    response = ask(client, served, {"instances": [{"customer_id": "never-seen", "top_k": 5}]})
    assert response.status_code == 200, response.text
    prediction = response.json()["predictions"][0]
    assert prediction["source"] == "popularity"
    tiny_run.check_answer(prediction, 5, bought=set())


BAD = [
    (b"{not json", "body"),
    (b'{"instances": [{"top_k": 3}]}', "instances[0].customer_id"),
    (b'{"instances": [{"customer_id": 42}]}', "instances[0].customer_id"),
    (b'{"instances": [{"customer_id": "c", "top_k": "ten"}]}', "instances[0].top_k"),
    (b'{"instances": [{"customer_id": "c", "top_k": 0}]}', "instances[0].top_k"),
    (b'{"instances": [{"customer_id": "c", "top_k": 101}]}', "instances[0].top_k"),
    (b'{"instances": [' + b",".join([b'{"customer_id": "c%d"}' % i for i in range(65)]) + b"]}", "instances"),
    (b'{"instances": [{"customer_id": "' + b"x" * 70_000 + b'"}]}', "body"),
    (
        b'{"instances": [{"customer_id": "c", "request_time": "0001-01-01T00:00:00+05:00"}]}',
        "instances[0].request_time",
    ),
    (
        b'{"instances": [{"customer_id": "c", "request_time": "9999-12-31T23:00:00-05:00"}]}',
        "instances[0].request_time",
    ),
    (b'{"instances": [{"customer_id": "newbie-x", "features": {"age": 1e308}}]}', "instances[0].features.age"),
    (b'{"instances": [{"customer_id": "newbie-x", "features": {"age": 200}}]}', "instances[0].features.age"),
    (b'{"instances": [{"customer_id": "newbie-x", "features": {"fn": 1e308}}]}', "instances[0].features.fn"),
    (b'"{\\"instances\\": [{\\"customer_id\\": \\"c\\"}]}"', "body"),  # a JSON string holding JSON
    (b'"abc"', "body"),
]


@pytest.mark.parametrize(("body", "field"), BAD, ids=[field + str(i) for i, (_, field) in enumerate(BAD)])
def test_bad_requests_get_400_and_the_server_keeps_serving(
    served: Served, client: httpx.Client, body: bytes, field: str
) -> None:
    response = client.post(served.url, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["field"] == field and error["error"].startswith(field)
    assert ask(client, served, {"instances": [{"customer_id": "after-a-bad-one", "top_k": 3}]}).status_code == 200


CLOUDEVENT = {"ce-specversion": "1.0", "ce-type": "recommend", "ce-source": "tests", "ce-id": "1"}
CE_CONTENTTYPE = ["cloudevent-contenttype", "cloudevent-contenttype-untyped", "cloudevent-contenttype-text"]


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "application/json"},
        {},
        {"content-type": "text/plain"},
        {"content-type": "application/x-www-form-urlencoded"},
        {"content-type": "application/octet-stream"},
        {**CLOUDEVENT, "content-type": "application/json"},
        CLOUDEVENT,
        # ce-contenttype (an extension attribute in CloudEvents 1.0) made KServe answer 500 (CloudEventRequests)
        {**CLOUDEVENT, "ce-contenttype": "application/json", "content-type": "application/json"},
        {**CLOUDEVENT, "ce-contenttype": "application/json"},
        {**CLOUDEVENT, "ce-contenttype": "text/plain", "content-type": "text/plain"},
    ],
    ids=["json", "none", "text", "form", "octet-stream", "cloudevent", "cloudevent-untyped", *CE_CONTENTTYPE],
)
def test_a_json_body_is_read_whatever_its_content_type(
    served: Served, client: httpx.Client, headers: dict[str, str]
) -> None:
    """KServe decodes some content types itself and passes the others through as bytes: the same answer."""
    body = b'{"instances": [{"customer_id": "any-type", "top_k": 3}]}'
    response = client.post(served.url, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"][0]["article_ids"]) == 3
    string = client.post(served.url, content=b'"' + body.replace(b'"', b'\\"') + b'"', headers=headers)
    assert string.status_code == 400, string.text
    assert string.json()["error"] == "body: expected a JSON object with 'instances', got a string"


def internal_url(served: Served, server: str) -> str:
    """The predict URL of another of the four servers, from the ports ``serve`` prints."""
    port = re.search(server + r"\s+:(\d+)", "".join(served.output))
    assert port is not None, served.output
    name = QUERY_SERVICE if server == "query predictor" else RANKING_SERVICE
    return f"http://127.0.0.1:{port.group(1)}/v1/models/{name}:predict"


@pytest.mark.parametrize("server", ["public", "query predictor", "ranking transformer", "ranking predictor"])
def test_a_cloudevent_without_data_is_a_400_at_every_server(served: Served, client: httpx.Client, server: str) -> None:
    """KServe answered it with a 500 (it decodes the missing data as bytes) at the servers behind the public one."""
    url = served.url if server == "public" else internal_url(served, server)
    response = client.post(url, content=b"", headers={**CLOUDEVENT, "content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "body", response.text
    assert ask(client, served, {"instances": [{"customer_id": "after-an-empty-event", "top_k": 3}]}).status_code == 200


DIMENSION = 32  # tinyrun's embedding_dim


def test_the_query_predictor_refuses_inputs_of_the_wrong_shape_or_type_with_400(
    served: Served, client: httpx.Client, tiny_run: TinyRun
) -> None:
    schema = query_schema(resolve_run(tiny_run.project, tiny_run.run_id))
    inputs = query_columns([{}], schema, [tiny_run.request_time])
    url = internal_url(served, "query predictor")
    for name, values in [("last_article_ids", [0]), ("customer_id", [7]), ("age", [1e308]), ("age", ["31"])]:
        response = client.post(url, json={"inputs": {**inputs, name: values}})
        assert response.status_code == 400, (name, response.text)
        assert response.json()["field"] == f"inputs.{name}"
    good = client.post(url, json={"inputs": inputs})
    assert good.status_code == 200, good.text
    (vector,) = good.json()["predictions"]
    assert len(vector) == DIMENSION and all(math.isfinite(x) for x in vector)


def test_the_ranking_predictor_refuses_numbers_beyond_float32_and_wrong_types_with_400(
    served: Served, client: httpx.Client, tiny_run: TinyRun
) -> None:
    schema = ranker_schema(resolve_run(tiny_run.project, tiny_run.run_id))
    # two rows as the transformer sends them: null is a missing number, categoricals are never null
    inputs = {f: [MISSING] * 2 if f in schema.categorical else [None, 1.0] for f in schema.features}
    url = internal_url(served, "ranking predictor")
    name = schema.numeric[0]
    for values in ([1.0, 1e308], [-1e39, None], [1.0, "2"], [True, 1.0]):
        response = client.post(url, json={"inputs": {**inputs, name: values}})
        assert response.status_code == 400, (values, response.text)
        assert response.json()["field"] == f"inputs.{name}", response.text
    good = client.post(url, json={"inputs": inputs})
    assert good.status_code == 200, good.text
    assert len(good.json()["predictions"]) == 2 and all(math.isfinite(x) for x in good.json()["predictions"])


def ranking_body(run_id: str, n: int = 1, **changed: Any) -> dict[str, Any]:
    """What the query transformer sends the ranking transformer, for ``n`` customers without a row."""
    instance = {"top_k": 12, "request_time": "2020-09-22T10:00:00", "embedding": None, "customer": {}}
    return {"instances": [{**instance, "customer_id": f"c{i}", **changed} for i in range(n)], "run_id": run_id}


RANKING_BAD = [
    ({"customer_id": ["a"]}, "instances[0].customer_id"),
    ({"embedding": [0.1, 0.2]}, "instances[0].embedding"),
    ({"embedding": ["x"] * DIMENSION}, "instances[0].embedding"),
    ({"embedding": []}, "instances[0].embedding"),
    ({"embedding": [[0.1] * DIMENSION]}, "instances[0].embedding"),
    ({"embedding": [None] * DIMENSION}, "instances[0].embedding"),  # a NaN vector on the wire
    ({"customer": {"n_purchases": "abc"}}, "instances[0].customer.n_purchases"),
    ({"customer": {"last_purchase": "notadate"}}, "instances[0].customer.last_purchase"),
    ({"top_k": 10**30}, "instances[0].top_k"),
    ({"top_k": -5}, "instances[0].top_k"),
    ({"top_k": 3.7}, "instances[0].top_k"),
    ({"top_k": 1_000_000}, "instances[0].top_k"),
]


@pytest.mark.parametrize(("changed", "field"), RANKING_BAD, ids=[f + str(i) for i, (_, f) in enumerate(RANKING_BAD)])
def test_the_ranking_transformer_refuses_bad_instances_with_400(
    served: Served, client: httpx.Client, tiny_run: TinyRun, changed: dict[str, Any], field: str
) -> None:
    url = internal_url(served, "ranking transformer")
    response = client.post(url, json=ranking_body(tiny_run.run_id, **changed))
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field and response.json()["error"].startswith(field)
    good = client.post(url, json=ranking_body(tiny_run.run_id, top_k=4))
    assert good.status_code == 200 and len(good.json()["predictions"][0]["article_ids"]) == 4


def test_the_ranking_transformer_refuses_ragged_embeddings_and_another_run(
    served: Served, client: httpx.Client, tiny_run: TinyRun
) -> None:
    url = internal_url(served, "ranking transformer")
    ragged = ranking_body(tiny_run.run_id, n=2, embedding=[0.1] * DIMENSION)
    ragged["instances"][1]["embedding"] = [0.1] * (DIMENSION - 1)
    response = client.post(url, json=ragged)
    assert response.status_code == 400 and response.json()["field"] == "instances[1].embedding", response.text
    response = client.post(url, json={**ranking_body(tiny_run.run_id), "run_id": "other"})
    assert response.status_code == 400 and response.json()["field"] == "run_id", response.text
    good = client.post(url, json=ranking_body(tiny_run.run_id, n=2, embedding=[0.1] * DIMENSION))
    assert good.status_code == 200 and [p["source"] for p in good.json()["predictions"]] == ["model", "model"]


def test_recommend_command_calls_the_server(served: Served, tiny_run: TinyRun) -> None:
    app = make_app("inference_pipeline", "")
    register(app)
    customer = tiny_run.recent_buyers(1)[0]
    result = CliRunner().invoke(app, ["recommend", customer, "--top-k", "4", "--url", served.url, "--json"])
    assert result.exit_code == 0, result.output
    assert customer in result.output and tiny_run.run_id in result.output
    bad = CliRunner().invoke(app, ["recommend", customer, "--top-k", "0", "--url", served.url])
    assert bad.exit_code != 0 and "400: instances[0].top_k" in str(bad.exception)
