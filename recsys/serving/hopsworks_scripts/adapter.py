"""The four serving objects behind Hopsworks' script contract: ``Transformer`` (preprocess/postprocess) and
``Predict`` (predict).

Hopsworks runs a transformer script and a predictor script per deployment, and calls the predictor itself between
``preprocess`` and ``postprocess`` (the body ``preprocess`` returns goes to the predictor, whose ``predict`` gets
its ``instances``; what ``predict`` returns reaches ``postprocess``). The KServe models of :mod:`recsys.serving`
already split their work the same way, so each script wraps one of them unchanged:

* a transformer keeps the request's plan in memory under a request id, which travels through the predictor and
  back (``preprocess``, ``predict`` and ``postprocess`` of one request run in the same transformer process);
* ``postprocess`` hands the predictor's answer to the model's own ``predict`` through :func:`_answered` (the
  hop that would have called the predictor), so run checks and timings are the ones of the local servers;
* the query transformer reaches the ranking deployment through :class:`DeploymentHop`.

The scripts are sync; the models are async: coroutines run on one private event loop in a background thread, which
works whether or not Hopsworks calls the script from inside its own event loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Coroutine
from typing import Any

from recsys.serving.wire import Payload, listed

REQUEST_ID, ANSWER = "recsys_request_id", "recsys_answer"
RANKING_DEPLOYMENT_ENV = "RECSYS_RANKING_DEPLOYMENT"
PENDING_TTL_S = 120.0  # a plan whose predictor call failed never comes back: forget it after this


class _Loop:
    """One event loop in a daemon thread; :meth:`run` waits for a coroutine from any thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True, name="recsys-script-loop").start()

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()


class Pending:
    """Plans between preprocess and postprocess, by request id (thread-safe, old entries dropped)."""

    def __init__(self, ttl_s: float = PENDING_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._plans: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def put(self, plan: Any) -> str:
        key, now = uuid.uuid4().hex, time.monotonic()
        with self._lock:
            self._plans = {k: v for k, v in self._plans.items() if now - v[0] < self.ttl_s}
            self._plans[key] = (now, plan)
        return key

    def pop(self, key: str) -> Any:
        with self._lock:
            entry = self._plans.pop(key, None)
        if entry is None:
            raise KeyError(f"no pending request {key!r} (expired after {self.ttl_s:.0f} s, or answered twice)")
        return entry[1]

    def __len__(self) -> int:
        return len(self._plans)


async def _answered(wire: Payload, headers: dict[str, str] | None = None) -> Payload:
    """The predictor hop of a transformer under Hopsworks: the platform already called it; here is its answer."""
    return wire.pop(ANSWER)


class DeploymentHop:
    """The ranking pair as a hop: ``Deployment.predict(data=body)`` of the ranking deployment, off the loop."""

    def __init__(self, deployment: Any) -> None:
        self.deployment = deployment

    async def __call__(self, payload: Payload, headers: dict[str, str] | None = None) -> Payload:
        return await asyncio.to_thread(self.deployment.predict, data=payload)


def serving_context(project: Any = None, run_id: str | None = None) -> tuple[Any, Any, Any]:
    """Our store project, the pinned run and the serving options, from the deployment's environment.

    Inside Hopsworks ``hopsworks.login()`` needs no key; tests pass a project (any backend) and a run id.
    """
    from recsys.config import load_settings
    from recsys.serving.model_set import resolve_run
    from recsys.serving.options import ServingOptions

    settings = load_settings()
    if project is None:
        project = in_cluster_project()
    run = resolve_run(project, run_id or settings.serving_run_id)
    return project, run, ServingOptions.from_settings(settings)


def in_cluster_project() -> Any:
    """The project of the deployment, wrapped in the store seam (as ``recsys.store.connect`` does with a key)."""
    import hopsworks

    from recsys.store.base import Project
    from recsys.store.hopsworks_backend import HopsworksFeatureStore, HopsworksModelRegistry

    project = hopsworks.login()
    return Project(
        "hopsworks",
        HopsworksFeatureStore(project.get_feature_store()),
        HopsworksModelRegistry(project.get_model_registry()),
    )


def ranking_deployment(project_handle: Any = None) -> DeploymentHop:
    import hopsworks

    name = os.environ.get(RANKING_DEPLOYMENT_ENV, "ranking")
    serving = (project_handle or hopsworks.login()).get_model_serving()
    deployment = serving.get_deployment(name)
    if deployment is None:
        raise RuntimeError(
            f"no Hopsworks deployment {name!r} ({RANKING_DEPLOYMENT_ENV}): deploy the ranking pair first"
        )
    return DeploymentHop(deployment)


class TransformerScript:
    """Hopsworks ``Transformer`` over one of our transformer models (built by :meth:`build`)."""

    def __init__(self, model: Any) -> None:
        self.model, self.pending, self._loop = model, Pending(), _Loop()
        self.model.load()

    def preprocess(self, inputs: Any) -> Payload:
        plan = self._loop.run(self.model.preprocess(inputs))
        wire = dict(plan.wire)
        if isinstance(wire.get("inputs"), dict):  # the ranker's columns: Hopsworks' own JSON encoder takes no arrays
            wire["inputs"] = listed(wire["inputs"])
        return {"instances": [{**wire, REQUEST_ID: self.pending.put(plan)}]}

    def postprocess(self, outputs: Payload) -> Payload:
        plan = self.pending.pop(outputs.pop(REQUEST_ID))
        plan.wire[ANSWER] = outputs
        self._loop.run(self.model.predict(plan))
        plan.wire.pop(ANSWER, None)  # not called when the model skipped the predictor (nothing to score)
        return self._loop.run(self.model.postprocess(plan))


class PredictScript:
    """Hopsworks ``Predict`` over one of our predictor models."""

    def __init__(self, model: Any) -> None:
        self.model, self._loop = model, _Loop()
        self.model.load()

    def predict(self, inputs: Any) -> Payload:
        wire = dict(inputs[0] if isinstance(inputs, list) else inputs)
        request_id = wire.pop(REQUEST_ID, None)
        return {**self._loop.run(self.model.predict(wire)), REQUEST_ID: request_id}


def query_transformer(project: Any = None, run_id: str | None = None, ranking: Any = None) -> TransformerScript:
    from recsys.serving.query_transformer import QueryTransformer

    project, run, options = serving_context(project, run_id)
    hop = ranking or ranking_deployment()
    return TransformerScript(QueryTransformer(project, run, options, ranking=hop, predictor=_answered))


def ranking_transformer(project: Any = None, run_id: str | None = None) -> TransformerScript:
    from recsys.serving.ranking_transformer import RankingTransformer

    project, run, options = serving_context(project, run_id)
    return TransformerScript(RankingTransformer(project, run, options, predictor=_answered))


def query_predictor(project: Any = None, run_id: str | None = None) -> PredictScript:
    from recsys.serving.query_predictor import QueryPredictor

    _, run, _ = serving_context(project, run_id)
    return PredictScript(QueryPredictor(run))


def ranking_predictor(project: Any = None, run_id: str | None = None) -> PredictScript:
    from recsys.serving.ranking_predictor import RankingPredictor

    _, run, _ = serving_context(project, run_id)
    return PredictScript(RankingPredictor(run))
