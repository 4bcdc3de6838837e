"""The customer side of a request: the online row, features sent with the request, and whether there is signal.

The query transformer reads the ``customers`` view online (attributes + latest history) for every instance in
one batched call, writes the request's features over it (:func:`apply_features`) and hands the resulting rows
on: to the query tower as inputs, and to the ranking transformer, which needs the same state for the ranker's
customer features and the already-bought filter. One read, one customer state per request.

Rows are Python dicts here: a request holds one to a few dozen customers, and per-row dict work costs
microseconds where a polars expression costs a fixed fraction of a millisecond.

Cold start: a customer the store does not know gets a row of nulls; the query tower maps the unknown id to its
out-of-vocabulary bucket and still reads whatever features the request sent (an age, preferred index groups).
A customer with no stored row, no history and no sent features has no signal at all (:func:`has_signal`): the
ranking transformer answers with recent popularity instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import polars as pl

from recsys.data.dataset import CUSTOMER_ID
from recsys.features.customer_history import LAST_ARTICLES
from recsys.features.customers import AGE, AGE_GROUP, MISSING_SUFFIX, age_group
from recsys.serving.requests import FeatureKind, Instance
from recsys.store.base import FeatureView
from recsys.training.retrieval_data import SHARES, VALUES, TowerFeatures

Row = dict[str, Any]


def feature_kinds(tower: TowerFeatures) -> dict[str, FeatureKind]:
    """The features a request may send: what the query tower reads about a customer (not the history ids)."""
    kinds: dict[str, FeatureKind] = {c: "categorical" for c in tower.customer_categorical}
    kinds |= {c: "numeric" for c in tower.customer_numeric}
    kinds |= {c: "list" for c in (*tower.customer_multi, *tower.affinities)}
    return kinds


def read_customers(view: FeatureView, customer_ids: Sequence[str | int]) -> list[Row]:
    """One online row per id, in order (nulls for a customer the store does not know)."""
    return view.get_feature_rows([{CUSTOMER_ID: c} for c in customer_ids], allow_missing=True)


def apply_features(rows: list[Row], instances: Sequence[Instance], kinds: Mapping[str, FeatureKind]) -> list[Row]:
    """Each row with its instance's sent features written over the stored values.

    A list sent for an affinity ``X`` becomes ``X_values`` with equal ``X_shares``; a number also clears its
    ``<name>_missing`` flag, and an ``age`` sets ``age_group`` unless the request sent one.
    """
    out = []
    for row, instance in zip(rows, instances, strict=True):
        if not instance.features:
            out.append(row)
            continue
        row = dict(row)
        for name, value in instance.features.items():
            if kinds.get(name) == "list" and name + VALUES in row:
                row[name + VALUES] = list(value)
                row[name + SHARES] = [1.0 / len(value)] * len(value)
                continue
            if name not in row:
                continue
            row[name] = value
            if kinds.get(name) == "numeric" and name + MISSING_SUFFIX in row:
                row[name + MISSING_SUFFIX] = 0
            if name == AGE and AGE_GROUP in row and AGE_GROUP not in instance.features:
                row[AGE_GROUP] = pl.select(age_group(pl.lit(value, pl.Float64))).item()
        out.append(row)
    return out


def has_signal(rows: Sequence[Row], instances: Sequence[Instance], attribute_columns: Sequence[str]) -> np.ndarray:
    """True where the query tower has something to go on: a stored customer, a history, or sent features."""
    attributes = [c for c in attribute_columns if c != CUSTOMER_ID]
    return np.array(
        [
            bool(i.features) or bool(row.get(LAST_ARTICLES)) or any(row.get(c) is not None for c in attributes)
            for row, i in zip(rows, instances, strict=True)
        ],
        dtype=bool,
    )


# -- the rows on the wire to the ranking transformer ----------------------------------------------------------


def rows_to_wire(rows: Sequence[Row]) -> list[Row]:
    """JSON-safe rows: times and dates as ISO strings (the same in-process and over HTTP)."""
    return [{k: v.isoformat() if isinstance(v, datetime | date) else v for k, v in row.items()} for row in rows]


def rows_from_wire(rows: Sequence[Row], schema: pl.Schema) -> pl.DataFrame:
    """The typed customer frame of :func:`rows_to_wire`'s rows (``schema``: the view's online schema)."""
    temporal = {name: dtype for name, dtype in schema.items() if isinstance(dtype, pl.Datetime | pl.Date)}
    if temporal:
        rows = [{**row, **{t: _parse_time(row.get(t), dtype) for t, dtype in temporal.items()}} for row in rows]
    return pl.from_dicts(rows, schema=schema)


def _parse_time(value: Any, dtype: pl.DataType) -> Any:
    if not isinstance(value, str):
        return value
    parsed = datetime.fromisoformat(value)
    return parsed.date() if isinstance(dtype, pl.Date) else parsed


def online_schema(view: FeatureView, key: str, id_kind: str) -> pl.Schema:
    """The dtypes of the view's online rows (one read of a key that does not exist)."""
    probe = 0 if id_kind == "int" else "\x00schema-probe"
    return view.get_feature_vectors([{key: probe}], allow_missing=True).schema
