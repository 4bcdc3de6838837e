"""The ranking predictor: CatBoost scores for the candidate rows the ranking transformer built."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from catboost import FeaturesData
from kserve import Model

from recsys.features.common import MISSING
from recsys.serving.model_set import RANKING_SERVICE, model_folder
from recsys.serving.requests import FLOAT32_MAX, BadRequest, decode_body
from recsys.serving.wire import Payload, check_types
from recsys.training.ranking_features import RankerSchema
from recsys.training.runs import RANKER_MODEL, Run


class RankingPredictor(Model):
    """Feature columns (columnar ``inputs``, the ranker schema's) → one score per row (``predictions``)."""

    def __init__(self, run: Run, *, name: str = RANKING_SERVICE) -> None:
        super().__init__(name)
        self.run = run

    def load(self) -> bool:
        from recsys.training.ranking import load_ranker

        self.ranker = load_ranker(model_folder(self.run, RANKER_MODEL))
        schema = self.ranker.schema
        # one row in the wire's form (categorical features are never null: candidate_features fills MISSING)
        probe = {f: [MISSING] if f in schema.categorical else [None] for f in schema.features}
        self.ranker.score_input(*_model_input(probe, schema))  # load the trees before traffic
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
        data, rows = _model_input(columns, self.ranker.schema)
        scores = self.ranker.score_input(data, rows) if rows else np.zeros(0)
        return {
            "predictions": scores.tolist(),
            "run_id": self.run.run_id,
            "timings_ms": {"model": round((time.perf_counter() - started) * 1000, 3)},
        }


def _model_input(columns: dict[str, Any], schema: RankerSchema) -> tuple[FeaturesData, int]:
    """The wire's feature columns as CatBoost's input (:func:`~recsys.training.ranking.model_input`'s form).

    Straight from the lists (or arrays, in process) to numpy: at a request's hundred rows, a polars frame in
    between cost more than the trees. :class:`BadRequest` names the first column that is missing, of another
    length or of the wrong type, or a list with a number float32 cannot hold.

    A list comes as JSON, maybe from outside: a number the float32 cast would make infinite is refused, and so
    is an infinity (JSON has no literal for it, but a Python caller can send one); null is NaN, CatBoost's
    missing value. An array is the ranking transformer's own features, in process: cast as training's
    ``model_input`` casts them (a zero ``avg_price`` makes ``price_ratio`` infinite there too), not checked.
    """
    lengths = set()
    numeric = []
    listed = []  # which numeric columns came as lists
    with np.errstate(over="ignore"):  # the cast's overflow: refused below for lists, inf as in training for arrays
        for name in schema.numeric:
            values = _column(columns, name)
            numeric.append(_numbers(values, f"inputs.{name}"))
            listed.append(isinstance(values, list))
            lengths.add(len(values))
    categorical = []
    for name in schema.categorical:
        values = _column(columns, name)
        if not set(map(type, values)) <= {str}:
            raise BadRequest(f"inputs.{name}", "expected strings (categorical features are never null)")
        categorical.append(np.asarray(values, dtype=object))
        lengths.add(len(values))
    if len(lengths) > 1:
        raise BadRequest("inputs", f"feature columns of different lengths {sorted(lengths)}")
    rows = lengths.pop() if lengths else 0
    matrix = np.column_stack(numeric) if numeric else np.zeros((rows, 0), np.float32)
    if any(listed):  # one vectorised check for every list column (the hot path over HTTP)
        infinite = np.isinf(matrix).any(axis=0) & np.array(listed)
        if infinite.any():
            raise BadRequest(f"inputs.{schema.numeric[int(infinite.argmax())]}", _BEYOND)
    data = FeaturesData(
        num_feature_data=matrix,
        cat_feature_data=np.column_stack(categorical) if categorical else None,
        num_feature_names=list(schema.numeric),
        cat_feature_names=list(schema.categorical) if categorical else None,
    )
    return data, rows


_BEYOND = f"numbers beyond the float32 range (±{FLOAT32_MAX:.3g}) or infinite"


def _numbers(values: list[Any] | np.ndarray, path: str) -> np.ndarray:
    """One numeric column as float32, null → NaN; its range is :func:`_model_input`'s to check."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind not in "fiu":
            raise BadRequest(path, f"expected numbers, got an array of {values.dtype}")
        array = values.astype(np.float32, copy=False)
    else:
        check_types(values, "float", path)
        try:
            array = np.asarray(values, dtype=np.float32)
        except OverflowError:  # an integer too large for any float
            raise BadRequest(path, _BEYOND) from None
    if array.ndim != 1:
        raise BadRequest(path, "expected one number or null per row")
    return array


def _column(columns: dict[str, Any], name: str) -> list[Any] | np.ndarray:
    """A column of the wire: a list (JSON), or in process the transformer's numpy array of numbers."""
    values = columns.get(name)
    if not isinstance(values, list | np.ndarray):
        raise BadRequest(f"inputs.{name}", "missing feature column, or not a list")
    return values
