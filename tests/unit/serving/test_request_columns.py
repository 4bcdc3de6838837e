"""The ranking transformer's columns from rows and catalogue arrays equal the frame path's, value for value.

The frame path is what the transformer did before: the rows as a frame (``rows_from_wire``), the features frame
of ``request_features`` (held equal to training's ``candidate_features`` in ``test_request_features.py``) and its
columns (``frame_to_columns``). Inputs outside the row path must give None, so that the caller takes that path.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest

from recsys.serving.customers import rows_from_wire, rows_to_wire
from recsys.serving.request_columns import ServingFeatures, serving_features
from recsys.serving.request_features import request_features
from recsys.serving.wire import frame_to_columns
from recsys.training.ranking_features import RankerSchema
from tests.unit.serving.test_request_features import (
    AS_OF,
    articles,
    candidates,
    customers,
    random_inputs,
    schema,
    with_string_ids,
)


class Request:
    """A request as the ranking transformer holds it: one customer row per instance (rows_to_wire's, a row of
    nulls for a customer the store does not have), the candidates' instances and catalogue rows."""

    def __init__(self, cands: pl.DataFrame, custs: pl.DataFrame, arts: pl.DataFrame) -> None:
        known = set(arts.get_column("article_id").to_list())
        self.cands = cands.filter(pl.col("article_id").is_in(list(known)))  # serving's are catalogue rows
        self.schema = pl.Schema(custs.schema)
        stored = {r["customer_id"]: r for r in rows_to_wire(custs.to_dicts())}
        ids = self.cands.get_column("customer_id").unique(maintain_order=True).to_list()
        self.rows = [stored.get(c, {**dict.fromkeys(self.schema), "customer_id": c}) for c in ids]
        instance = {c: j for j, c in enumerate(ids)}
        self.query = np.array([instance[c] for c in self.cands.get_column("customer_id").to_list()])
        row_of = {a: i for i, a in enumerate(arts.get_column("article_id").to_list())}
        self.at = np.array([row_of[a] for a in self.cands.get_column("article_id").to_list()])
        self.arts = arts

    def features(self, ranker: RankerSchema) -> ServingFeatures:
        features = serving_features(self.arts, ranker, self.schema)
        assert features is not None, "the row path refused the catalogue"
        return features

    def columns(self, ranker: RankerSchema, times: list[Any]) -> dict[str, Any] | None:
        score = self.cands.get_column("retrieval_score").to_numpy()
        rank = self.cands.get_column("retrieval_rank").to_numpy()
        return self.features(ranker).columns(self.rows, times, self.query, self.at, score, rank)

    def frame_columns(self, ranker: RankerSchema, as_of: datetime | date) -> dict[str, Any]:
        frame = request_features(self.cands, rows_from_wire(self.rows, self.schema), self.arts, as_of, ranker)
        return frame_to_columns(frame, ranker.features)


def assert_same_columns(got: dict[str, Any] | None, expected: dict[str, Any]) -> None:
    assert got is not None, "the row path refused the request"
    assert list(got) == list(expected)
    for name, values in expected.items():
        if isinstance(values, np.ndarray):
            assert isinstance(got[name], np.ndarray) and got[name].dtype == values.dtype, name
            np.testing.assert_array_equal(got[name], values, err_msg=name)  # NaN where NaN
        else:
            assert got[name] == values, name


def check(cands: pl.DataFrame, custs: pl.DataFrame, arts: pl.DataFrame, ranker: RankerSchema) -> Request:
    request = Request(cands, custs, arts)
    times = [AS_OF] * len(request.rows)
    assert_same_columns(request.columns(ranker, times), request.frame_columns(ranker, AS_OF))
    return request


def test_hand_made_rows() -> None:
    request = check(candidates(), customers(), articles(), schema())
    assert len(request.rows) == 5 and request.rows[2]["club_member_status"] is None  # c3: a row of nulls
    assert schema().repurchase and schema().recency and schema().price and len(schema().affinities) == 3
    assert "preferred_sections" in schema().customer_categorical  # a list: sorted and joined


def test_catalogue_strings_are_one_object_per_value() -> None:
    """A request's categories point at a few shared strings (they stay in the CPU's caches)."""
    custs, arts, cands = random_inputs(0)
    features = Request(cands, custs, arts).features(schema())
    for name, values in features.articles.items():
        if values.dtype == object:
            assert len({id(v) for v in values}) == len(set(values.tolist())), name


def test_string_ids() -> None:
    custs, arts, cands = with_string_ids(customers(), articles(), candidates())
    check(cands, custs, arts, schema())


def test_one_customer() -> None:
    cands = candidates([("c1", a) for a in (3, 2, 5, 6, 1, 7)])
    check(cands, customers(), articles(), schema())


@pytest.mark.parametrize("seed", range(6))
def test_random_rows(seed: int) -> None:
    custs, arts, cands = random_inputs(seed)
    check(cands, custs, arts, schema())
    check(cands.sample(fraction=1.0, shuffle=True, seed=seed), custs, arts, schema())  # customers interleaved
    string_customers, string_articles, string_candidates = with_string_ids(custs, arts, cands)
    check(string_candidates, string_customers, string_articles, schema())


def test_each_instance_at_its_own_time() -> None:
    """Days since the last purchase count to each instance's request time."""
    ranker = schema()
    request = Request(candidates(), customers(), articles())
    times = [AS_OF + timedelta(days=3 * j, hours=5) for j in range(len(request.rows))]
    got = request.columns(ranker, times)
    assert got is not None
    for j, as_of in enumerate(times):
        mine = np.flatnonzero(request.query == j)
        alone = Request(request.cands[pl.Series(mine, dtype=pl.UInt32)], customers(), articles())
        expected = alone.frame_columns(ranker, as_of)
        part = {k: v[mine] if isinstance(v, np.ndarray) else [v[i] for i in mine] for k, v in got.items()}
        assert_same_columns(part, expected)


def test_no_candidates() -> None:
    request = Request(candidates(), customers(), articles())
    got = request.features(schema()).columns(request.rows, [AS_OF], *(np.zeros(0, dtype=np.int64),) * 4)
    assert got is not None and all(len(v) == 0 for v in got.values())


def refused(request: Request, change: dict[str, Any], ranker: RankerSchema) -> None:
    request.rows[0] = {**request.rows[0], **change}
    assert request.columns(ranker, [AS_OF] * len(request.rows)) is None


@pytest.mark.parametrize(
    "change",
    [
        {"customer_id": None},  # the frame path joins by id
        {"age": "30"},  # a number as a string
        {"age": True},
        {"n_purchases": 2.5},  # a float in an integer column
        {"n_purchases": 2**40},  # beyond Int32
        {"club_member_status": 3},
        {"preferred_sections": ["Mens", 1]},
        {"last_purchase": "2020-01-10T00:00:00+02:00"},  # a time zone
        {"last_purchase": "yesterday"},
        {"last_article_ids": ["3"]},  # ids of another type
        {"last_article_gaps": [0, 1]},  # not one gap per id
        {"last_article_gaps": [0.0, 1.0, 1.0, 2.0, 2.0]},  # floats
        {"colour_group_name_shares": [1, 0.5, 0.5]},  # an integer share
    ],
)
def test_values_the_frame_path_types_itself_are_refused(change: dict[str, Any]) -> None:
    refused(Request(candidates(), customers(), articles()), change, schema())


def test_a_repeated_customer_is_refused() -> None:
    request = Request(candidates(), customers(), articles())
    request.rows[1] = {**request.rows[1], "customer_id": request.rows[0]["customer_id"]}
    assert request.columns(schema(), [AS_OF] * len(request.rows)) is None


@pytest.mark.parametrize(
    "column, dtype",
    [
        ("age", pl.Float32),  # rounds on the way in
        ("last_purchase", pl.Datetime("ms")),
        ("last_purchase", pl.Datetime("us", "UTC")),
        ("club_member_status", pl.Boolean),
        ("last_article_ids", pl.List(pl.String)),
        ("last_article_gaps", pl.List(pl.Float64)),
    ],
)
def test_dtypes_the_row_path_does_not_read(column: str, dtype: pl.DataType) -> None:
    request = Request(candidates(), customers(), articles())
    assert serving_features(articles(), schema(), pl.Schema({**request.schema, column: dtype})) is None


def test_unprepared_catalogues_are_refused() -> None:
    ranker, schema_ = schema(), Request(candidates(), customers(), articles()).schema
    twice = pl.concat([articles(), articles().head(1)])
    assert serving_features(twice, ranker, schema_) is None
    as_text = articles().with_columns(pl.col("article_price").cast(pl.String))
    assert serving_features(as_text, ranker, schema_) is None
    assert serving_features(articles().drop("weight"), ranker, schema_) is None
