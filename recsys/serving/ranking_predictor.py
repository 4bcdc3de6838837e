"""The ranking predictor: CatBoost scores for the candidate rows the ranking transformer built."""

from __future__ import annotations

import time
from typing import Any

import polars as pl
from kserve import Model

from recsys.features.common import MISSING
from recsys.serving.model_set import RANKING_SERVICE, model_folder
from recsys.serving.requests import BadRequest, decode_body
from recsys.serving.wire import Payload
from recsys.training.runs import RANKER_MODEL, Run


class RankingPredictor(Model):
    """Feature columns (columnar ``inputs``, the ranker schema's) → one score per row (``predictions``)."""

    def __init__(self, run: Run, *, name: str = RANKING_SERVICE) -> None:
        super().__init__(name)
        self.run = run

    def load(self) -> bool:
        from recsys.training.ranking import load_ranker

        self.ranker = load_ranker(model_folder(self.run, RANKER_MODEL))
        categorical = set(self.ranker.schema.categorical)
        self.input_schema = pl.Schema(
            {f: pl.String if f in categorical else pl.Float32 for f in self.ranker.schema.features}
        )
        probe = {f: MISSING for f in categorical}  # categorical features are never null (candidate_features)
        self.ranker.score(pl.DataFrame([probe], schema=self.input_schema))  # load the trees before traffic
        self.ready = True
        return self.ready

    async def predict(  # type: ignore[override]
        self, payload: Any, headers: dict[str, str] | None = None, response_headers: dict[str, str] | None = None
    ) -> Payload:
        started = time.perf_counter()
        body = decode_body(payload)
        columns = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(columns, dict):
            raise BadRequest("inputs", "expected an object of feature columns")
        missing = [name for name in self.input_schema if name not in columns]
        if missing:
            raise BadRequest(f"inputs.{missing[0]}", "missing feature column")
        try:
            frame = pl.DataFrame({name: columns[name] for name in self.input_schema}, schema=self.input_schema)
        except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:
            raise BadRequest("inputs", f"feature columns do not match the ranker's schema ({exc})") from None
        scores = self.ranker.score(frame)
        return {
            "predictions": scores.tolist(),
            "run_id": self.run.run_id,
            "timings_ms": {"model": round((time.perf_counter() - started) * 1000, 3)},
        }
