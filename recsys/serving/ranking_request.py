"""The ranking transformer's request, validated: every error names the field it is about (HTTP 400).

The query transformer sends, per instance, the public request's values (``customer_id``, ``top_k``,
``request_time``), the query embedding (null without signal) and the customer's online row (``customer``)::

    {"instances": [{"customer_id": "...", "top_k": 12, "request_time": "2020-09-22T10:00:00",
                    "embedding": [0.1, ...], "customer": {"age": 31.0, ...}}], "run_id": "..."}

The first three are checked as the public endpoint checks them (:mod:`~recsys.serving.requests`); the embedding
must be numbers, as many as the index's dimension, finite in float32; each value of the customer row must fit its
column of the customers view. The checks cost microseconds per instance and none per candidate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from recsys.features.customer_history import LAST_ARTICLES, LAST_GAPS
from recsys.serving.options import ServingOptions
from recsys.serving.requests import (
    FLOAT32_MAX,
    BadRequest,
    Instance,
    beyond_float32,
    body_instances,
    check_unique,
    decode_body,
    parse_instance,
    utc_now,
)
from recsys.training.retrieval_data import SHARES, VALUES

FIELDS = ("customer_id", "top_k", "request_time", "embedding", "customer")


@dataclass(frozen=True)
class RankingRequest:
    """Per instance: the request, its embedding (float32, or None without signal) and the customer's row."""

    instances: list[Instance]
    embeddings: list[np.ndarray | None]
    rows: list[dict[str, Any]]


def parse_ranking_request(
    payload: Any,
    run_id: str,
    options: ServingOptions,
    *,
    dimension: int | None,
    id_kind: str,
    customers: CustomerColumns,
) -> RankingRequest:
    """The validated request (see the module docstring); ``dimension``: the vector index's (None: not checked),
    ``customers``: the columns of the customers view (:meth:`CustomerColumns.of` its online schema)."""
    body = decode_body(payload)
    raws = body_instances(body, options)
    if body.get("run_id") not in (None, run_id):
        raise BadRequest("run_id", f"this server serves run {run_id!r}, not {str(body.get('run_id'))[:80]!r}")
    now = utc_now()
    instances, embeddings, rows = [], [], []
    for i, raw in enumerate(raws):
        where = f"instances[{i}]"
        instances.append(parse_instance(raw, where, FIELDS, options, id_kind, now))
        embeddings.append(_embedding(raw.get("embedding"), f"{where}.embedding", dimension))
        rows.append(customers.check(raw.get("customer"), f"{where}.customer"))
    given = {len(e) for e in embeddings if e is not None}
    if len(given) > 1:  # without a known dimension, the instances must at least agree
        raise BadRequest("instances", f"embeddings of different lengths {sorted(given)}")
    check_unique(instances)
    return RankingRequest(instances, embeddings, rows)


def _embedding(value: Any, path: str, dimension: int | None) -> np.ndarray | None:
    if value is None:
        return None
    # the element types first: numpy would read "0.1" and True as numbers, and a nested list as a matrix
    if not isinstance(value, list) or not value or not set(map(type, value)) <= {int, float}:
        raise BadRequest(path, "expected a non-empty flat list of numbers, or null")
    if dimension is not None and len(value) != dimension:
        raise BadRequest(path, f"expected {dimension} numbers (the index's dimension), got {len(value)}")
    if beyond_float32(value) or any(v != v for v in value):  # inf or NaN would make the vector search noise
        raise BadRequest(path, f"expected finite numbers within the float32 range (±{FLOAT32_MAX:.3g})")
    return np.asarray(value, dtype=np.float32)


class Column(NamedTuple):
    """What a column of the customers view takes (besides null), as plain Python to check a row in microseconds."""

    expected: str
    types: frozenset[type] | None  # None: any value (a type no stage reads field by field)
    bounds: tuple[int, int] | None = None
    is_list: bool = False
    time: bool = False  # an ISO string must parse, without an offset
    fast: frozenset[type] = frozenset()  # types that fit with no more checks (most values: one set lookup)


@dataclass(frozen=True)
class CustomerColumns:
    """The columns of the customers view a row may hold, and the lists that hold one item per item of another
    (the history's day gaps beside its ids, an affinity's shares beside its values)."""

    columns: dict[str, Column]
    pairs: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, schema: pl.Schema) -> CustomerColumns:
        columns = {name: _column(dtype) for name, dtype in schema.items()}
        partners = {name: name.removesuffix(SHARES) + VALUES for name in columns if name.endswith(SHARES)}
        partners[LAST_GAPS] = LAST_ARTICLES
        return cls(columns, tuple((a, b) for a, b in partners.items() if a in columns and b in columns))

    def check(self, value: Any, path: str) -> dict[str, Any]:
        """The customer's row (null: no row), each value of its column's type."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise BadRequest(path, "expected an object (the customer's online row)")
        for name, item in value.items():
            column = self.columns.get(name)
            if column is None:
                raise BadRequest(f"{path}.{name}", "not a column of the customers view")
            if item is not None and type(item) not in column.fast:
                _check(item, column, f"{path}.{name}")
        for name, partner in self.pairs:
            have, want = len(value.get(name) or ()), len(value.get(partner) or ())
            if have != want:
                raise BadRequest(f"{path}.{name}", f"{have} values for the {want} of {partner}: one per value")
        return dict(value)


def _column(dtype: pl.DataType) -> Column:
    column = _checked(dtype)
    simple = column.types is not None and not (column.bounds or column.time or column.is_list)
    return column._replace(fast=column.types) if simple else column


def _checked(dtype: pl.DataType) -> Column:
    if isinstance(dtype, pl.List):
        inner = _checked(dtype.inner)
        return Column("a list", frozenset({list}), is_list=True) if inner.is_list else inner._replace(is_list=True)
    if dtype.is_integer():
        return Column(f"an integer of {dtype}", frozenset({int}), _int_bounds(dtype))
    if dtype.is_float():
        return Column("a number", frozenset({int, float}))
    if dtype == pl.String:
        return Column("a string", frozenset({str}))
    if dtype == pl.Boolean:
        return Column("a boolean", frozenset({bool}))
    if isinstance(dtype, pl.Datetime | pl.Date):
        return Column("an ISO-8601 time without offset", frozenset({str, datetime, date}), time=True)
    return Column("any value", None)


def _int_bounds(dtype: pl.DataType) -> tuple[int, int]:
    try:
        info = np.iinfo(str(dtype).lower())  # Int32 -> int32
    except (TypeError, ValueError):  # Int128 and the like: wider than any value a request needs
        return -(2**127), 2**127 - 1
    return int(info.min), int(info.max)


def _check(value: Any, column: Column, path: str) -> None:
    if not column.is_list:
        if not _fits(value, column):
            raise BadRequest(path, f"expected {column.expected} or null, got {_shown(value)}")
        return
    if not isinstance(value, list):
        raise BadRequest(path, f"expected a list or null, got {_shown(value)}")
    types = set(map(type, value)) - {type(None)}  # the whole list at C speed; element by element on a misfit
    if column.types is None or (
        types <= column.types and not column.time and (column.bounds is None or _within(value, column.bounds))
    ):
        return
    for i, item in enumerate(value):
        if item is not None and not _fits(item, column):
            raise BadRequest(f"{path}[{i}]", f"expected {column.expected} or null, got {_shown(item)}")


def _fits(value: Any, column: Column) -> bool:
    if column.types is None:
        return True
    if type(value) not in column.types:
        return False
    if column.bounds is not None:
        return column.bounds[0] <= value <= column.bounds[1]
    return not (column.time and isinstance(value, str)) or _naive_time(value)


def _within(values: list[Any], bounds: tuple[int, int]) -> bool:
    present = [v for v in values if v is not None]
    return not present or (bounds[0] <= min(present) and max(present) <= bounds[1])


def _naive_time(value: str) -> bool:
    """An ISO time without offset, like every time in the store (an aware one would not compare with them)."""
    try:
        return datetime.fromisoformat(value).tzinfo is None
    except ValueError:
        return False


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str | int | float) and len(repr(value)) <= 40 else type(value).__name__
