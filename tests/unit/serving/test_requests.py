"""Request validation: every refusal names the field, defaults fill what a request leaves out."""

from __future__ import annotations

from datetime import datetime

import pytest

from recsys.serving.options import ServingOptions
from recsys.serving.requests import BadRequest, Instance, check_unique, parse_request

NOW = datetime(2020, 9, 23, 10, 0)
OPTIONS = ServingOptions(default_top_k=12, max_top_k=50, max_instances=3)
KINDS = {"age": "numeric", "fn": "numeric", "club_member_status": "categorical", "index_group_name": "list"}


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
        # in range as written, out of it in UTC
        (
            {"instances": [{"customer_id": "c", "request_time": "0001-01-01T00:00:00+05:00"}]},
            "instances[0].request_time",
        ),
        (
            {"instances": [{"customer_id": "c", "request_time": "9999-12-31T23:00:00-05:00"}]},
            "instances[0].request_time",
        ),
        ({"instances": [{"customer_id": "c", "features": [1]}]}, "instances[0].features"),
        ({"instances": [{"customer_id": "c", "features": {"height": 180}}]}, "instances[0].features.height"),
        ({"instances": [{"customer_id": "c", "features": {"age": "old"}}]}, "instances[0].features.age"),
        ({"instances": [{"customer_id": "c", "features": {"age": True}}]}, "instances[0].features.age"),
        ({"instances": [{"customer_id": "c", "features": {"age": 1e308}}]}, "instances[0].features.age"),
        ({"instances": [{"customer_id": "c", "features": {"age": 121}}]}, "instances[0].features.age"),
        ({"instances": [{"customer_id": "c", "features": {"age": -1}}]}, "instances[0].features.age"),
        ({"instances": [{"customer_id": "c", "features": {"fn": 1e39}}]}, "instances[0].features.fn"),
        ({"instances": [{"customer_id": "c", "features": {"fn": -(10**400)}}]}, "instances[0].features.fn"),
        ({"instances": [{"customer_id": "c", "features": {"fn": float("nan")}}]}, "instances[0].features.fn"),
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


def test_numbers_at_the_limits_are_taken() -> None:
    """An age is one in the feature pipeline's range; any other number one a float32 holds (the towers' type)."""
    (one, two) = parse(
        {
            "instances": [
                {"customer_id": "a", "features": {"age": 0, "fn": 3.4e38}},
                {"customer_id": "b", "features": {"age": 120, "fn": -3.4e38}},
            ]
        }
    )
    assert one.features == {"age": 0.0, "fn": 3.4e38} and two.features == {"age": 120.0, "fn": -3.4e38}
    with pytest.raises(BadRequest, match=r"features\.age: must be between 0 and 120, got 120\.5"):
        parse({"instances": [{"customer_id": "a", "features": {"age": 120.5}}]})


def test_times_near_the_date_limits() -> None:
    (early, late) = parse(
        {
            "instances": [
                {"customer_id": "a", "request_time": "0001-01-01T05:00:00+05:00"},
                {"customer_id": "b", "request_time": "9999-12-31T18:59:59-05:00"},
            ]
        }
    )
    assert early.request_time == datetime(1, 1, 1) and late.request_time == datetime(9999, 12, 31, 23, 59, 59)
    with pytest.raises(BadRequest, match=r"request_time: out of the range of dates once converted to UTC"):
        parse({"instances": [{"customer_id": "a", "request_time": "0001-01-01T04:59:59+05:00"}]})


@pytest.mark.parametrize("body", ['{"instances": [{"customer_id": "c"}]}', "abc", ""])
def test_a_string_is_the_bodys_json_value_not_json_text(body: str) -> None:
    """KServe decodes JSON bodies itself: a str it hands over was a JSON string, and is not decoded again."""
    with pytest.raises(BadRequest, match=r"^body: expected a JSON object with 'instances', got a string$"):
        parse(body)
    # the same text as undecoded bytes (what KServe passes for text/plain or a form) is JSON to decode
    assert parse(bytearray(b'{"instances": [{"customer_id": "c"}]}'))[0].customer_id == "c"


def test_one_instance_per_customer() -> None:
    with pytest.raises(BadRequest, match=r"instances\[2\].customer_id: the same customer as instances\[0\]"):
        check_unique(parse({"instances": [{"customer_id": "a"}, {"customer_id": "b"}, {"customer_id": "a"}]}))
