"""The customer state of a request: sent features over stored rows, signal, and the rows on the wire."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import polars as pl

from recsys.serving.customers import apply_features, has_signal, rows_from_wire, rows_to_wire
from recsys.serving.requests import Instance

AT = datetime(2020, 9, 23)
KINDS = {"age": "numeric", "club_member_status": "categorical", "age_group": "categorical", "index_group_name": "list"}


def stored() -> list[dict]:
    """A known customer with history, a known one without, and one the store does not know (nulls)."""
    empty = dict.fromkeys(
        ["club_member_status", "age", "age_missing", "age_group", "last_article_ids", "last_purchase",
         "index_group_name_values", "index_group_name_shares"]
    )  # fmt: skip
    known = empty | {"club_member_status": "ACTIVE", "age": 40.0, "age_missing": 0, "age_group": "35-44"}
    return [
        known | {"customer_id": "c1", "last_article_ids": [3, 2], "last_purchase": datetime(2020, 9, 1)},
        known | {"customer_id": "c2"},
        empty | {"customer_id": "new"},
    ]


def test_sent_features_overwrite_the_stored_ones() -> None:
    instances = [
        Instance("c1", 12, AT),
        Instance("c2", 12, AT, {"club_member_status": "PRE-CREATE"}),
        Instance("new", 12, AT, {"age": 23.0, "index_group_name": ["Divided", "Sport"]}),
    ]
    rows = apply_features(stored(), instances, KINDS)
    assert rows[0] == stored()[0]
    assert rows[1]["club_member_status"] == "PRE-CREATE"
    new = rows[2]
    assert (new["age"], new["age_missing"], new["age_group"]) == (23.0, 0, "16-24")
    assert new["index_group_name_values"] == ["Divided", "Sport"]
    assert new["index_group_name_shares"] == [0.5, 0.5]
    both = apply_features(stored()[2:], [Instance("new", 1, AT, {"age": 23.0, "age_group": "65+"})], KINDS)
    assert both[0]["age_group"] == "65+"  # a sent group wins over the one derived from the sent age


def test_signal() -> None:
    attributes = ["customer_id", "club_member_status", "age"]
    rows = stored()
    plain = [Instance(r["customer_id"], 12, AT) for r in rows]
    assert has_signal(rows, plain, attributes).tolist() == [True, True, False]
    sent = [*plain[:2], Instance("new", 12, AT, {"age": 30.0})]
    assert has_signal(rows, sent, attributes).tolist() == [True, True, True]
    assert has_signal(rows, plain, ["customer_id"]).tolist() == [True, False, False]  # history only


def test_rows_survive_the_wire() -> None:
    schema = pl.Schema(
        {
            "customer_id": pl.String,
            "last_article_ids": pl.List(pl.Int64),
            "last_purchase": pl.Datetime("us"),
            "first_seen": pl.Date,
            "age": pl.Float64,
        }
    )
    frame = pl.DataFrame(
        {
            "customer_id": ["a", "b"],
            "last_article_ids": [[1, 2], None],
            "last_purchase": [datetime(2020, 9, 1, 0, 0, 0, 5), None],
            "first_seen": [date(2019, 1, 2), None],
            "age": [31.0, np.nan],
        },
        schema=schema,
    )
    wire = rows_to_wire(frame.to_dicts())
    assert wire[0]["last_purchase"] == "2020-09-01T00:00:00.000005" and wire[0]["first_seen"] == "2019-01-02"
    back = rows_from_wire(wire, schema)
    assert back.schema == schema
    assert back.equals(frame)
