"""The query transformer: the public endpoint of the recommender.

It validates the request, reads each customer's features and history from the online store in one batched call,
adds what the request sent and the request-time context (month, days since the last purchase), and sends the
query tower's inputs to the query predictor. With the embeddings back it calls the ranking transformer and
returns its answer, with the timings of every stage and the run id.

Customers without any signal (unknown, no history, nothing sent) skip the query tower: the ranking transformer
answers them with recent popularity. Between the servers, inputs travel in the columnar form of the v1
protocol (``{"inputs": {name: [one value per instance]}}``); the public endpoint takes ``instances``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from kserve import Model
from kserve.errors import InferenceError

from recsys.pipeline.groups import CUSTOMERS
from recsys.pipeline.views import CUSTOMERS_VIEW
from recsys.serving.customers import Row, apply_features, feature_kinds, has_signal, read_customers, rows_to_wire
from recsys.serving.model_set import QUERY_SERVICE, query_schema, view
from recsys.serving.options import ServingOptions
from recsys.serving.requests import Instance, check_unique, parse_request
from recsys.serving.tower_inputs import query_columns
from recsys.serving.wire import Hop, Payload, Timings, rounded, timed
from recsys.store.base import Project
from recsys.training.runs import Run


@dataclass
class QueryPlan:
    """One request between preprocess and postprocess: what KServe hands from one handler to the next."""

    instances: list[Instance]
    customers: list[Row]
    signal: np.ndarray  # per instance: goes through the query tower
    wire: Payload  # the query predictor's request
    started: float
    timings: Timings = field(default_factory=dict)
    embeddings: list[list[float]] = field(default_factory=list)


class QueryTransformer(Model):
    """Request → customer features → query tower inputs; embeddings → ranking → the answer."""

    def __init__(
        self,
        project: Project,
        run: Run,
        options: ServingOptions,
        *,
        ranking: Hop,
        predictor: Hop | None = None,
        name: str = QUERY_SERVICE,
    ) -> None:
        super().__init__(name)
        self.project, self.run, self.options = project, run, options
        self._ranking, self._predictor = ranking, predictor

    def load(self) -> bool:
        self.schema = query_schema(self.run)
        self.kinds = feature_kinds(self.schema)
        self.customers = view(self.project, CUSTOMERS_VIEW)
        self.attributes = CUSTOMERS.get(self.project.feature_store).select_all().features
        self.ready = True
        return self.ready

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> QueryPlan:  # type: ignore[override]
        started = time.perf_counter()
        timings: Timings = {}
        with timed(timings, "validate"):
            instances = parse_request(payload, self.options, self.kinds, self.schema.customer_id_kind)
            check_unique(instances)
        with timed(timings, "customer_features"):
            rows = apply_features(
                read_customers(self.customers, [i.customer_id for i in instances]), instances, self.kinds
            )
            signal = has_signal(rows, instances, self.attributes)
            chosen = np.flatnonzero(signal)
            inputs = query_columns([rows[q] for q in chosen], self.schema, [instances[q].request_time for q in chosen])
        wire = {"inputs": inputs, "run_id": self.run.run_id}
        return QueryPlan(instances, rows, signal, wire, started, timings)

    async def predict(self, plan: QueryPlan, headers: dict[str, str] | None = None) -> QueryPlan:  # type: ignore[override]
        if not plan.signal.any():
            return plan
        with timed(plan.timings, "query_tower"):
            if self._predictor is not None:
                response = await self._predictor(plan.wire, headers)
            else:  # KServe's own call to --predictor_host
                response = await super().predict(plan.wire, headers)
        _check_run(response, self.run.run_id, "query predictor")
        plan.embeddings = response["predictions"]
        plan.timings |= {f"query_tower.{k}": v for k, v in response.get("timings_ms", {}).items()}
        return plan

    async def postprocess(  # type: ignore[override]
        self, plan: QueryPlan, headers: dict[str, str] | None = None, response_headers: dict[str, str] | None = None
    ) -> Payload:
        embeddings = iter(plan.embeddings)
        customers = rows_to_wire(plan.customers)
        request = {
            "instances": [
                {
                    "customer_id": i.customer_id,
                    "top_k": i.top_k,
                    "request_time": i.request_time.isoformat(),
                    "embedding": next(embeddings) if s else None,
                    "customer": customer,
                }
                for i, s, customer in zip(plan.instances, plan.signal, customers, strict=True)
            ],
            "run_id": self.run.run_id,
        }
        with timed(plan.timings, "ranking"):
            response = await self._ranking(request, headers)
        _check_run(response, self.run.run_id, "ranking transformer")
        plan.timings |= {f"ranking.{k}": v for k, v in response.get("timings_ms", {}).items()}
        plan.timings["total"] = (time.perf_counter() - plan.started) * 1000
        timings = rounded(plan.timings)
        predictions = [{**p, "timings_ms": timings} for p in response["predictions"]]
        return {"predictions": predictions, "run_id": self.run.run_id, "timings_ms": timings}


def _check_run(response: Payload, run_id: str, who: str) -> None:
    if response.get("run_id") != run_id:
        raise InferenceError(f"the {who} serves run {response.get('run_id')!r}, this server serves {run_id!r}")
