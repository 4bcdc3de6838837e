"""Errors raised by the feature store seam.

All subclass :class:`~recsys.errors.RecsysError`, so the CLIs print them as one clear line with exit code 2. They
carry enough context (the column, a few offending rows, the names that do exist) for a person to fix the input
without opening a debugger.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from recsys.errors import RecsysError

MAX_SAMPLE_ROWS = 5


class StoreError(RecsysError):
    """Base class for feature store and model registry errors."""


class SchemaError(StoreError):
    """A frame does not match a feature group's schema (missing column, wrong dtype, bad name)."""

    def __init__(self, message: str, column: str | None = None, rows: pl.DataFrame | None = None) -> None:
        super().__init__(message)
        self.column = column
        self.rows = rows


class ValidationError(StoreError):
    """A frame has the right schema but bad values (null or duplicate keys); nothing was written."""

    def __init__(self, message: str, column: str | None = None, rows: pl.DataFrame | None = None) -> None:
        super().__init__(message)
        self.column = column
        self.rows = rows


class NotFoundError(StoreError):
    """An unknown feature group, feature view, model, version or key; the message lists what exists."""


def format_rows(rows: pl.DataFrame) -> str:
    """Up to :data:`MAX_SAMPLE_ROWS` rows as one line of dicts, for error messages."""
    rows = rows.head(MAX_SAMPLE_ROWS)
    try:
        dicts = rows.to_dicts()
    except (ValueError, OverflowError):  # a time Python cannot hold (e.g. year 48973: milliseconds read as seconds)
        dicts = rows.with_columns(pl.col(pl.Datetime, pl.Date, pl.Duration).cast(pl.String)).to_dicts()
    return "; ".join(str(row) for row in dicts)


def not_found(kind: str, wanted: str, existing: Iterable[str]) -> NotFoundError:
    """A :class:`NotFoundError` that lists the names that do exist."""
    names = sorted(existing)
    have = ", ".join(names) if names else "none"
    return NotFoundError(f"{kind} {wanted} not found; existing: {have}")
