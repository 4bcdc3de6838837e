"""The ranking transformer's request: what the query transformer sends, checked field by field."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import polars as pl
import pytest

from recsys.serving.options import ServingOptions
from recsys.serving.ranking_request import CustomerColumns, RankingRequest, parse_ranking_request
from recsys.serving.requests import BadRequest

OPTIONS = ServingOptions(max_top_k=50, max_instances=3)
SCHEMA = pl.Schema(
    {
        "customer_id": pl.String,
        "age": pl.Float64,
        "n_purchases": pl.Int32,
        "last_purchase": pl.Datetime("us"),
        "last_article_ids": pl.List(pl.Int64),
        "last_article_gaps": pl.List(pl.Int32),
        "index_group_name_values": pl.List(pl.String),
        "index_group_name_shares": pl.List(pl.Float64),
    }
)
CUSTOMERS = CustomerColumns.of(SCHEMA)
ROW = {
    "customer_id": "a",
    "age": 31.0,
    "n_purchases": 3,
    "last_purchase": "2020-09-20T00:00:00",
    "last_article_ids": [7, 8],
    "last_article_gaps": [0, 4],
    "index_group_name_values": ["Divided"],
    "index_group_name_shares": [1.0],
}
INSTANCE = {"customer_id": "a", "top_k": 12, "request_time": "2020-09-22T10:00:00", "embedding": None, "customer": ROW}


def parse(body: Any, dimension: int | None = 4) -> RankingRequest:
    return parse_ranking_request(body, "run-1", OPTIONS, dimension=dimension, id_kind="string", customers=CUSTOMERS)


def test_a_request_of_the_query_transformer() -> None:
    request = parse(
        {
            "instances": [
                INSTANCE,
                {**INSTANCE, "customer_id": "b", "embedding": [0.5, -1, 0.0, 3.4e38], "customer": {}},
            ],
            "run_id": "run-1",
        }
    )
    assert [i.customer_id for i in request.instances] == ["a", "b"]
    assert request.instances[0].top_k == 12 and request.instances[0].request_time == datetime(2020, 9, 22, 10)
    assert request.embeddings[0] is None
    vector = request.embeddings[1]
    assert vector is not None and vector.dtype == np.float32 and vector.tolist()[:3] == [0.5, -1.0, 0.0]
    assert request.rows == [ROW, {}]


def with_field(name: str, value: Any) -> dict[str, Any]:
    return {"instances": [{**INSTANCE, name: value}]}


def with_customer(name: str, value: Any) -> dict[str, Any]:
    return with_field("customer", {**ROW, name: value})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("abc", "body"),  # a JSON string, not JSON text
        ({"instances": []}, "instances"),
        ({"instances": [INSTANCE] * 4}, "instances"),
        ({"instances": [INSTANCE], "run_id": "other"}, "run_id"),
        ({"instances": [[1]]}, "instances[0]"),
        (with_field("colour", "red"), "instances[0].colour"),
        (with_field("customer_id", ["a"]), "instances[0].customer_id"),
        (with_field("customer_id", None), "instances[0].customer_id"),
        (with_field("top_k", -5), "instances[0].top_k"),
        (with_field("top_k", 0), "instances[0].top_k"),
        (with_field("top_k", 3.7), "instances[0].top_k"),
        (with_field("top_k", 1_000_000), "instances[0].top_k"),
        (with_field("top_k", 10**30), "instances[0].top_k"),
        (with_field("top_k", "12"), "instances[0].top_k"),
        (with_field("request_time", "0001-01-01T00:00:00+05:00"), "instances[0].request_time"),
        (with_field("request_time", "tomorrow"), "instances[0].request_time"),
        (with_field("embedding", [0.1, 0.2]), "instances[0].embedding"),  # not the index's dimension
        (with_field("embedding", []), "instances[0].embedding"),
        (with_field("embedding", ["0.1"] * 4), "instances[0].embedding"),
        (with_field("embedding", [[0.1] * 4]), "instances[0].embedding"),
        (with_field("embedding", [True, 0.1, 0.1, 0.1]), "instances[0].embedding"),
        (with_field("embedding", [None] * 4), "instances[0].embedding"),  # NaN on the wire
        (with_field("embedding", [float("nan")] * 4), "instances[0].embedding"),
        (with_field("embedding", [1e39, 0.1, 0.1, 0.1]), "instances[0].embedding"),  # inf in float32
        (with_field("embedding", [10**400, 0.1, 0.1, 0.1]), "instances[0].embedding"),
        (with_field("embedding", {"0": 0.1}), "instances[0].embedding"),
        (with_field("customer", [ROW]), "instances[0].customer"),
        (with_customer("n_purchases", "abc"), "instances[0].customer.n_purchases"),
        (with_customer("n_purchases", 2**31), "instances[0].customer.n_purchases"),  # beyond Int32
        (with_customer("n_purchases", 2.5), "instances[0].customer.n_purchases"),
        (with_customer("age", "31"), "instances[0].customer.age"),
        (with_customer("customer_id", 5), "instances[0].customer.customer_id"),
        (with_customer("last_purchase", "notadate"), "instances[0].customer.last_purchase"),
        (with_customer("last_purchase", "2020-09-20T00:00:00+02:00"), "instances[0].customer.last_purchase"),
        (with_customer("last_article_ids", 7), "instances[0].customer.last_article_ids"),
        (with_customer("last_article_ids", [7, "8"]), "instances[0].customer.last_article_ids[1]"),
        (with_customer("last_article_gaps", [0]), "instances[0].customer.last_article_gaps"),  # one per id
        (with_customer("last_article_gaps", None), "instances[0].customer.last_article_gaps"),
        (with_customer("index_group_name_shares", [0.5, 0.5]), "instances[0].customer.index_group_name_shares"),
        (with_customer("height", 180), "instances[0].customer.height"),
    ],
)
def test_bad_requests_name_the_field(body: Any, field: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse(body)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_without_a_known_dimension_the_embeddings_must_agree() -> None:
    two = [{**INSTANCE, "embedding": [0.1, 0.2]}, {**INSTANCE, "customer_id": "b", "embedding": [0.1, 0.2, 0.3]}]
    with pytest.raises(BadRequest, match=r"^instances: embeddings of different lengths \[2, 3\]"):
        parse({"instances": two}, dimension=None)
    assert len(parse({"instances": two[:1]}, dimension=None).embeddings[0]) == 2


def test_one_instance_per_customer() -> None:
    with pytest.raises(BadRequest, match=r"^instances\[1\]\.customer_id: the same customer as instances\[0\]"):
        parse({"instances": [INSTANCE, INSTANCE]})
