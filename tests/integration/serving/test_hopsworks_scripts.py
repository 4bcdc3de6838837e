"""The Hopsworks scripts on the tiny model set, with the platform simulated: the answers of the in-process chain.

Hopsworks calls ``Transformer.preprocess``, sends what it returns to ``Predict.predict`` (its ``instances``) and
hands the predictor's answer to ``Transformer.postprocess``; every hop is JSON. The ranking deployment is reached
through ``Deployment.predict(data=...)``, stood in for by the same simulation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from tinyrun import TinyRun

from recsys.serving.chain import InProcessChain
from recsys.serving.hopsworks_scripts import adapter


def over_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def platform(transformer: adapter.TransformerScript, predictor: adapter.PredictScript, body: Any) -> Any:
    """What Hopsworks does with one request to a deployment with a transformer."""
    request = over_json(transformer.preprocess(over_json(body)))
    outputs = over_json(predictor.predict(request["instances"]))
    return over_json(transformer.postprocess(outputs))


class RankingDeployment:
    """Stands for ``hsml.deployment.Deployment`` of the ranking pair."""

    def __init__(self, transformer: adapter.TransformerScript, predictor: adapter.PredictScript) -> None:
        self.transformer, self.predictor = transformer, predictor

    def predict(self, data: Any = None, inputs: Any = None, validate: bool = True) -> Any:
        return platform(self.transformer, self.predictor, data)


@pytest.fixture(scope="module")
def scripts(tiny_run: TinyRun) -> dict[str, Any]:
    project, run = tiny_run.project, tiny_run.run_id
    ranking = RankingDeployment(adapter.ranking_transformer(project, run), adapter.ranking_predictor(project, run))
    return {
        "ranking": ranking,
        "query_transformer": adapter.query_transformer(project, run, ranking=adapter.DeploymentHop(ranking)),
        "query_predictor": adapter.query_predictor(project, run),
    }


@pytest.fixture(scope="module")
def chain(tiny_run: TinyRun) -> Iterator[InProcessChain]:
    with InProcessChain(tiny_run.project, tiny_run.run_id) as chain:
        yield chain


def test_scripts_answer_like_the_chain(scripts: dict[str, Any], chain: InProcessChain, tiny_run: TinyRun) -> None:
    when = tiny_run.request_time.isoformat()
    body = {
        "instances": [
            *({"customer_id": c, "top_k": 12, "request_time": when} for c in tiny_run.recent_buyers(2)),
            {"customer_id": "someone-new", "top_k": 5, "request_time": when},  # cold start: no predictor work
        ]
    }
    answer = platform(scripts["query_transformer"], scripts["query_predictor"], body)
    expected = chain.recommend(body)
    assert answer["run_id"] == tiny_run.run_id
    for got, want in zip(answer["predictions"], expected["predictions"], strict=True):
        assert (got["customer_id"], got["source"]) == (want["customer_id"], want["source"])
        assert got["article_ids"] == want["article_ids"]
        np.testing.assert_allclose(got["scores"], want["scores"], atol=2e-6)
        tiny_run.check_answer(got, len(want["article_ids"]), bought=None if got["source"] == "model" else set())
    assert "ranking.rank.model" in answer["timings_ms"]  # the predictor's timings came back through the platform
    for script in (scripts["query_transformer"], scripts["ranking"].transformer):
        assert len(script.pending) == 0  # every plan was picked up by its postprocess


def test_only_popularity_needs_no_predictor_work(scripts: dict[str, Any], tiny_run: TinyRun) -> None:
    body = {"instances": [{"customer_id": "nobody-at-all", "top_k": 3}]}
    answer = platform(scripts["query_transformer"], scripts["query_predictor"], body)
    assert answer["predictions"][0]["source"] == "popularity" and len(answer["predictions"][0]["article_ids"]) == 3
