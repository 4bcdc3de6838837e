"""What a customer does on the site, written back to the feature store: purchases (and clicks).

:func:`record_purchase` appends the purchase to the ``purchases`` group (offline) and writes the customer's
recomputed ``customer_history`` row, offline and online, so the very next request sees it: the bought article is
filtered out, and the query tower reads the new history. The history is computed by the feature pipeline's own
function (:func:`~recsys.features.customer_history.customer_history_as_of`) over the customer's stored purchases,
as of the day after the newest one: the row the feature pipeline's next run computes for it too.

Why a group of its own and not ``transactions``: see :mod:`recsys.pipeline.recorded`. In short, the newest day
of ``transactions`` is where the feature pipeline's incremental run starts and training's time split ends, so a
purchase dated today there would skip source days and empty training's validation week.

Cost: the store's query interface has no row filter, so the stored transactions are read whole (the customer's
rows and the market price level need them): fine for a demo or the ``small`` preset, seconds at H&M scale.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from numbers import Integral, Real
from typing import Any

import polars as pl

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID, PRICE, QUANTITY, T_DAT
from recsys.errors import RecsysError
from recsys.features.common import MISSING, cutoff, naive_utc
from recsys.features.customer_history import AS_OF, customer_history_as_of, market_prices
from recsys.features.transactions import month_features
from recsys.features.validation import FeatureValidationError, Rule, rules_for, validate
from recsys.pipeline.groups import CUSTOMER_HISTORY, TRANSACTIONS, GroupDef
from recsys.pipeline.history_length import N_LAST, stored_length
from recsys.pipeline.recorded import PURCHASES, uncovered_purchases
from recsys.pipeline.views import ARTICLES_VIEW
from recsys.serving.requests import utc_now
from recsys.store.base import FeatureStore, FeatureView, Project

CLICKS = GroupDef(
    "clicks", 1, ("customer_id", "article_id", "clicked_at"), "clicked_at", False, "Articles a customer clicked on."
)
VALUES = "_values"


class ActionError(RecsysError):
    """An action that cannot be recorded (e.g. an article the catalogue does not have)."""


@dataclass(frozen=True)
class Purchase:
    """What :func:`record_purchase` wrote."""

    customer_id: str | int
    article_id: int | str
    day: datetime
    quantity: int
    history_as_of: datetime
    n_purchases: int


def record_purchase(
    project: Project,
    customer_id: str | int,
    article_id: int | str,
    when: datetime | None = None,
    *,
    quantity: int = 1,
    price: float | None = None,
    n_last: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Purchase:
    """Append a purchase and refresh the customer's history online (see the module docstring).

    ``when`` defaults to now (naive UTC); purchases are counted per day, so a second purchase of the same article
    on the same day adds to that day's quantity. ``extra`` gives values for other transaction columns (e.g. a
    sales channel); those not given are null (``MISSING`` for categories). ``n_last`` (the history's list length)
    defaults to the one the stored histories were written with (:mod:`recsys.pipeline.history_length`); another
    is refused, as the feature pipeline's incremental run refuses it.

    Every argument is checked before anything is written, and a bad one is an :class:`ActionError` that names it:
    ``customer_id`` of the store's id type (a non-empty string for H&M), ``quantity`` an integer >= 1, ``price``
    (when given) finite and >= 0, the purchase row passing the feature pipeline's transaction rules and the
    history row its ``customer_history`` rules. ``when`` may be no later than today (the pipeline's future-date
    rule), must be after the source data's newest day (the transactions group's: late purchases belong in the
    source data, for the feature pipeline), and no earlier than the customer's latest recorded purchase (the
    online history row would go back in time).
    """
    now = utc_now()
    quantity, price = _checked_numbers(quantity, price)
    day = _day(now if when is None else when)
    fs = project.feature_store
    source = TRANSACTIONS.get(fs).select_all().read()
    _check_id("customer_id", customer_id, source.schema[CUSTOMER_ID])
    _check_id("article_id", article_id, source.schema[ARTICLE_ID])
    articles = fs.get_feature_view(*ARTICLES_VIEW)
    _check_in_catalogue(articles, article_id)
    newest = source.get_column(T_DAT).max()
    recorded = _recorded(fs, source, newest)
    _check_day(day, newest, recorded, customer_id)
    n_last = _history_length(fs, source, n_last)
    given = _transaction_row(source.schema, customer_id, article_id, day, quantity, price, extra or {})
    arguments = {T_DAT: ("when", when), QUANTITY: ("quantity", quantity), PRICE: ("price", price)}
    _validate(given, TRANSACTIONS.name, rules_for(TRANSACTIONS.name, given, now=now), arguments)
    row = _add_to_day(given, recorded)

    keys = list(TRANSACTIONS.primary_key)
    everything = pl.concat([source, recorded.join(row.select(keys), on=keys, how="anti"), row])
    mine = everything.filter(pl.col(CUSTOMER_ID) == customer_id)
    bought = mine.get_column(ARTICLE_ID).unique().to_list()
    catalogue = articles.get_feature_vectors([{ARTICLE_ID: a} for a in bought], allow_missing=True)
    history_group = CUSTOMER_HISTORY.get(fs)
    columns = history_group.select_all().features
    affinity = [c[: -len(VALUES)] for c in columns if c.endswith(VALUES) and c[: -len(VALUES)] in catalogue.columns]
    as_of = mine.get_column(T_DAT).max() + timedelta(days=1)
    history = customer_history_as_of(
        mine, catalogue, as_of, n_last=n_last, affinity_columns=affinity, market=market_prices(everything)
    )
    history_row = history.select(columns)
    rules = rules_for(CUSTOMER_HISTORY.name, history_row, now=now, n_last=n_last)
    _validate(history_row, CUSTOMER_HISTORY.name, rules, {})
    PURCHASES.get_or_create(fs).insert(row)
    history_group.insert(history_row)
    return Purchase(
        customer_id,
        article_id,
        day,
        int(row.get_column(QUANTITY).item()),
        history.get_column(AS_OF).item(),
        int(history.get_column("n_purchases").item()),
    )


def _checked_numbers(quantity: Any, price: Any) -> tuple[int, float | None]:
    """``quantity`` as an int and ``price`` as a float; their ranges are the pipeline's rules, checked on the
    purchase's own row (the stored row of the day would hide a bad quantity or price in a sum or a mean)."""
    if isinstance(quantity, bool) or not isinstance(quantity, Integral):
        raise ActionError(f"quantity must be an integer, got {quantity!r}")
    if price is not None and (isinstance(price, bool) or not isinstance(price, Real)):
        raise ActionError(f"price must be a number or None, got {price!r}")
    return int(quantity), None if price is None else float(price)


def _day(when: Any) -> datetime:
    if not isinstance(when, date):
        raise ActionError(f"when must be a datetime, got {when!r}")
    try:
        return cutoff(when)
    except OverflowError:  # an aware time near year 1 or 9999 has no UTC day
        raise ActionError(f"when is out of range: {when!r}") from None


def _check_id(name: str, value: Any, dtype: pl.DataType) -> None:
    """An id of the store's id type: comparing a string column with a number is a polars error, not a miss."""
    if dtype.is_integer():
        if isinstance(value, bool) or not isinstance(value, Integral):
            raise ActionError(f"{name} must be an integer in this store, got {value!r}")
        low, high = pl.select(dtype.min().alias("low"), dtype.max().alias("high")).row(0)
        if not low <= value <= high:  # SQLite and polars would overflow on it
            raise ActionError(f"{name} must be between {low} and {high} (the stored {dtype}), got {value}")
    elif dtype == pl.String and (not isinstance(value, str) or not value.strip()):
        raise ActionError(f"{name} must be a non-empty string in this store, got {value!r}")


def _check_in_catalogue(articles: FeatureView, article_id: int | str) -> None:
    """An article the articles view has online (``article_id`` of the store's id type: see :func:`_check_id`)."""
    known = articles.get_feature_vectors([{ARTICLE_ID: article_id}], allow_missing=True)
    if known.select(pl.all_horizontal(pl.exclude(ARTICLE_ID).is_null())).item():  # the store had no row
        raise ActionError(f"article {article_id!r} is not in the catalogue (the articles feature group)")


def _recorded(fs: FeatureStore, source: pl.DataFrame, newest: datetime) -> pl.DataFrame:
    """The site's recorded purchases after ``newest``, the source data's newest day, in its columns."""
    recorded = uncovered_purchases(fs, newest)
    return source.clear() if recorded is None else recorded.select(source.columns)


def _check_day(day: datetime, newest: datetime, recorded: pl.DataFrame, customer_id: str | int) -> None:
    """The lower bounds of the purchase's day (see :func:`record_purchase`); ``newest``: the source's newest day."""
    if day <= newest:
        raise ActionError(
            f"when ({day.date()}) is not after the source data's newest day ({newest.date()}): the transactions "
            "group covers that day already; add late purchases to the source data instead"
        )
    latest = recorded.filter(pl.col(CUSTOMER_ID) == customer_id).get_column(T_DAT).max()
    if latest is not None and day < latest:
        raise ActionError(
            f"when ({day.date()}) is before customer {customer_id!r}'s latest recorded purchase ({latest.date()}): "
            "their online history is as of the day after it already"
        )


def _validate(row: pl.DataFrame, group: str, rules: list[Rule], arguments: Mapping[str, tuple[str, Any]]) -> None:
    """The feature pipeline's rules of ``group``; a broken one names the argument (name, value) behind its column."""
    try:
        validate(row, group, rules)
    except FeatureValidationError as exc:
        rule = exc.rule
        name, value = arguments.get(rule.column, (rule.column, exc.rows.get_column(rule.column)[0]))
        raise ActionError(f"{name}={value!r} breaks the {group} rule {rule.name!r}: {rule.description}") from None


def _history_length(fs: FeatureStore, source: pl.DataFrame, n_last: int | None) -> int:
    """``n_last``, or the stored histories' when not given; an :class:`ActionError` when they were not written with
    it (the buyer's list would have another length than everyone else's)."""
    stored = stored_length(fs, source)
    if n_last is None:
        return N_LAST if stored is None or stored.allows(N_LAST) else stored.length
    if stored is not None and not stored.allows(n_last):
        raise ActionError(
            f"n_last {n_last} is not the length the stored {CUSTOMER_HISTORY.name} lists were written "
            f"with ({stored.length}{'' if stored.exact else ' or more'}): leave it out to use theirs"
        )
    return n_last


def _transaction_row(
    schema: pl.Schema,
    customer_id: str | int,
    article_id: int | str,
    day: datetime,
    quantity: int,
    price: float | None,
    extra: Mapping[str, Any],
) -> pl.DataFrame:
    """The purchase as one row in the stored schema, with its month features."""
    _check_quantity(quantity, schema)
    unknown = [k for k in extra if k not in schema]
    if unknown:
        raise ActionError(f"unknown transaction column(s) {unknown}; the transactions group has {list(schema)}")
    values: dict[str, Any] = {name: (MISSING if dtype == pl.String else None) for name, dtype in schema.items()}
    values |= dict(extra)
    values |= {CUSTOMER_ID: customer_id, ARTICLE_ID: article_id, T_DAT: day, QUANTITY: quantity, PRICE: price}
    try:  # every argument but ``extra`` has its type checked already
        row = pl.DataFrame([values], schema=schema)
    except (TypeError, pl.exceptions.PolarsError):
        types = {k: str(schema[k]) for k in extra}
        raise ActionError(f"extra {dict(extra)!r} does not fit the transactions columns {types}") from None
    context = [e for e in month_features(pl.col(T_DAT)) if e.meta.output_name() in schema]
    return row.with_columns(context).with_columns(pl.col(c).cast(schema[c]) for c in row.columns)


def _check_quantity(quantity: int, schema: pl.Schema, what: str = "") -> int:
    """``quantity`` if the stored column can hold it."""
    limit = pl.select(schema[QUANTITY].max()).item()
    if quantity > limit:
        raise ActionError(f"quantity{what} must be at most {limit} (the stored {schema[QUANTITY]}), got {quantity}")
    return quantity


def _add_to_day(given: pl.DataFrame, stored: pl.DataFrame) -> pl.DataFrame:
    """``given`` added to the row recorded that day for (customer, article), if any: quantity summed, price the mean
    per unit of the priced units, the other columns the stored row's."""
    keys = list(TRANSACTIONS.primary_key)
    same = stored.join(given.select(keys), on=keys, how="semi")
    if not same.height:
        return given
    before, new = same.row(0, named=True), given.row(0, named=True)
    values = before | {QUANTITY: _check_quantity(before[QUANTITY] + new[QUANTITY], stored.schema, " (the day's total)")}
    prices = [(p, q) for p, q in ((before[PRICE], before[QUANTITY]), (new[PRICE], new[QUANTITY])) if p is not None]
    values[PRICE] = sum(p * q for p, q in prices) / sum(q for _, q in prices) if prices else None
    return pl.DataFrame([values], schema=stored.schema)


def record_click(project: Project, customer_id: str | int, article_id: int | str, when: datetime | None = None) -> None:
    """Append a click to the offline ``clicks`` group (what a customer looked at; not a feature yet).

    ``when`` defaults to now and is stored as naive UTC. Every argument is checked before anything is written, and
    a bad one is an :class:`ActionError` that names it: the ids of the store's id types (the transactions group's,
    read from its schema, not its rows: a click is cheap), the article in the catalogue, ``when`` a datetime no
    later than today (UTC; the purchases' rule). A customer the store does not know may click: a new visitor
    browses before buying, as :func:`record_purchase` takes a new customer's first purchase.
    """
    now = utc_now()
    clicked_at = _time(now if when is None else when)
    if cutoff(clicked_at) > cutoff(now):
        raise ActionError(f"when ({clicked_at}) is in the future: a click is recorded no later than today (UTC)")
    fs = project.feature_store
    ids = TRANSACTIONS.get(fs).column_types([CUSTOMER_ID, ARTICLE_ID])
    _check_id("customer_id", customer_id, ids[CUSTOMER_ID])
    _check_id("article_id", article_id, ids[ARTICLE_ID])
    _check_in_catalogue(fs.get_feature_view(*ARTICLES_VIEW), article_id)
    row = pl.DataFrame(
        {CUSTOMER_ID: [customer_id], ARTICLE_ID: [article_id], "clicked_at": [clicked_at]},
        schema={CUSTOMER_ID: ids[CUSTOMER_ID], ARTICLE_ID: ids[ARTICLE_ID], "clicked_at": pl.Datetime("us")},
    )
    CLICKS.get_or_create(fs).insert(row)


def _time(when: Any) -> datetime:
    """``when`` as naive UTC, like every time in the store."""
    if not isinstance(when, datetime):  # a day alone is not the time of a click
        raise ActionError(f"when must be a datetime, got {when!r}")
    try:
        return naive_utc(when)
    except OverflowError:  # an aware time near year 1 or 9999 has no UTC time
        raise ActionError(f"when is out of range: {when!r}") from None
