"""How polars columns are stored in typed SQLite columns, and read back as the same polars dtypes.

* integers and booleans -> INTEGER; floats -> REAL; strings -> TEXT;
* datetimes -> INTEGER microseconds since the epoch (time zone kept in the group schema); dates -> INTEGER days;
* lists, arrays and structs (embeddings, last-N article ids) -> TEXT holding JSON. JSON keeps one code path for
  every nested type, is readable with the ``sqlite3`` shell, and decodes back to the exact dtype (float32 values
  round-trip through their shortest decimal form).

Encoding and decoding are whole-column polars expressions, never Python loops over rows. The one exception is
:func:`value_decoders`, for the few rows a serving request reads as Python values.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import orjson
import polars as pl

from recsys.store.schema import listify

_WRAP = "v"


def sqlite_type(dtype: pl.DataType) -> str:
    """The SQLite column type for a polars dtype."""
    if dtype.is_integer() or isinstance(dtype, pl.Boolean | pl.Datetime | pl.Date):
        return "INTEGER"
    if dtype.is_float():
        return "REAL"
    return "TEXT"


def is_nested(dtype: pl.DataType) -> bool:
    return isinstance(dtype, pl.List | pl.Array | pl.Struct)


def encode(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with every column in the form SQLite stores it."""
    return df.select([_encode_expr(name, dtype) for name, dtype in df.schema.items()])


def encoded_dtype(dtype: pl.DataType) -> pl.DataType:
    """The polars dtype of a column after :func:`encode` (what SQLite hands back)."""
    if isinstance(dtype, pl.Datetime):
        return pl.Int64()
    if isinstance(dtype, pl.Date):
        return pl.Int32()
    if isinstance(dtype, pl.Boolean):
        return pl.Int64()
    if is_nested(dtype):
        return pl.String()
    if dtype.is_integer():
        return pl.Int64()
    if dtype.is_float():
        return pl.Float64()
    return dtype


def decode(df: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """Inverse of :func:`encode`: raw SQLite values back to the group's dtypes.

    Only columns whose stored form differs are touched: serving reads a handful of keys per request, where the
    per-expression overhead of polars, not the data, is the cost.
    """
    exprs = _decode_exprs(tuple((name, schema[name]) for name in df.columns))
    return df.with_columns(exprs) if exprs else df


@functools.lru_cache(maxsize=256)
def _decode_exprs(columns: tuple[tuple[str, pl.DataType], ...]) -> list[pl.Expr]:
    """The decoding expressions of the columns whose stored form differs (cached: building them per request cost
    more than running them)."""
    return [_decode_expr(name, dtype) for name, dtype in columns if encoded_dtype(dtype) != dtype]


def _encode_expr(name: str, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        return col.dt.epoch("us").alias(name)
    if isinstance(dtype, pl.Date):
        return col.cast(pl.Int32).alias(name)
    if isinstance(dtype, pl.Boolean):
        return col.cast(pl.Int64).alias(name)
    if is_nested(dtype):
        # JSON-encode through a one-field struct, then strip the wrapper: {"v":[...]} -> [...]
        text = pl.struct(col.alias(_WRAP)).struct.json_encode()
        # strip, not slice: a slice counts characters, and a length in bytes over-counts non-ASCII text
        inner = text.str.strip_prefix(f'{{"{_WRAP}":').str.strip_suffix("}")
        return pl.when(col.is_null()).then(None).otherwise(inner).alias(name)
    return col


def _decode_expr(name: str, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        return col.cast(pl.Int64).cast(dtype).alias(name)
    if isinstance(dtype, pl.Date):
        return col.cast(pl.Int32).cast(pl.Date).alias(name)
    if isinstance(dtype, pl.Boolean):
        return col.cast(pl.Boolean).alias(name)
    if is_nested(dtype):
        wrapped = pl.concat_str(pl.lit('{"v":'), col, pl.lit("}"))
        decoded = wrapped.str.json_decode(pl.Struct({_WRAP: listify(dtype)})).struct.field(_WRAP)
        return decoded.cast(dtype).alias(name)
    return col.cast(dtype).alias(name)


_EPOCH, _EPOCH_DAY = datetime(1970, 1, 1), date(1970, 1, 1)
_PLAIN_ITEMS = (pl.String, pl.Boolean, pl.Float64)
Decoder = Callable[[Any], Any] | None


@functools.lru_cache(maxsize=256)
def value_decoders(dtypes: tuple[pl.DataType, ...]) -> tuple[Decoder, ...] | None:
    """Per dtype, how one stored (non-null) value becomes the Python value ``DataFrame.to_dicts`` gives for it
    (``None``: as SQLite hands it back); ``None`` overall when a dtype has no such decoder (time zones, structs,
    arrays, float32 or temporal list items), so that the caller decodes with polars instead."""
    decoders: list[Decoder] = []
    for dtype in dtypes:
        if isinstance(dtype, pl.Datetime):
            if dtype.time_zone is not None:
                return None
            decoders.append(lambda v: _EPOCH + timedelta(microseconds=v))
        elif isinstance(dtype, pl.Date):
            decoders.append(lambda v: _EPOCH_DAY + timedelta(days=v))
        elif isinstance(dtype, pl.Boolean):
            decoders.append(bool)
        elif isinstance(dtype, pl.List) and (dtype.inner.is_integer() or isinstance(dtype.inner, _PLAIN_ITEMS)):
            decoders.append(orjson.loads)
        elif is_nested(dtype) or not (dtype.is_numeric() or isinstance(dtype, pl.String)) or dtype == pl.Decimal:
            return None
        else:
            decoders.append(None)
    return tuple(decoders)
