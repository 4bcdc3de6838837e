"""The four serving objects chained in one process, without HTTP.

The same ``kserve.Model`` objects the servers run, wired with direct calls instead of network hops: for tests,
for the batch job and for the latency floor of the pipeline (the HTTP servers add about 2 ms per hop on
loopback). Every answer carries the same per-stage timings as over HTTP.
"""

from __future__ import annotations

import asyncio
from typing import Any

from recsys.serving.model_set import resolve_run
from recsys.serving.options import ServingOptions
from recsys.serving.query_predictor import QueryPredictor
from recsys.serving.query_transformer import QueryTransformer
from recsys.serving.ranking_predictor import RankingPredictor
from recsys.serving.ranking_transformer import RankingTransformer
from recsys.serving.wire import Payload, local_model, local_predictor, run_model
from recsys.store.base import Project


class InProcessChain:
    """Query transformer → query predictor → ranking transformer → ranking predictor, called directly.

    >>> chain = InProcessChain(project)                 # the newest complete run
    >>> chain.recommend({"instances": [{"customer_id": "abc", "top_k": 12}]})["predictions"][0]["article_ids"]
    """

    def __init__(self, project: Project, run_id: str | None = None, options: ServingOptions | None = None) -> None:
        options = options or ServingOptions()
        self.run = resolve_run(project, run_id)
        self.query_predictor = QueryPredictor(self.run)
        self.ranking_predictor = RankingPredictor(self.run)
        self.ranking_transformer = RankingTransformer(
            project, self.run, options, predictor=local_predictor(self.ranking_predictor)
        )
        self.query_transformer = QueryTransformer(
            project,
            self.run,
            options,
            ranking=local_model(self.ranking_transformer),
            predictor=local_predictor(self.query_predictor),
        )
        for model in (self.query_predictor, self.ranking_predictor, self.ranking_transformer, self.query_transformer):
            model.load()
        self._loop = asyncio.new_event_loop()

    @property
    def run_id(self) -> str:
        return self.run.run_id

    def recommend(self, body: Any) -> Payload:
        """The answer to a v1 body, exactly as the public endpoint would give it."""
        return self._loop.run_until_complete(run_model(self.query_transformer, body))

    async def recommend_async(self, body: Any) -> Payload:
        return await run_model(self.query_transformer, body)

    def close(self) -> None:
        self._loop.close()

    def __enter__(self) -> InProcessChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
