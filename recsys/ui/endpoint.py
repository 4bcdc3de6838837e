"""The demo's only source of recommendations: the public KServe endpoint, over HTTP (v1 protocol).

The UI never loads a model itself, so what it shows is what any client of the endpoint gets. A refused or
timed-out connection is :class:`EndpointDown` (the page shows a banner with the command that starts the servers,
not a traceback); an answer with an error status is :class:`EndpointError` with the endpoint's own message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from recsys.config import Settings
from recsys.errors import RecsysError

PREDICT_SUFFIX = ":predict"
START_COMMAND = "make serve"
START_CLI = "python -m inference_pipeline serve"


class EndpointDown(RecsysError):
    """Nothing answers at the endpoint (servers not started, wrong port, or too slow)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"The recommender endpoint {url} is not answering ({reason}). "
            f"Start it with `{START_COMMAND}` (or `{START_CLI}`) in another terminal, then reload this page."
        )
        self.url = url


class EndpointError(RecsysError):
    """The endpoint answered with an error status (e.g. 400 naming the field of a bad request)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"the endpoint answered HTTP {status}: {message}")
        self.status = status


@dataclass(frozen=True)
class Answer:
    """One customer's recommendations: ``articles`` in order, each a dict with article_id, score, display fields."""

    customer_id: str | int
    source: str  # "model" (query tower + ranker) or "popularity" (no signal: cold start)
    articles: list[dict[str, Any]]
    run_id: str
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def article_ids(self) -> list[Any]:
        return [item["article_id"] for item in self.articles]


def endpoint_url(settings: Settings) -> str:
    """``ui_endpoint_url``, else the public endpoint of ``make serve`` on this machine."""
    from recsys.serving.model_set import QUERY_SERVICE

    return settings.ui_endpoint_url or f"http://127.0.0.1:{settings.serving_port}/v1/models/{QUERY_SERVICE}:predict"


class EndpointClient:
    """Asks the endpoint for one customer at a time; ``ready()`` is KServe's model-ready check."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url
        self.timeout_s = timeout_s

    @property
    def ready_url(self) -> str:
        """KServe's ``GET /v1/models/<name>`` beside the predict URL."""
        return self.url.removesuffix(PREDICT_SUFFIX)

    def ready(self) -> bool:
        try:
            response = httpx.get(self.ready_url, timeout=min(self.timeout_s, 2.0))
        except httpx.HTTPError:
            return False
        try:
            return response.status_code == 200 and bool(response.json().get("ready", True))
        except (ValueError, AttributeError):  # something else answers on that port
            return False

    def recommend(self, customer_id: str | int, top_k: int, features: Mapping[str, Any] | None = None) -> Answer:
        instance: dict[str, Any] = {"customer_id": customer_id, "top_k": top_k}
        if features:
            instance["features"] = dict(features)
        try:
            response = httpx.post(self.url, json={"instances": [instance]}, timeout=self.timeout_s)
        except (httpx.ConnectError, httpx.TimeoutException) as exc:
            raise EndpointDown(self.url, type(exc).__name__) from None
        except httpx.HTTPError as exc:
            raise EndpointDown(self.url, str(exc) or type(exc).__name__) from None
        if response.status_code != 200:
            raise EndpointError(response.status_code, _error_text(response))
        try:
            body = response.json()
            prediction = body["predictions"][0]
            return Answer(
                customer_id=prediction["customer_id"],
                source=prediction.get("source", "model"),
                articles=list(prediction["articles"]),
                run_id=prediction.get("run_id") or body.get("run_id", "?"),
                timings_ms=dict(prediction.get("timings_ms") or body.get("timings_ms") or {}),
            )
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise EndpointError(200, f"not a recommender answer: {response.text[:200]}") from None


def _error_text(response: httpx.Response) -> str:
    """KServe's ``{"error": ...}`` when there is one, else the start of the body."""
    try:
        return str(response.json().get("error") or response.text)[:500]
    except ValueError:
        return response.text[:500]
