"""The ranker's features for one serving request: the training function's frame, without its query plan.

:func:`~recsys.training.ranking_features.candidate_features` builds the ranker's rows as one lazy polars plan
(joins, an explode, a group-by): the right tool for training's millions of rows, but at serving size (one to a
few customers x ~120 candidates) the plan's fixed cost is 2-4 ms, most of the ranking stage's latency budget.
:func:`request_features` returns the same frame from numpy and cheap eager calls, several times faster:

* each customer and article attribute is cast on its own small frame, then gathered to the candidates by row
  index (a customer or article that is not there gets a MISSING / null row);
* ``repurchase_*`` is an equality matrix between the candidates and their customer's last-N ids;
* ``<col>_share`` is a lookup in a customer x value table of shares;
* ``days_since_last_purchase`` and ``price_ratio`` are numpy arithmetic that mirrors the polars expressions.

Python loops run over columns and over customers (a request holds at most a few dozen), never over candidate
rows. No train/serve skew: ``tests/unit/serving/test_request_features.py`` holds the two functions equal,
frame for frame (dtypes, nulls and NaNs included), on hand-made, randomized and synthetic-preset inputs.
Inputs serving does not send (ids of another type than the candidates', null or duplicated ids, ragged
affinity lists, other timestamp types, clashing names) go to ``candidate_features`` itself, so that their
rows, and their errors, are its own.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple

import numpy as np
import polars as pl
import pyarrow.compute as pc

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID
from recsys.features.common import MISSING, cutoff
from recsys.features.customer_history import LAST_ARTICLES
from recsys.training.ranking_features import (
    ARTICLE_PRICE,
    DAYS_SINCE,
    LAST_PURCHASE,
    LIST_SEPARATOR,
    PRICE_RATIO,
    REPURCHASE,
    RETRIEVAL,
    SHARE,
    SHARES,
    VALUES,
    RankerSchema,
    candidate_features,
)

_DAY_US = 86_400_000_000
_INT32_MAX = np.iinfo(np.int32).max
_TIMES = (pl.Datetime("us"), pl.Datetime("ms"), pl.Date())  # last_purchase types whose day arithmetic is exact
_FLOATS = (pl.Float64, pl.Float32)
_NO_HISTORY = -2  # a history cell without an id: never equal to a candidate's code (>= -1)


class _Delegate(Exception):
    """The inputs are outside the fast path: ``candidate_features`` decides (its frame or its error)."""


@dataclass(frozen=True)
class _Layout:
    """What a schema asks of the inputs, worked out once per schema."""

    features: tuple[str, ...]  # schema.features
    customer_inputs: tuple[str, ...]  # schema.customer_columns()
    article_inputs: tuple[str, ...]  # schema.article_columns()
    customer_features: tuple[str, ...]  # gathered from customers, in output order
    article_features: tuple[str, ...]  # gathered from articles (with article_price), in output order
    categorical: frozenset[str]
    taken: frozenset[str]  # candidate columns that candidate_features refuses or would confuse with its own
    sound: bool  # no name used twice (candidate_features' joins would rename one)


@functools.lru_cache(maxsize=64)
def _layout(schema: RankerSchema) -> _Layout:
    features = schema.features
    customer_inputs, article_inputs = tuple(schema.customer_columns()), tuple(schema.article_columns())
    inputs = (*customer_inputs, *article_inputs)
    helpers = {"_v", "_pos", *("_has" + a for a in schema.affinities)}  # candidate_features' own columns
    return _Layout(
        features=features,
        customer_inputs=customer_inputs,
        article_inputs=article_inputs,
        customer_features=(*schema.customer_categorical, *schema.customer_numeric, *schema.history),
        article_features=(
            *schema.article_categorical,
            *schema.article_numeric,
            *schema.popularity,
            *((ARTICLE_PRICE,) if schema.price else ()),
        ),
        categorical=frozenset(schema.categorical),
        taken=frozenset({*features, *inputs, *helpers} - {*RETRIEVAL, CUSTOMER_ID, ARTICLE_ID}),
        sound=len(set(features)) == len(features)
        and len(set(inputs)) == len(inputs)
        and not {CUSTOMER_ID, ARTICLE_ID} & set(inputs),
    )


def request_features(
    candidates: pl.DataFrame,
    customers: pl.DataFrame,
    articles: pl.DataFrame,
    as_of: datetime | date,
    schema: RankerSchema,
) -> pl.DataFrame:
    """Exactly ``candidate_features(candidates, customers, articles, as_of, schema)``, fast at request size.

    Same inputs, same output (the candidate columns but the retrieval ones, then ``schema.features``; one row
    per candidate, in order) and the same errors. Meant for one request's frames: ``customers`` holding its
    customers' rows and ``articles`` its candidates' rows (more rows are fine: they only cost time).
    """
    try:
        return _request_features(candidates, customers, articles, as_of, schema)
    except _Delegate:
        return candidate_features(candidates, customers, articles, as_of, schema)


def _request_features(
    candidates: pl.DataFrame,
    customers: pl.DataFrame,
    articles: pl.DataFrame,
    as_of: datetime | date,
    schema: RankerSchema,
) -> pl.DataFrame:
    layout = _layout(schema)
    given = dict(zip(candidates.columns, candidates.get_columns(), strict=True))
    if not layout.sound or not given.keys() >= {CUSTOMER_ID, ARTICLE_ID, *RETRIEVAL} or given.keys() & layout.taken:
        raise _Delegate  # its ValueError, or columns its joins would rename
    cand_customers, cand_articles = given[CUSTOMER_ID], given[ARTICLE_ID]
    cust_frame = _Frame.of(customers, CUSTOMER_ID, layout.customer_inputs, cand_customers.dtype)
    art_frame = _Frame.of(articles, ARTICLE_ID, layout.article_inputs, cand_articles.dtype)
    _check_types(cust_frame, art_frame, schema, cand_articles.dtype)

    cust = _customer_rows(cust_frame.columns[CUSTOMER_ID], cand_customers)
    art = _article_rows(art_frame.columns[ARTICLE_ID], cand_articles)
    out = {c: col for c, col in given.items() if c not in RETRIEVAL}
    for name in RETRIEVAL:
        out[name] = given[name].cast(pl.Float32)
    try:
        for f in layout.customer_features:
            categorical = f in layout.categorical
            col = _days_since(cust_frame, as_of) if f == DAYS_SINCE else _prepared(cust_frame, f, categorical)
            out[f] = _take(col, cust, categorical)
        for f in layout.article_features:
            categorical = f in layout.categorical
            out[f] = _take(_prepared(art_frame, f, categorical), art, categorical)
        if schema.repurchase:
            out |= _repurchase(cust_frame, cust, cand_articles)
        for col in schema.affinities:
            values = out[col] if col in layout.categorical else _take(_prepared(art_frame, col, True), art, True)
            out[col + SHARE] = _share(cust_frame, col, cust, values)
    except pl.exceptions.PolarsError as exc:  # a cast that fails on some row: candidate_features' error, if any
        raise _Delegate from exc
    if schema.price:
        out[PRICE_RATIO] = _price_ratio(cust_frame, art_frame, cust.at, art.at)
    return pl.DataFrame([out[c] for c in (*(c for c in given if c not in RETRIEVAL), *layout.features)])


# -- inputs ---------------------------------------------------------------------------------------------------


class _Frame(NamedTuple):
    """The key and input columns of ``customers`` or ``articles``, read once (each polars accessor costs µs;
    ``DataFrame.schema`` tens of them with list columns, so dtypes are read per column)."""

    columns: dict[str, pl.Series]  # the ones the frame has: an empty frame may lack inputs (they are nulls)
    names: frozenset[str]  # every column of the frame
    height: int

    @classmethod
    def of(cls, frame: pl.DataFrame, key: str, inputs: tuple[str, ...], key_type: pl.DataType) -> _Frame:
        names = frame.columns
        wanted = {key, *inputs}
        columns = {c: col for c, col in zip(names, frame.get_columns(), strict=True) if c in wanted}
        if key not in columns or columns[key].dtype != key_type:
            raise _Delegate  # candidate_features casts the key (or fails): its business
        if len(columns) < len(wanted) and frame.height:
            raise _Delegate  # its "lacks the ranker's input columns" error
        return cls(columns, frozenset(names), frame.height)

    def dtype(self, name: str) -> pl.DataType | None:
        col = self.columns.get(name)
        return None if col is None else col.dtype


def _check_types(customers: _Frame, articles: _Frame, schema: RankerSchema, id_type: pl.DataType) -> None:
    """Delegate inputs whose types or names the fast path does not read as candidate_features does (the stores
    send none of them)."""
    if not (id_type.is_integer() or isinstance(id_type, pl.String)):
        raise _Delegate
    history = customers.dtype(LAST_ARTICLES) if schema.repurchase else None
    if history is not None and history != pl.List(id_type):
        raise _Delegate
    last = customers.dtype(LAST_PURCHASE) if DAYS_SINCE in schema.history else None
    if last is not None and last not in _TIMES:
        raise _Delegate  # ns, or a time zone (an error there)
    for col in schema.affinities:
        values, shares, value = customers.dtype(col + VALUES), customers.dtype(col + SHARES), articles.dtype(col)
        if (
            (values is not None and not (isinstance(values, pl.List) and isinstance(values.inner, pl.String)))
            or (shares is not None and not (isinstance(shares, pl.List) and isinstance(shares.inner, _FLOATS)))
            or (value is not None and not isinstance(value, pl.String))
        ):
            raise _Delegate
    # candidate_features tells multi-categoricals by its merged schemas (articles last): a customer category
    # named like an articles column, or an article category only the customers frame has, reads another way
    if any(f in articles.names for f in schema.customer_categorical) or any(
        f not in articles.names and f in customers.names for f in schema.article_categorical
    ):
        raise _Delegate


# -- candidate rows -------------------------------------------------------------------------------------------


class _Rows(NamedTuple):
    """Each candidate's row in a frame of ``height`` rows (``height``: it has none, a MISSING / null row)."""

    at: np.ndarray  # int64
    height: int
    absent: bool  # some candidate has no row
    single: int | None  # the row of every candidate, when they share one (a one-customer request)
    index: pl.Series | None  # ``at`` as UInt32: Series[index] is polars' direct gather (no expression)

    @property
    def referenced(self) -> list[int]:
        """The frame's rows that candidates have, sorted."""
        rows = [self.single] if self.single is not None else np.unique(self.at).tolist()
        return [r for r in rows if r < self.height]


def _rows(at: np.ndarray, height: int, single: int | None = None) -> _Rows:
    absent = bool(len(at)) and (single == height if single is not None else bool((at == height).any()))
    index = pl.Series(at.astype(np.uint32)) if single is None else None
    return _Rows(at, height, absent, single, index)


def _positions(keys: pl.Series, ids: np.ndarray) -> np.ndarray:
    """The row of each id in ``keys`` (``len(keys)``: not there), by a binary search in the sorted keys."""
    height = len(keys)
    if not height or not len(ids):
        return np.full(len(ids), height, dtype=np.int64)
    k = keys.to_numpy()
    order = k.argsort(kind="stable")
    ordered = k[order]
    at = ordered.searchsorted(ids)
    at[at == height] = 0
    hit = ordered[at] == ids
    twice = ordered[1:] == ordered[:-1]
    if twice.any() and np.isin(ids[hit], ordered[1:][twice]).any():
        raise _Delegate  # a candidate's id is there twice: candidate_features' "one row per id" error
    return np.where(hit, order[at], height)


def _customer_rows(keys: pl.Series, ids: pl.Series) -> _Rows:
    """The candidates' customer rows. A request's candidates come customer by customer: the ids are looked up
    once per run of equal ids."""
    if ids.null_count() or keys.null_count():
        raise _Delegate  # a null id joins nothing: not a serving input
    values = ids.to_numpy()
    if not len(values):
        return _rows(np.zeros(0, dtype=np.int64), len(keys))
    starts = np.flatnonzero(values[1:] != values[:-1]) + 1
    if not len(starts):  # one customer
        row = int(_positions(keys, values[:1])[0])
        return _rows(np.full(len(values), row, dtype=np.int64), len(keys), single=row)
    starts = np.concatenate(([0], starts))
    return _rows(np.repeat(_positions(keys, values[starts]), np.diff(starts, append=len(values))), len(keys))


def _article_rows(keys: pl.Series, ids: pl.Series) -> _Rows:
    if ids.null_count() or keys.null_count():
        raise _Delegate
    return _rows(_positions(keys, ids.to_numpy()), len(keys))


def _take(col: pl.Series, rows: _Rows, categorical: bool) -> pl.Series:
    """A prepared column at the candidates' rows; MISSING (categories) or null (numbers) where there is none."""
    if rows.absent:
        col = pl.concat([col, pl.Series(col.name, [MISSING if categorical else None], dtype=col.dtype)])
    if rows.single is not None:
        return col.new_from_index(rows.single, len(rows.at))
    return col[rows.index]


# -- customer and article attributes --------------------------------------------------------------------------


def _prepared(frame: _Frame, name: str, categorical: bool) -> pl.Series:
    """A feature column on the frame's own rows as the output holds it: String without nulls, or Float32."""
    col = frame.columns.get(name)
    if col is None:  # an empty frame without the column
        return pl.Series(name, [], dtype=pl.String if categorical else pl.Float32)
    if not categorical:
        return col.cast(pl.Float32)
    dtype = col.dtype
    if isinstance(dtype, pl.List):  # a multi-categorical: its values sorted and joined
        col = col.cast(pl.List(pl.String)).list.sort().list.join(LIST_SEPARATOR)
    elif not isinstance(dtype, pl.String):
        if dtype.is_nested():
            raise _Delegate
        col = col.cast(pl.String)
    if not col.null_count():
        return col
    # pyarrow's fill is a fraction of the cost of polars' eager one at this size
    return pl.Series(name, pc.fill_null(col.to_arrow(), MISSING), dtype=pl.String)


def _days_since(customers: _Frame, as_of: datetime | date) -> pl.Series:
    """``days_between(cutoff(as_of), last_purchase)`` per customer: whole days truncated toward zero, as polars'
    ``total_days`` (exact in microseconds for the Datetime us / ms and Date it is given)."""
    col = customers.columns.get(LAST_PURCHASE)
    if col is None:
        return pl.Series(DAYS_SINCE, [], dtype=pl.Float32)
    cut = cutoff(as_of)
    days: list[float | None] = []
    for moment in col.to_list():  # one per customer
        if moment is None:
            days.append(None)
            continue
        if not isinstance(moment, datetime):
            moment = datetime(moment.year, moment.month, moment.day)
        delta = cut - moment
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        whole = abs(micros) // _DAY_US
        if whole > _INT32_MAX:
            raise _Delegate  # candidate_features' Int32 cast fails
        days.append(float(whole if micros >= 0 else -whole))
    return pl.Series(DAYS_SINCE, days, dtype=pl.Float32)


# -- cross features -------------------------------------------------------------------------------------------


def _repurchase(customers: _Frame, cust: _Rows, cand_articles: pl.Series) -> dict[str, pl.Series]:
    """Times each candidate is in its customer's last-N ids, and the first such position (null: never)."""
    col = customers.columns.get(LAST_ARTICLES)
    lists = col.to_list() if col is not None else []
    histories = {j: lists[j] for j in cust.referenced if lists[j]}
    known = sorted({item for row in histories.values() for item in row if item is not None})
    if not known:  # nobody has bought anything
        never = np.zeros(len(cand_articles), dtype=np.float32)
        return {REPURCHASE[0]: pl.Series(REPURCHASE[0], never), REPURCHASE[1]: _floats(REPURCHASE[1], never, True)}
    # ids as codes: their rank among the ids bought (strings are compared once, by the binary search)
    ids = cand_articles.to_numpy()
    vocabulary = np.array(known, dtype=ids.dtype)
    at = vocabulary.searchsorted(ids)
    at[at == len(known)] = 0
    codes = np.where(vocabulary[at] == ids, at, -1)
    rank = {item: i for i, item in enumerate(known)}
    history = np.full((customers.height + 1, max(map(len, histories.values()))), _NO_HISTORY, dtype=np.int64)
    for j, row in histories.items():  # per customer; the last row stays empty: a customer not there
        history[j, : len(row)] = [_NO_HISTORY if item is None else rank[item] for item in row]
    equal = history[cust.at] == codes[:, None]
    return {
        REPURCHASE[0]: pl.Series(REPURCHASE[0], equal.sum(axis=1).astype(np.float32)),
        REPURCHASE[1]: _floats(REPURCHASE[1], equal.argmax(axis=1).astype(np.float32), ~equal.any(axis=1)),
    }


def _share(customers: _Frame, col: str, cust: _Rows, values: pl.Series) -> pl.Series:
    """The customer's share of the candidate's value (``values``, MISSING for null): 0 if never bought, null
    without a list."""
    value_col, share_col = customers.columns.get(col + VALUES), customers.columns.get(col + SHARES)
    value_lists = value_col.to_list() if value_col is not None else []
    share_lists = share_col.to_list() if share_col is not None else []
    has = np.zeros(customers.height + 1, dtype=bool)  # the last row: a customer not there
    entries: list[tuple[int, str, float]] = []
    for j in cust.referenced:
        vals, shares = value_lists[j] if value_lists else None, share_lists[j] if share_lists else None
        if vals is None and shares is None:
            continue
        if vals is None or shares is None or len(vals) != len(shares):
            raise _Delegate  # candidate_features' explode fails on ragged lists
        has[j] = True
        # a null value never matches in the join; a matched null share is filled with 0
        entries += [(j, v, 0.0 if s is None else s) for v, s in zip(vals, shares, strict=True) if v is not None]
    nulls = ~has[cust.at]
    known = sorted({v for _, v, _ in entries})
    if not known:
        return _floats(col + SHARE, np.zeros(len(cust.at), dtype=np.float32), nulls)
    rank = {v: i for i, v in enumerate(known)}
    rows, columns = [j for j, _, _ in entries], [rank[v] for _, v, _ in entries]
    table = np.zeros((customers.height + 1, len(known) + 1))  # the last column: a value nobody bought
    table[rows, columns] = [s for _, _, s in entries]
    vocabulary = np.array(known, dtype=object)
    candidate = values.to_numpy()
    at = vocabulary.searchsorted(candidate)
    at[at == len(known)] = 0
    codes = np.where(vocabulary[at] == candidate, at, len(known))
    if len(set(zip(rows, columns, strict=True))) < len(rows):
        counts = np.zeros(table.shape, dtype=np.int64)
        np.add.at(counts, (rows, columns), 1)
        if (counts[cust.at, codes] > 1).any():
            raise _Delegate  # a value twice in one list: candidate_features' "one row per id" error
    return _floats(col + SHARE, table[cust.at, codes].astype(np.float32), nulls)


def _price_ratio(customers: _Frame, articles: _Frame, cust: np.ndarray, art: np.ndarray) -> pl.Series:
    """``article_price / avg_price``: a Float64 division, as the expression's, then Float32."""
    price, price_null = _numbers(articles, ARTICLE_PRICE)
    avg, avg_null = _numbers(customers, "avg_price")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (price[art] / avg[cust]).astype(np.float32)
    return _floats(PRICE_RATIO, ratio, price_null[art] | avg_null[cust])


def _numbers(frame: _Frame, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A column as Float64 values and null mask (NaN and null kept apart), with a null row appended."""
    col = frame.columns.get(name)
    if col is None:
        return np.full(frame.height + 1, np.nan), np.ones(frame.height + 1, dtype=bool)
    dtype = col.dtype
    if not dtype.is_numeric() or isinstance(dtype, pl.Decimal):
        raise _Delegate  # a cast whose rounding the division would have to mirror
    col = col.cast(pl.Float64)
    values = np.append(col.to_numpy(), np.nan)  # nulls become NaN
    nulls = col.null_count()
    if not nulls:
        missing = np.zeros(len(values), dtype=bool)
        missing[-1] = True
    elif np.count_nonzero(np.isnan(values)) == nulls + 1:  # every NaN is a null: no NaN to tell apart
        missing = np.isnan(values)
    else:
        missing = np.append(col.is_null().to_numpy(), True)
    return values, missing


def _floats(name: str, values: np.ndarray, nulls: np.ndarray | bool) -> pl.Series:
    """Float32 ``values`` with nulls where ``nulls`` (NaN elsewhere stays NaN)."""
    if nulls is True:
        return pl.Series(name, [None] * len(values), dtype=pl.Float32)
    if nulls is False or not nulls.any():
        return pl.Series(name, values)
    if not np.isnan(values[~nulls]).any():  # the usual case: NaN can mark the nulls
        return pl.Series(name, np.where(nulls, np.float32(np.nan), values), nan_to_null=True)
    return pl.Series(name, values).scatter(np.flatnonzero(nulls), None)
