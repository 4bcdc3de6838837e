"""The ranking predictor's wire input: the same scores as the training path's frame input, and clear 400s."""

from __future__ import annotations

import asyncio

import numpy as np
import orjson
import polars as pl
import pytest
from catboost import CatBoost, Pool

from recsys.serving.ranking_predictor import RankingPredictor
from recsys.serving.requests import BadRequest
from recsys.serving.wire import frame_to_columns, listed
from recsys.training.ranking import Ranker, RankerConfig, model_input
from recsys.training.ranking_features import RankerSchema

SCHEMA = RankerSchema(customer_categorical=("club",), article_numeric=("weight",), popularity=("units_7d",))


def rows(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=n).astype(np.float32)
    weight[::7] = np.nan  # missing values travel as NaN in process and as null over JSON
    return pl.DataFrame(
        {
            "retrieval_score": rng.random(n).astype(np.float32),
            "retrieval_rank": np.arange(n, dtype=np.float32),
            "club": rng.choice(["ACTIVE", "PRE-CREATE", "__missing__"], n),
            "weight": weight,
            "units_7d": rng.poisson(3, n).astype(np.float32),
        }
    )


@pytest.fixture(scope="module")
def predictor() -> RankingPredictor:
    train = rows(400, 0)
    label = (train["retrieval_score"] + (train["club"] == "ACTIVE").cast(pl.Float32) > 1.0).to_numpy()
    model = CatBoost({"iterations": 30, "loss_function": "Logloss", "verbose": False, "allow_writing_files": False})
    model.fit(Pool(model_input(train, SCHEMA), label.astype(int)))
    served = RankingPredictor.__new__(RankingPredictor)  # the model object without a registry behind it
    served.ranker = Ranker(model, SCHEMA, "Logloss", RankerConfig(), {})
    served.run = type("Run", (), {"run_id": "run-x"})()
    return served


def predict(predictor: RankingPredictor, inputs: object) -> dict:
    return asyncio.run(predictor.predict({"inputs": inputs}))


def test_wire_columns_score_like_the_frame(predictor: RankingPredictor) -> None:
    frame = rows(120, 1)
    expected = predictor.ranker.score(frame.select(SCHEMA.features))
    columns = frame_to_columns(frame)
    assert isinstance(columns["weight"], np.ndarray)  # in process: numbers as arrays
    in_process = predict(predictor, columns)["predictions"]
    as_json = orjson.loads(orjson.dumps(columns, option=orjson.OPT_SERIALIZE_NUMPY))  # HttpHop's: NaN → null
    assert isinstance(as_json["weight"], list) and None in as_json["weight"]
    np.testing.assert_allclose(in_process, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(predict(predictor, as_json)["predictions"], expected, rtol=0, atol=1e-12)
    assert predict(predictor, frame_to_columns(frame.head(0)))["predictions"] == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda c: c.pop("weight"), "inputs.weight"),
        (lambda c: c.update(weight=["heavy"] * 3), "inputs.weight"),
        (lambda c: c.update(weight=[[1.0]] * 3), "inputs.weight"),
        (lambda c: c.update(weight=np.ones((3, 1), np.float32)), "inputs.weight"),
        (lambda c: c.update(weight=(1.0, 2.0, 3.0)), "inputs.weight"),
        (lambda c: c.update(club=["ACTIVE", None, "ACTIVE"]), "inputs.club"),
        (lambda c: c.update(units_7d=[1.0]), "inputs"),
        (lambda c: c.update(weight=["1", "2", "3"]), "inputs.weight"),  # numpy would read these as numbers
        (lambda c: c.update(weight=[True, 1.0, 2.0]), "inputs.weight"),
        (lambda c: c.update(weight=np.array(["1", "2", "3"])), "inputs.weight"),
    ],
)
def test_bad_columns_name_the_field(predictor: RankingPredictor, change, field: str) -> None:
    columns = frame_to_columns(rows(3, 2))
    change(columns)
    with pytest.raises(BadRequest) as error:
        predict(predictor, columns)
    assert error.value.field == field


@pytest.mark.parametrize(
    "value", [1e308, -1e39, 10**400, float("inf"), float("-inf")], ids=["1e308", "-1e39", "10**400", "inf", "-inf"]
)
def test_a_list_number_beyond_float32_is_refused_not_made_infinite(predictor: RankingPredictor, value: float) -> None:
    columns = listed(frame_to_columns(rows(3, 2)))  # JSON's form
    columns["units_7d"] = [1.0, value, None]
    with pytest.raises(BadRequest) as error:
        predict(predictor, columns)
    assert error.value.field == "inputs.units_7d" and "beyond the float32 range" in str(error.value)


def test_in_process_arrays_are_scored_as_training_casts_them(predictor: RankingPredictor) -> None:
    """The transformer's own features (a zero avg_price makes price_ratio infinite in training too)."""
    frame = rows(4, 3).with_columns(weight=pl.Series([np.inf, 1e300, -np.inf, np.nan]))
    expected = predictor.ranker.score(frame.select(SCHEMA.features))
    np.testing.assert_allclose(predict(predictor, frame_to_columns(frame))["predictions"], expected, atol=1e-12)
