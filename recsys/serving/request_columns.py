"""The ranker's input columns for one request, straight from the customers' rows and the catalogue's arrays.

:func:`~recsys.serving.request_features.request_features` builds the ranker's rows from polars frames. In the
ranking transformer the customers arrive as the query transformer's rows (dicts) and the articles are rows of the
in-memory catalogue: making frames of them (``rows_from_wire``, a gather) and columns of the features frame again
(``frame_to_columns``) cost as much as the features themselves. :class:`ServingFeatures` gives those very columns
without a frame:

* the article features are prepared once per catalogue snapshot (:func:`serving_features`): strings as object
  arrays, numbers as Float32, read by the same ``_prepared`` as ``request_features``;
* each customer feature is read once per customer from its row, as ``rows_from_wire`` and ``_prepared`` would
  type it, then repeated over its candidates;
* repurchase counts, category shares and day counts are ``request_features``' own functions.

Numbers are Float32 arrays with NaN for null, categories lists of strings: what ``frame_to_columns`` makes of the
features frame. Inputs it would not read exactly as the frame path does (a dtype or a value of another kind, a
null or repeated customer id) get None, and the caller takes the frame path.
``tests/unit/serving/test_request_columns.py`` holds the two equal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import polars as pl

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID
from recsys.features.common import MISSING, cutoff
from recsys.features.customer_history import LAST_ARTICLES, LAST_GAPS
from recsys.serving.request_features import (
    CandidateRows,
    _check_inputs,
    _Delegate,
    _Frame,
    _layout,
    _numbers,
    _prepared,
    repurchase_arrays,
    share_arrays,
    whole_days,
)
from recsys.serving.retrieve import QUERY
from recsys.training.ranking_features import (
    ARTICLE_PRICE,
    DAYS_SINCE,
    LAST_PURCHASE,
    LIST_SEPARATOR,
    PRICE_RATIO,
    REPURCHASE,
    REPURCHASE_DAYS,
    RETRIEVAL_RANK,
    RETRIEVAL_SCORE,
    SHARE,
    SHARES,
    VALUES,
    RankerSchema,
)

Columns = dict[str, np.ndarray | list[str]]
_MOMENTS = (pl.Datetime("us"), pl.Date())  # last_purchase types whose ISO strings parse to the frame's values
_EXACT = 2**53  # integers up to this size are the same as Float64


@dataclass(frozen=True)
class _Reader:
    """How one customer column's row values become the feature's values (the frame path's typing and cast)."""

    name: str
    kind: str  # "str", "list_str", "int_str" (an integer category), "number", "days", "date_days"
    low: int = 0  # the integers it takes: an integer column's bounds, those exact in Float64 for a Float64 one
    high: int = 0
    floats: bool = False  # a Float64 column: it takes floats too


@dataclass(frozen=True)
class ServingFeatures:
    """The ranker's article features on every catalogue row, and how to read its customer features from rows."""

    schema: RankerSchema
    ids: np.ndarray  # the catalogue's article ids (an object array of strings for string ids)
    articles: dict[str, np.ndarray]  # each article feature, prepared, row for row
    values: dict[str, np.ndarray]  # each affinity's column as strings (MISSING for null), row for row
    price: np.ndarray | None  # article_price as Float64, NaN for null
    customers: tuple[_Reader, ...]  # the customer features, in the schema's order
    avg_price: _Reader | None
    last_purchase: _Reader | None  # the days since it, for repurchase_days (None: the schema has no recency)

    def columns(
        self,
        rows: Sequence[Mapping[str, Any]],
        times: Sequence[datetime],
        query: np.ndarray,
        at: np.ndarray,
        score: np.ndarray,
        rank: np.ndarray,
    ) -> Columns | None:
        """The ranker's columns (``schema.features``) of the candidates: of customer ``rows[query]`` at its
        instance's time ``times[query]``, and catalogue row ``at``, with their retrieval score and rank. None
        where the rows hold what only the frame path reads."""
        customer_ids = [row.get(CUSTOMER_ID) for row in rows]
        if None in customer_ids or len(set(customer_ids)) < len(customer_ids):
            return None  # the frame path joins by id
        referenced = np.unique(query).tolist()
        height = len(rows)
        single = referenced[0] if len(referenced) == 1 else None
        cust = CandidateRows(query.astype(np.int64), height, False, single, None, referenced)
        out: Columns = {RETRIEVAL_SCORE: score.astype(np.float32), RETRIEVAL_RANK: rank.astype(np.float32)}
        try:
            for reader in self.customers:
                values = _read(reader, rows, referenced, times)
                if values is None:
                    return None
                out[reader.name] = _repeat(values, cust)
            for name, values in self.articles.items():
                out[name] = values[at].tolist() if values.dtype == object else values[at]
            if self.schema.repurchase:
                lists = [row.get(LAST_ARTICLES) for row in rows]
                recency = None
                if self.last_purchase is not None:
                    days = _read(self.last_purchase, rows, referenced, times)
                    if days is None:
                        return None
                    recency = ([row.get(LAST_GAPS) for row in rows], days)
                count, first, ago = repurchase_arrays(lists, height, cust, self.ids[at], recency)
                out[REPURCHASE[0]], out[REPURCHASE[1]] = count, first
                if ago is not None:
                    out[REPURCHASE_DAYS] = ago
            for col, values in self.values.items():
                lists = [[row.get(col + suffix) for row in rows] for suffix in (VALUES, SHARES)]
                shares, nulls = share_arrays(*lists, height, cust, values[at])
                out[col + SHARE] = np.where(nulls, np.float32(np.nan), shares)
        except _Delegate:
            return None
        if self.price is not None and self.avg_price is not None:
            avg = _read(self.avg_price, rows, referenced, times)
            if avg is None:
                return None
            with np.errstate(divide="ignore", invalid="ignore"):  # a Float64 division, then Float32: the frame's
                out[PRICE_RATIO] = (self.price[at] / avg[cust.at]).astype(np.float32)
        return {name: out[name] for name in self.schema.features}


def serving_features(rows: pl.DataFrame, schema: RankerSchema, customer_schema: pl.Schema) -> ServingFeatures | None:
    """The article side prepared over the catalogue ``rows`` (distinct ids) for customers of ``customer_schema``
    (the view's online dtypes); None where the frame path has to read them."""
    layout = _layout(schema)
    if not layout.sound or QUERY in layout.taken or ARTICLE_ID not in rows.columns:
        return None
    key = rows.get_column(ARTICLE_ID)
    if key.null_count() or key.n_unique() < key.len() or CUSTOMER_ID not in customer_schema:
        return None
    readers = [_reader(name, categorical, customer_schema) for name, categorical in layout.customer_features]
    avg_price = _reader("avg_price", False, customer_schema) if schema.price else None
    last_purchase = _reader(DAYS_SINCE, False, customer_schema) if schema.recency else None
    if None in readers or (schema.price and avg_price is None) or (schema.recency and last_purchase is None):
        return None
    if not _lists_read(schema, customer_schema, key.dtype):
        return None
    try:
        articles = _Frame.of(rows, ARTICLE_ID, layout.article_inputs, key.dtype)
        customers = _Frame.of(
            customer_schema.to_frame(), CUSTOMER_ID, layout.customer_inputs, customer_schema[CUSTOMER_ID]
        )
        _check_inputs(customers, articles, schema)
        prepared = {name: _prepared(articles, name, categorical) for name, categorical in layout.article_features}
        values = {a: prepared[a] if gathered else _prepared(articles, a, True) for a, gathered in layout.shares}
        price = _numbers(articles, ARTICLE_PRICE)[0][:-1] if schema.price else None
    except (_Delegate, pl.exceptions.PolarsError):
        return None
    return ServingFeatures(
        schema,
        key.to_numpy() if key.dtype.is_integer() else np.asarray(key.to_list(), dtype=object),
        {name: _array(col) for name, col in prepared.items()},
        {name: _array(col) for name, col in values.items()},
        price,
        tuple(r for r in readers if r is not None),
        avg_price,
        last_purchase,
    )


def _array(col: pl.Series) -> np.ndarray:
    """A prepared column as numpy. Strings become one Python object per distinct value: a request's hundred
    candidates then point at a few hundred strings that stay in the CPU's caches, where one object per catalogue
    row (polars' ``to_numpy``) scatters them over the heap (measured: the ranker's input and CatBoost took
    ~0.25 ms more per request)."""
    if col.dtype != pl.String:
        return col.to_numpy()
    vocabulary = np.array(col.unique().sort().to_list(), dtype=object)
    return vocabulary[col.rank("dense").to_numpy() - 1]


def _reader(name: str, categorical: bool, customer_schema: pl.Schema) -> _Reader | None:
    """How to read ``name`` from a customer row, or None for a dtype only the frame path reads."""
    if name == DAYS_SINCE:
        dtype = customer_schema.get(LAST_PURCHASE)
        return _Reader(name, "date_days" if dtype == pl.Date() else "days") if dtype in _MOMENTS else None
    dtype = customer_schema.get(name)
    if dtype is None:
        return None
    if dtype.is_integer():
        info = np.iinfo(np.dtype(str(dtype).lower()))
        low, high = max(int(info.min), -_EXACT), min(int(info.max), _EXACT)
        return _Reader(name, "int_str" if categorical else "number", low, high)
    if categorical:
        if dtype == pl.String:
            return _Reader(name, "str")
        return _Reader(name, "list_str") if dtype == pl.List(pl.String) else None
    # Float32 rows would round on the way in, and avg_price is read back as Float64: only Float64 here
    return _Reader(name, "number", -_EXACT, _EXACT, floats=True) if dtype == pl.Float64 else None


def _lists_read(schema: RankerSchema, customer_schema: pl.Schema, id_type: pl.DataType) -> bool:
    """Whether the history and affinity lists are of the types the shared functions read as the frame path does
    (their items' Python types are checked where they are read)."""
    if schema.repurchase:
        items = customer_schema.get(LAST_ARTICLES)
        if not isinstance(items, pl.List) or not (
            (id_type.is_integer() and items.inner.is_integer()) or (id_type == pl.String and items.inner == pl.String)
        ):
            return False
    if schema.recency:
        gaps = customer_schema.get(LAST_GAPS)
        if not isinstance(gaps, pl.List) or not gaps.inner.is_integer():
            return False
    return all(
        customer_schema.get(a + VALUES) == pl.List(pl.String) and customer_schema.get(a + SHARES) == pl.List(pl.Float64)
        for a in schema.affinities
    )


def _read(
    reader: _Reader, rows: Sequence[Mapping[str, Any]], referenced: list[int], times: Sequence[datetime]
) -> np.ndarray | None:
    """The feature's value of every customer row (those not ``referenced`` are left empty), typed as the frame
    path types it: strings (MISSING for null) or Float64 (NaN for null); None for a value of another kind."""
    kind = reader.kind
    text = kind in ("str", "list_str", "int_str")
    out = np.full(len(rows), MISSING, dtype=object) if text else np.full(len(rows), np.nan)
    column = LAST_PURCHASE if kind in ("days", "date_days") else reader.name
    for j in referenced:  # per customer
        value = rows[j].get(column)
        if value is None:
            continue
        if kind == "str":
            if type(value) is not str:
                return None
            out[j] = value
        elif kind == "list_str":  # the frame's sorted values joined, nulls left out
            if type(value) is not list or not set(map(type, value)) <= {str, type(None)}:
                return None
            out[j] = LIST_SEPARATOR.join(sorted(v for v in value if v is not None))
        elif kind in ("days", "date_days"):
            moment = _moment(value, kind == "date_days")
            if moment is None:
                return None
            out[j] = whole_days(cutoff(times[j]), moment)  # may raise _Delegate: the frame's Int32 cast fails
        elif type(value) is int and reader.low <= value <= reader.high:
            out[j] = str(value) if kind == "int_str" else value
        elif type(value) is float and reader.floats:
            out[j] = value
        else:
            return None
    return out


def _moment(value: Any, as_date: bool) -> datetime | date | None:
    """An ISO string as ``rows_from_wire`` parses it; None for anything else (a time zone, another type)."""
    if type(value) is not str:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        return None
    return parsed.date() if as_date else parsed


def _repeat(values: np.ndarray, cust: CandidateRows) -> np.ndarray | list[str]:
    """Each candidate's customer value: strings as a list, numbers as Float32."""
    if values.dtype == object:
        return [values[cust.single]] * len(cust.at) if cust.single is not None else values[cust.at].tolist()
    numbers = values.astype(np.float32)
    return np.full(len(cust.at), numbers[cust.single]) if cust.single is not None else numbers[cust.at]
