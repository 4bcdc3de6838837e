"""The query predictor: the query tower (a TensorFlow SavedModel) from tower inputs to unit vectors.

Its inputs are raw values (ids, category strings, numbers with null for missing, padded lists), so the tower
needs no Python preprocessing here. A request is a handful of rows, for which a TensorFlow graph call costs more
than the tower's arithmetic: the tower runs translated to numpy (:mod:`recsys.serving.numpy_tower`) when it
translates and matches the graph at load time, else as the graph on one thread (``TF_NUM_INTRAOP_THREADS``, set
by the launcher), since more only add synchronisation on a shared CPU.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime
from typing import Any

import polars as pl
from kserve import Model

from recsys.data.dataset import CUSTOMER_ID
from recsys.serving.model_set import QUERY_SERVICE, model_folder
from recsys.serving.numpy_tower import fastest_tower
from recsys.serving.requests import BadRequest, decode_body
from recsys.serving.wire import Payload, columns_to_arrays
from recsys.training.runs import QUERY_MODEL, Run

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
logger = logging.getLogger(__name__)


class QueryPredictor(Model):
    """Tower inputs (columnar ``inputs``) → embeddings (``predictions``, one list of floats per row)."""

    def __init__(self, run: Run, *, name: str = QUERY_SERVICE) -> None:
        super().__init__(name)
        self.run = run

    def load(self) -> bool:
        from recsys.training.retrieval_data import query_inputs
        from recsys.training.two_tower import TOWER_DIR, load_tower_artifacts

        folder = model_folder(self.run, QUERY_MODEL)
        saved, self.schema = load_tower_artifacts(folder)
        inputs = self.schema.query_inputs()
        self.kinds = {name: kind for name, (kind, _) in inputs.items()}
        self.lengths = {name: length for name, (_, length) in inputs.items()}
        probe = pl.DataFrame({CUSTOMER_ID: [0 if self.schema.customer_id_kind == "int" else "warm-up"]})
        probe_inputs = query_inputs(probe, self.schema, at=datetime.now(UTC))
        # runs the graph on the probe (tracing it before traffic: it stays the fallback), then maybe numpy
        self.tower = fastest_tower(folder / TOWER_DIR, saved, probe_inputs, logger.warning)
        self.ready = True
        return self.ready

    async def predict(  # type: ignore[override]
        self, payload: Any, headers: dict[str, str] | None = None, response_headers: dict[str, str] | None = None
    ) -> Payload:
        started = time.perf_counter()
        body = decode_body(payload)
        if not isinstance(body, dict):
            raise BadRequest("body", 'expected {"inputs": {input name: [values]}}')
        arrays, n = columns_to_arrays(body.get("inputs"), self.kinds, self.lengths)
        vectors = self.tower(arrays).tolist() if n else []
        return {
            "predictions": vectors,
            "run_id": self.run.run_id,
            "timings_ms": {"model": round((time.perf_counter() - started) * 1000, 3)},
        }
