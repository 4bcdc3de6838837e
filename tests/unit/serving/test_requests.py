"""Request validation: every refusal names the field, defaults fill what a request leaves out."""

from __future__ import annotations

from datetime import datetime

import pytest

from recsys.serving.options import ServingOptions
from recsys.serving.requests import BadRequest, Instance, check_unique, parse_request

NOW = datetime(2020, 9, 23, 10, 0)
OPTIONS = ServingOptions(default_top_k=12, max_top_k=50, max_instances=3)
KINDS = {"age": "numeric", "club_member_status": "categorical", "index_group_name": "list"}


def parse(body: object, id_kind: str = "string") -> list[Instance]:
    return parse_request(body, OPTIONS, KINDS, id_kind, now=NOW)  # type: ignore[arg-type]


def test_defaults_and_types() -> None:
    (one, two) = parse(
        {
            "instances": [
                {"customer_id": "c1"},
                {
                    "customer_id": "c2",
                    "top_k": 5,
                    "request_time": "2020-09-22T12:30:00+02:00",
                    "features": {"age": 31, "club_member_status": " ACTIVE ", "index_group_name": "Divided"},
                },
            ]
        }
    )
    assert one == Instance("c1", 12, NOW, {})
    assert two.top_k == 5
    assert two.request_time == datetime(2020, 9, 22, 10, 30)  # UTC, naive like the store
    assert two.features == {"age": 31.0, "club_member_status": "ACTIVE", "index_group_name": ["Divided"]}


def test_bytes_body_and_integer_ids() -> None:
    assert parse(b'{"instances": [{"customer_id": 7}]}', id_kind="int")[0].customer_id == 7
    assert parse({"instances": [{"customer_id": "7"}]}, id_kind="int")[0].customer_id == 7  # CLI/URL strings


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        ([1, 2], "body"),
        ({}, "instances"),
        ({"instances": {"customer_id": "c"}}, "instances"),
        ({"instances": []}, "instances"),
        ({"instances": [{"customer_id": "c"}] * 4}, "instances"),
        ({"instances": ["c1"]}, "instances[0]"),
        ({"instances": [{"customer_id": "c", "colour": "red"}]}, "instances[0].colour"),
        ({"instances": [{"top_k": 3}]}, "instances[0].customer_id"),
        ({"instances": [{"customer_id": None}]}, "instances[0].customer_id"),
        ({"instances": [{"customer_id": 12}]}, "instances[0].customer_id"),
        ({"instances": [{"customer_id": "  "}]}, "instances[0].customer_id"),
        ({"instances": [{"customer_id": "c", "top_k": 0}]}, "instances[0].top_k"),
        ({"instances": [{"customer_id": "c", "top_k": 51}]}, "instances[0].top_k"),
        ({"instances": [{"customer_id": "c", "top_k": "12"}]}, "instances[0].top_k"),
        ({"instances": [{"customer_id": "c", "top_k": True}]}, "instances[0].top_k"),
        ({"instances": [{"customer_id": "c", "top_k": 2.5}]}, "instances[0].top_k"),
        ({"instances": [{"customer_id": "c", "request_time": "yesterday"}]}, "instances[0].request_time"),
        ({"instances": [{"customer_id": "c", "request_time": 1600000000}]}, "instances[0].request_time"),
        ({"instances": [{"customer_id": "c", "features": [1]}]}, "instances[0].features"),
        ({"instances": [{"customer_id": "c", "features": {"height": 180}}]}, "instances[0].features.height"),
        ({"instances": [{"customer_id": "c", "features": {"age": "old"}}]}, "instances[0].features.age"),
        ({"instances": [{"customer_id": "c", "features": {"age": True}}]}, "instances[0].features.age"),
        (
            {"instances": [{"customer_id": "c", "features": {"club_member_status": 3}}]},
            "instances[0].features.club_member_status",
        ),
        (
            {"instances": [{"customer_id": "c", "features": {"index_group_name": [1]}}]},
            "instances[0].features.index_group_name",
        ),
        ({"instances": [{"customer_id": "c"}, {"customer_id": "d", "top_k": -1}]}, "instances[1].top_k"),
    ],
)
def test_bad_requests_name_the_field(body: object, field: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse(body)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_one_instance_per_customer() -> None:
    with pytest.raises(BadRequest, match=r"instances\[2\].customer_id: the same customer as instances\[0\]"):
        check_unique(parse({"instances": [{"customer_id": "a"}, {"customer_id": "b"}, {"customer_id": "a"}]}))
