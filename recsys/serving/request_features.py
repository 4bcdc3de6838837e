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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

import numpy as np
import polars as pl
import pyarrow.compute as pc

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID
from recsys.features.common import MISSING, cutoff
from recsys.features.customer_history import LAST_ARTICLES, LAST_GAPS
from recsys.training.ranking_features import (
    ARTICLE_PRICE,
    DAYS_SINCE,
    LAST_PURCHASE,
    LIST_SEPARATOR,
    PRICE_RATIO,
    REPURCHASE,
    REPURCHASE_DAYS,
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


class _Delegate(Exception):
    """The inputs are outside the fast path: ``candidate_features`` decides (its frame or its error)."""


@dataclass(frozen=True)
class _Layout:
    """What a schema asks of the inputs, worked out once per schema."""

    features: tuple[str, ...]  # schema.features
    customer_inputs: frozenset[str]  # schema.customer_columns() and the key
    article_inputs: frozenset[str]  # schema.article_columns() and the key
    customer_features: tuple[tuple[str, bool], ...]  # (name, categorical) gathered from customers, in order
    article_features: tuple[tuple[str, bool], ...]  # the same from articles (with article_price)
    shares: tuple[tuple[str, bool], ...]  # (affinity column, whether it is also an article categorical)
    taken: frozenset[str]  # candidate columns that candidate_features refuses or would confuse with its own
    sound: bool  # no name used twice (candidate_features' joins would rename one)


@functools.lru_cache(maxsize=64)
def _layout(schema: RankerSchema) -> _Layout:
    features = schema.features
    customer_inputs, article_inputs = tuple(schema.customer_columns()), tuple(schema.article_columns())
    inputs = (*customer_inputs, *article_inputs)
    categorical = set(schema.categorical)
    helpers = {"_v", "_pos", "_gap", *("_has" + a for a in schema.affinities)}  # candidate_features' own columns
    article_features = (*schema.article_categorical, *schema.article_numeric, *schema.popularity)
    return _Layout(
        features=features,
        customer_inputs=frozenset({CUSTOMER_ID, *customer_inputs}),
        article_inputs=frozenset({ARTICLE_ID, *article_inputs}),
        customer_features=tuple(
            (f, f in categorical) for f in (*schema.customer_categorical, *schema.customer_numeric, *schema.history)
        ),
        article_features=tuple((f, f in categorical) for f in article_features)
        + (((ARTICLE_PRICE, False),) if schema.price else ()),
        shares=tuple((a, a in schema.article_categorical) for a in schema.affinities),
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
    _check_inputs(cust_frame, art_frame, schema)
    cust = _customer_rows(cust_frame.columns[CUSTOMER_ID], cand_customers)
    art = _article_rows(art_frame.columns[ARTICLE_ID], cand_articles)

    out = {c: col for c, col in given.items() if c not in RETRIEVAL}
    for name in RETRIEVAL:
        out[name] = given[name].cast(pl.Float32)
    try:
        since = _days_since(cust_frame, as_of)  # per customer: days_since_last_purchase and repurchase_days read it
        for f, categorical in layout.customer_features:
            col = since if f == DAYS_SINCE else _prepared(cust_frame, f, categorical)
            out[f] = _take(col, cust, categorical)
        for f, categorical in layout.article_features:
            out[f] = _take(_prepared(art_frame, f, categorical), art, categorical)
        if schema.repurchase:
            lists = _lists(cust_frame, LAST_ARTICLES)
            recency = None
            if schema.recency:
                recency = (_lists(cust_frame, LAST_GAPS), since.to_numpy())
            count, first, ago = repurchase_arrays(lists, cust_frame.height, cust, cand_articles.to_numpy(), recency)
            out[REPURCHASE[0]] = pl.Series(REPURCHASE[0], count)
            out[REPURCHASE[1]] = pl.Series(REPURCHASE[1], first, nan_to_null=True)  # never NaN otherwise
            if ago is not None:
                out[REPURCHASE_DAYS] = pl.Series(REPURCHASE_DAYS, ago, nan_to_null=True)
        for col, gathered in layout.shares:
            values = out[col] if gathered else _take(_prepared(art_frame, col, True), art, True)
            lists = [
                cust_frame.columns[c].to_list() if c in cust_frame.columns else None
                for c in (col + VALUES, col + SHARES)
            ]
            out[col + SHARE] = _floats(col + SHARE, *share_arrays(*lists, cust_frame.height, cust, values.to_numpy()))
    except pl.exceptions.PolarsError as exc:  # a cast that fails on some row: candidate_features' error, if any
        raise _Delegate from exc
    if schema.price:
        out[PRICE_RATIO] = _price_ratio(cust_frame, art_frame, cust, art)
    columns = [out[c] for c in (*(c for c in given if c not in RETRIEVAL), *layout.features)]
    return columns[0].to_frame().hstack(columns[1:])  # hstack: a fraction of DataFrame(columns)'s checks


# -- inputs ---------------------------------------------------------------------------------------------------


def _lists(frame: _Frame, name: str) -> list[Any]:
    """A list column's rows as Python lists (an empty frame may lack it: no rows)."""
    return frame.columns[name].to_list() if name in frame.columns else []


class _Frame(NamedTuple):
    """The key and input columns of ``customers`` or ``articles``, read once (each polars accessor costs µs;
    ``DataFrame.schema`` tens of them with list columns, so dtypes are read per column)."""

    columns: dict[str, pl.Series]  # the ones the frame has: an empty frame may lack inputs (they are nulls)
    names: frozenset[str]  # every column of the frame
    height: int

    @classmethod
    def of(cls, frame: pl.DataFrame, key: str, wanted: frozenset[str], key_type: pl.DataType) -> _Frame:
        names = frame.columns
        columns = {c: col for c, col in zip(names, frame.get_columns(), strict=True) if c in wanted}
        if key not in columns or columns[key].dtype != key_type:
            raise _Delegate  # candidate_features casts the key (or fails): its business
        if not (key_type.is_integer() or isinstance(key_type, pl.String)):
            raise _Delegate
        if len(columns) < len(wanted) and frame.height:
            raise _Delegate  # its "lacks the ranker's input columns" error
        return cls(columns, frozenset(names), frame.height)


def _check_inputs(customers: _Frame, articles: _Frame, schema: RankerSchema) -> None:
    """Delegate inputs whose types or names the fast path does not read as candidate_features does (the stores
    send none of them). The items of list columns are checked where they are read, as Python values."""
    last = customers.columns.get(LAST_PURCHASE) if DAYS_SINCE in schema.history or schema.recency else None
    if last is not None and last.dtype not in _TIMES:
        raise _Delegate  # ns, or a time zone (an error there)
    if any(a in articles.columns and isinstance(articles.columns[a].dtype, pl.List) for a in schema.affinities):
        raise _Delegate  # its cast of a list to String fails
    # candidate_features tells multi-categoricals by its merged schemas (articles last): a customer category
    # named like an articles column, or an article category only the customers frame has, reads another way
    if any(f in articles.names for f in schema.customer_categorical) or any(
        f not in articles.names and f in customers.names for f in schema.article_categorical
    ):
        raise _Delegate


# -- candidate rows -------------------------------------------------------------------------------------------


class CandidateRows(NamedTuple):
    """Each candidate's row in a frame; ``height`` (one past its rows) where it has none."""

    at: np.ndarray  # int64, one per candidate
    height: int
    absent: bool  # some candidate has no row: it gets a MISSING / null one
    single: int | None  # the row of every candidate, when they share one (a one-customer request)
    index: pl.Series | None  # ``at`` as UInt32 (Series[index] is polars' direct gather); None: rows are in order
    referenced: list[int]  # the frame's rows that candidates have (customers only)


def _customer_rows(keys: pl.Series, ids: pl.Series) -> CandidateRows:
    """The candidates' customer rows. A request's candidates come customer by customer: each run of equal ids
    is looked up once, in a dictionary of the (few) customers' rows."""
    if ids.null_count() or keys.null_count():
        raise _Delegate  # a null id joins nothing: not a serving input
    height = len(keys)
    row_of: dict[Any, int] = {}
    for row, key in enumerate(keys.to_list()):  # per customer
        if row_of.setdefault(key, row) != row:
            row_of[key] = -1  # twice: candidate_features' "one row per id" error if a candidate has it
    values = ids.to_numpy()
    if not len(values):
        return CandidateRows(np.zeros(0, dtype=np.int64), height, False, None, pl.Series([], dtype=pl.UInt32), [])
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    rows = [row_of.get(key, height) for key in values[starts].tolist()]  # per run
    if -1 in rows:
        raise _Delegate
    referenced = sorted(set(rows) - {height})
    if len(rows) == 1:
        return CandidateRows(np.full(len(values), rows[0]), height, rows[0] == height, rows[0], None, referenced)
    at = np.repeat(np.array(rows, dtype=np.int64), np.diff(starts, append=len(values)))
    return CandidateRows(at, height, height in rows, None, pl.Series(at.astype(np.uint32)), referenced)


def _article_rows(keys: pl.Series, ids: pl.Series) -> CandidateRows:
    """The candidates' article rows: a binary search in the sorted keys for integer ids, pyarrow's hash lookup
    for strings."""
    if ids.null_count() or keys.null_count():
        raise _Delegate
    height, n = len(keys), len(ids)
    if not height or not n:
        at = np.full(n, height, dtype=np.int64)
    elif ids.dtype.is_integer():
        k, wanted = keys.to_numpy(), ids.to_numpy()
        order = k.argsort(kind="stable")
        ordered = k[order]
        if (ordered[1:] == ordered[:-1]).any():
            raise _Delegate  # an id twice: candidate_features' "one row per id" error if a candidate has it
        found = ordered.searchsorted(wanted)
        at = np.where(ordered.take(found, mode="clip") == wanted, order.take(found, mode="clip"), height)
    else:
        arrow = keys.to_arrow()
        if pc.count_distinct(arrow).as_py() < height:
            raise _Delegate
        found = pc.index_in(ids.to_arrow(), value_set=arrow).to_numpy(zero_copy_only=False)  # not there: NaN
        at = np.where(found == found, found, height).astype(np.int64)
    same = n == height and bool((at == np.arange(n)).all())  # the catalogue's rows of the candidates, in order
    index = None if same else pl.Series(at.astype(np.uint32))
    return CandidateRows(at, height, bool((at == height).any()), None, index, [])


def _take(col: pl.Series, rows: CandidateRows, categorical: bool) -> pl.Series:
    """A prepared column at the candidates' rows; MISSING (categories) or null (numbers) where there is none."""
    if rows.absent:
        col = pl.concat([col, pl.Series(col.name, [MISSING if categorical else None], dtype=col.dtype)])
    if rows.single is not None:
        return col.new_from_index(rows.single, len(rows.at))
    return col if rows.index is None else col[rows.index]


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
    return pl.Series(DAYS_SINCE, [whole_days(cut, moment) for moment in col.to_list()], dtype=pl.Float32)


def whole_days(cut: datetime, moment: datetime | date | None) -> float | None:
    """Whole days from ``moment`` to ``cut``, truncated toward zero (None for None)."""
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    delta = cut - moment
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    whole = abs(micros) // _DAY_US
    if whole > _INT32_MAX:
        raise _Delegate  # candidate_features' Int32 cast fails
    return float(whole if micros >= 0 else -whole)


# -- cross features -------------------------------------------------------------------------------------------


def repurchase_arrays(
    lists: Sequence[Any],
    height: int,
    cust: CandidateRows,
    ids: np.ndarray,
    recency: tuple[Sequence[Any], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Times each candidate (``ids``: integers, or strings in an object array) is in its customer's last-N ids
    (``lists``: per customer row, a list or None), and the first such position (NaN: never), as Float32.

    With ``recency`` (per customer row, the ``last_article_gaps`` list or None, and the days since the last
    purchase, NaN for null): also the days since the candidate's latest purchase among them (NaN: never), the
    customer's days plus the smallest gap at the candidate's places; else None."""
    gaps = _gap_lists(lists, *recency) if recency is not None else None
    histories = {j: lists[j] for j in cust.referenced if lists[j]}
    known = {item for row in histories.values() for item in row} - {None}
    kind = str if ids.dtype == object else int
    if not set(map(type, known)) <= {kind}:
        raise _Delegate  # ids of another type than the candidates': candidate_features casts them
    n = len(ids)
    if not known or not n:  # nobody has bought anything
        never = np.full(n, np.nan, dtype=np.float32)
        return np.zeros(n, dtype=np.float32), never, None if gaps is None else never.copy()
    # a customer x position matrix of ids, compared with every candidate's id; cells without an id (a null,
    # the end of a shorter list, a customer without history or not there) hold an id no candidate has
    if kind is int:
        smallest, largest = _bounds(ids.dtype)
        low, high = int(ids.min()), int(ids.max())
        if (low == smallest and high == largest) or min(known) < smallest or max(known) > largest:
            raise _Delegate  # no free id, or one the candidates' type cannot hold (candidate_features' cast fails)
        pad = low - 1 if low > smallest else high + 1
    else:  # strings: their codes
        distinct = sorted(known)
        code = dict(zip(distinct, range(len(distinct)), strict=True))
        ids, pad = _codes(ids, distinct), -1
        histories = {j: [None if item is None else code[item] for item in row] for j, row in histories.items()}
    history = np.full((height + 1, max(map(len, histories.values()))), pad, dtype=ids.dtype)
    for j, row in histories.items():  # per customer
        history[j, : len(row)] = [pad if item is None else item for item in row] if None in row else row
    # one customer: its row against every candidate (broadcast), no gather
    rows = cust.at if cust.single is None else cust.single
    equal = history[rows] == ids[:, None]
    count = np.count_nonzero(equal, axis=1)
    first = np.where(count > 0, equal.argmax(axis=1), np.nan).astype(np.float32)
    if gaps is None:
        return count.astype(np.float32), first, None
    days, table = gaps
    width = history.shape[1]
    padded = np.full((height + 1, width), np.nan)
    for j in histories:  # per customer
        padded[j, : len(table[j])] = table[j]
    # the smallest gap where the candidate is (nulls skipped, as polars' min skips them); inf: nowhere
    smallest = np.fmin.reduce(np.where(equal, padded[rows], np.nan), axis=1, initial=np.inf)
    ago = np.where(np.isinf(smallest), np.nan, days[rows] + smallest)
    return count.astype(np.float32), first, ago.astype(np.float32)


def _gap_lists(lists: Sequence[Any], gap_lists: Sequence[Any], days: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """The days since the last purchase (one more row: NaN, a customer not there) and, per customer row, its gaps
    as floats (NaN for null). Lists that are not one gap per id, or gaps that are not Int32 integers, go to
    candidate_features, whose explode and cast decide."""
    table: list[Any] = []
    for j, ids in enumerate(lists):  # per customer
        row = gap_lists[j] if j < len(gap_lists) else None
        if len(ids or ()) != len(row or ()):
            raise _Delegate
        if row and (
            not set(map(type, row)) <= {int, type(None)} or any(g is not None and abs(g) > _INT32_MAX for g in row)
        ):
            raise _Delegate
        table.append([np.nan if g is None else g for g in row] if row else [])
    return np.append(np.asarray(days, dtype=np.float64), np.nan), table


@functools.lru_cache(maxsize=16)
def _bounds(dtype: np.dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def share_arrays(
    value_lists: Sequence[Any] | None,
    share_lists: Sequence[Any] | None,
    height: int,
    cust: CandidateRows,
    values: np.ndarray,
) -> tuple[np.ndarray, np.ndarray | bool]:
    """The customer's share of the candidate's value (``values``: strings, MISSING for null), as Float32: 0 if
    never bought; and where it is null (no list): a mask, or one flag for all."""
    has = np.zeros(height + 1, dtype=bool)  # the last row: a customer not there
    rows: list[int] = []
    found: list[str] = []
    weights: list[float] = []
    for j in cust.referenced:  # per customer
        vals = value_lists[j] if value_lists is not None else None
        shares = share_lists[j] if share_lists is not None else None
        if vals is None and shares is None:
            continue
        if vals is None or shares is None or len(vals) != len(shares):
            raise _Delegate  # candidate_features' explode fails on ragged lists
        has[j] = True
        if None in vals or None in shares:  # a null value never matches in the join; a matched null share is 0
            pairs = [(v, 0.0 if s is None else s) for v, s in zip(vals, shares, strict=True) if v is not None]
            vals, shares = [v for v, _ in pairs], [s for _, s in pairs]
        rows += [j] * len(vals)
        found += vals
        weights += shares
    if not set(map(type, found)) <= {str} or not set(map(type, weights)) <= {float}:
        raise _Delegate  # lists of other types than List(String) / List(Float): candidate_features casts them
    nulls = ~has[cust.at] if cust.single is None else not bool(has[cust.single])
    if not found:
        return np.zeros(len(cust.at), dtype=np.float32), nulls
    distinct = sorted(set(found))
    code = dict(zip(distinct, range(len(distinct)), strict=True))
    columns = list(map(code.__getitem__, found))
    table = np.zeros((height + 1, len(code) + 1))  # the last column: a value nobody bought
    table[rows, columns] = weights
    codes = _codes(values, distinct)
    if len(set(zip(rows, columns, strict=True))) < len(rows):
        counts = np.zeros(table.shape, dtype=np.int64)
        np.add.at(counts, (rows, columns), 1)
        if (counts[cust.at, codes] > 1).any():
            raise _Delegate  # a value twice in one list: candidate_features' "one row per id" error
    shares_at = table[cust.at, codes] if cust.single is None else table[cust.single][codes]
    return shares_at.astype(np.float32), nulls


def _codes(strings: np.ndarray, known: list[str]) -> np.ndarray:
    """Each string's index in ``known`` (sorted, distinct), ``len(known)`` where it is not there: a binary search
    over the Python strings. (Measured in the function's flow at request size, this beat pyarrow's
    ``index_in`` and a cast to an Enum, whose fixed costs are larger than a few comparisons per candidate.)"""
    vocabulary = np.array([*known, None], dtype=object)  # None: equal to no string, where the search runs off the end
    at = vocabulary[:-1].searchsorted(strings)
    return np.where(vocabulary[at] == strings, at, len(known))


def _price_ratio(customers: _Frame, articles: _Frame, cust: CandidateRows, art: CandidateRows) -> pl.Series:
    """``article_price / avg_price``: a Float64 division, as the expression's, then Float32."""
    price, price_null = _numbers(articles, ARTICLE_PRICE)
    avg, avg_null = _numbers(customers, "avg_price")
    with np.errstate(divide="ignore", invalid="ignore"):
        if cust.single is not None:  # one customer: divide by its number
            ratio, nulls = price[art.at] / avg[cust.single], price_null[art.at] | avg_null[cust.single]
        else:
            ratio, nulls = price[art.at] / avg[cust.at], price_null[art.at] | avg_null[cust.at]
    return _floats(PRICE_RATIO, ratio.astype(np.float32), nulls)


def _numbers(frame: _Frame, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A column as Float64 values and null mask (NaN and null kept apart), with a null row appended."""
    col = frame.columns.get(name)
    if col is None:
        return np.full(frame.height + 1, np.nan), np.ones(frame.height + 1, dtype=bool)
    if not col.dtype.is_numeric() or isinstance(col.dtype, pl.Decimal):
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
    """Float32 ``values`` with nulls where ``nulls`` (a mask, or one flag for all; NaN elsewhere stays NaN)."""
    if nulls is True:
        return pl.Series(name, [None] * len(values), dtype=pl.Float32)
    if nulls is False or not nulls.any():
        return pl.Series(name, values)
    if not np.isnan(values[~nulls]).any():  # the usual case: NaN can mark the nulls
        return pl.Series(name, np.where(nulls, np.float32(np.nan), values), nan_to_null=True)
    return pl.Series(name, values).scatter(np.flatnonzero(nulls), None)
