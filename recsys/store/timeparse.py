"""Time bounds given by people (ISO strings, dates, datetimes) turned into polars filters on an event time."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from recsys.store.errors import SchemaError

TimeLike = datetime | date | str


def to_datetime(value: TimeLike) -> datetime:
    """A datetime from an ISO-8601 string, a date (midnight) or a datetime."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise SchemaError(
            f"cannot read {value!r} as a time; use ISO-8601, e.g. 2020-09-15 or 2020-09-15T00:00"
        ) from None


def between(column: str, dtype: pl.DataType, start: TimeLike | None, end: TimeLike | None) -> pl.Expr:
    """``start <= column < end`` (either bound optional), with the bounds cast to the column's dtype."""
    expr = pl.lit(True)
    col = pl.col(column)
    if start is not None:
        expr = expr & (col >= _literal(start, dtype))
    if end is not None:
        expr = expr & (col < _literal(end, dtype))
    return expr


def _literal(value: TimeLike, dtype: pl.DataType) -> pl.Expr:
    moment = to_datetime(value)
    if isinstance(dtype, pl.Date):
        return pl.lit(moment.date())
    if isinstance(dtype, pl.Datetime) and dtype.time_zone and moment.tzinfo is None:
        return pl.lit(moment).dt.replace_time_zone(dtype.time_zone).cast(dtype)
    return pl.lit(moment).cast(dtype)
