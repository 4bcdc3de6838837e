"""Parse and validate a recommendation request; every error names the field it is about.

The public endpoint takes the KServe v1 body ``{"instances": [{...}, ...]}``; an instance is::

    {"customer_id": "...", "top_k": 12, "request_time": "2020-09-22T10:00:00", "features": {"age": 31}}

Only ``customer_id`` is required. ``features`` lets a caller describe a customer the store does not know (or
override what it knows): customer attribute columns (numbers or strings) and, for each category affinity of the
history (e.g. ``index_group_name``), a list of preferred values. Unknown keys, wrong types and out-of-range
numbers (outside :data:`RANGES` where the spec gives one, else beyond the towers' 32-bit floats) are
:class:`BadRequest` — KServe answers it with HTTP 400 and the server keeps serving.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import orjson
from kserve.errors import InvalidInput

from recsys.features.common import naive_utc
from recsys.features.customers import AGE, AGE_RANGE
from recsys.serving.options import ServingOptions

FeatureKind = Literal["numeric", "categorical", "list"]
FIELDS = ("customer_id", "top_k", "request_time", "features")
MAX_ID_LENGTH = 256
MAX_LIST = 64  # values in one list feature
FLOAT32_MAX = float(np.finfo(np.float32).max)  # the towers compute in float32: a larger number becomes inf
RANGES = {AGE: AGE_RANGE}  # what the feature pipeline takes for a value, not a data error


class BadRequest(InvalidInput):
    """A request the endpoint refuses (HTTP 400); ``field`` is the JSON path of the offending value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Instance:
    """One validated instance; ``request_time`` is naive UTC like every timestamp in the store."""

    customer_id: str | int
    top_k: int
    request_time: datetime
    features: dict[str, Any] = field(default_factory=dict)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def decode_body(body: Any) -> Any:
    """The JSON value of a body that may still be bytes.

    KServe decodes JSON content types (and none) itself and passes the others through as bytes, so a ``str`` is
    already a decoded value: the body was a JSON string, which is not decoded a second time.
    """
    if isinstance(body, bytes | bytearray):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadRequest("body", f"not valid JSON ({exc})") from None
    return body


def parse_request(
    body: Any,
    options: ServingOptions,
    feature_kinds: Mapping[str, FeatureKind] | None = None,
    id_kind: str = "string",
    now: datetime | None = None,
) -> list[Instance]:
    """The validated instances of a v1 body (see the module docstring)."""
    now = now or utc_now()
    kinds = feature_kinds or {}
    raws = body_instances(decode_body(body), options)
    return [_instance(raw, f"instances[{i}]", options, kinds, id_kind, now) for i, raw in enumerate(raws)]


def body_instances(body: Any, options: ServingOptions) -> list[Any]:
    """The ``instances`` list of a decoded v1 body: present, a list, not empty, at most ``max_instances``."""
    if not isinstance(body, dict):
        raise BadRequest("body", f"expected a JSON object with 'instances', got {_type(body)}")
    instances = body.get("instances")
    if instances is None:
        raise BadRequest("instances", 'missing: send {"instances": [{"customer_id": ...}]}')
    if not isinstance(instances, list):
        raise BadRequest("instances", f"expected a list, got {_type(instances)}")
    if not instances:
        raise BadRequest("instances", "empty: send at least one instance")
    if len(instances) > options.max_instances:
        raise BadRequest("instances", f"{len(instances)} instances, at most {options.max_instances} per request")
    return instances


def check_unique(instances: list[Instance]) -> None:
    """One instance per customer: the answers of one request are computed together, keyed by customer."""
    seen: dict[str | int, int] = {}
    for i, instance in enumerate(instances):
        first = seen.setdefault(instance.customer_id, i)
        if first != i:
            raise BadRequest(f"instances[{i}].customer_id", f"the same customer as instances[{first}]; ask once")


def _instance(
    raw: Any, path: str, options: ServingOptions, kinds: Mapping[str, FeatureKind], id_kind: str, now: datetime
) -> Instance:
    instance = parse_instance(raw, path, FIELDS, options, id_kind, now)
    return replace(instance, features=_features(raw.get("features"), f"{path}.features", kinds))


def parse_instance(
    raw: Any, path: str, fields: Sequence[str], options: ServingOptions, id_kind: str, now: datetime
) -> Instance:
    """An instance object with only ``fields``, and its ``customer_id``, ``top_k`` and ``request_time`` checked as
    every server of the chain checks them (the other fields are the caller's)."""
    if not isinstance(raw, dict):
        raise BadRequest(path, f"expected an object, got {_type(raw)}")
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise BadRequest(f"{path}.{unknown[0]}", f"unknown field; an instance has {', '.join(fields)}")
    if "customer_id" not in raw or raw["customer_id"] is None:
        raise BadRequest(f"{path}.customer_id", "missing")
    return Instance(
        customer_id=parse_customer_id(raw["customer_id"], f"{path}.customer_id", id_kind),
        top_k=parse_top_k(raw.get("top_k"), f"{path}.top_k", options),
        request_time=parse_time(raw.get("request_time"), f"{path}.request_time", now),
    )


def parse_customer_id(value: Any, path: str, id_kind: str) -> str | int:
    """A customer id of the run's kind (``int``: an integer, or its digits as a string)."""
    if id_kind == "int":
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRequest(path, f"expected an integer id, got {_type(value)}")
        return value
    if not isinstance(value, str):
        raise BadRequest(path, f"expected a string, got {_type(value)}")
    if not value.strip() or len(value) > MAX_ID_LENGTH:
        raise BadRequest(path, f"expected a non-empty string of at most {MAX_ID_LENGTH} characters")
    return value


def parse_top_k(value: Any, path: str, options: ServingOptions) -> int:
    """An integer from 1 to ``max_top_k`` (``default_top_k`` when null)."""
    if value is None:
        return options.default_top_k
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(path, f"expected an integer, got {_type(value)}")
    if not 1 <= value <= options.max_top_k:
        raise BadRequest(path, f"must be between 1 and {options.max_top_k}, got {value}")
    return value


def parse_time(value: Any, path: str, now: datetime) -> datetime:
    """An ISO-8601 time as naive UTC (``now`` when null)."""
    if value is None:
        return now
    if not isinstance(value, str):
        raise BadRequest(path, f"expected an ISO-8601 string, got {_type(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(path, f"not an ISO-8601 date or time: {value[:40]!r}") from None
    try:
        return naive_utc(parsed)
    except OverflowError:  # e.g. 0001-01-01T00:00+05:00 is in year 0 in UTC
        raise BadRequest(path, f"out of the range of dates once converted to UTC: {value[:40]!r}") from None


def _features(value: Any, path: str, kinds: Mapping[str, FeatureKind]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(path, f"expected an object, got {_type(value)}")
    out: dict[str, Any] = {}
    for name, item in value.items():
        where = f"{path}.{name}"
        kind = kinds.get(name)
        if kind is None:
            known = ", ".join(sorted(kinds)) or "none"
            raise BadRequest(where, f"not a customer feature this model reads; known: {known}")
        if item is None:
            continue
        if kind == "numeric":
            out[name] = _number(item, where, RANGES.get(name, (-FLOAT32_MAX, FLOAT32_MAX)))
        elif kind == "categorical":
            if not isinstance(item, str) or not item.strip():
                raise BadRequest(where, f"expected a non-empty string, got {_type(item)}")
            out[name] = item.strip()
        else:
            if isinstance(item, str):
                item = [item]
            if not isinstance(item, list) or not all(isinstance(v, str) and v.strip() for v in item):
                raise BadRequest(where, "expected a list of non-empty strings")
            if len(item) > MAX_LIST:
                raise BadRequest(where, f"at most {MAX_LIST} values")
            if item:
                out[name] = [v.strip() for v in dict.fromkeys(item)]
    return out


def beyond_float32(values: Iterable[Any]) -> bool:
    """Whether a number is larger in size than a float32 holds (nulls and NaN are not): compared in Python, which
    also takes an int too big for a float, and at a request's few values costs less than numpy's reductions."""
    return any(v is not None and (v > FLOAT32_MAX or v < -FLOAT32_MAX) for v in values)


def _number(value: Any, path: str, bounds: tuple[float, float]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(path, f"expected a number, got {_type(value)}")
    low, high = bounds
    if not low <= value <= high:  # also NaN; compared, not converted: a huge int does not fit a float
        raise BadRequest(path, f"must be between {low:g} and {high:g}, got {str(value)[:40]}")
    return float(value)


def _type(value: Any) -> str:
    if value is None:
        return "null"
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }
    return names.get(type(value), type(value).__name__)
