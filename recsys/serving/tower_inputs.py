"""The query tower's inputs for the few customers of one request, built in plain Python.

Training builds tower inputs with :func:`recsys.training.retrieval_data.query_inputs` over millions of rows:
dictionary-encoded polars columns, one vectorised pass per input. For the one to a few dozen rows of a request
that costs ~20 polars operations of fixed overhead (several milliseconds, most of the request's budget). This
module gives the *same values* — checked against ``query_inputs`` by the tests — from the rows as Python dicts,
as the column lists that travel to the query predictor as JSON (missing numbers are ``None``: JSON has no NaN).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from recsys.training.retrieval_data import CONTEXT, DAYS_SINCE, LAST_PURCHASE, PAD_INT, PAD_STRING, TowerFeatures

Columns = dict[str, list[Any]]


def month_context(when: datetime) -> tuple[float, float]:
    """``month_sin``, ``month_cos`` of a time (as :func:`recsys.features.transactions.month_features`)."""
    angle = (when.month - 1) * (2.0 * math.pi / 12.0)
    return math.sin(angle), math.cos(angle)


def query_columns(rows: Sequence[Mapping[str, Any]], schema: TowerFeatures, times: Sequence[datetime]) -> Columns:
    """Every query-tower input as a list with one value per row (``rows[i]`` at request time ``times[i]``)."""
    derived = []
    for row, when in zip(rows, times, strict=True):
        sin, cos = month_context(when)
        last = row.get(LAST_PURCHASE)
        days = None if last is None else float((when.date() - last.date()).days)
        derived.append({CONTEXT[0]: sin, CONTEXT[1]: cos, DAYS_SINCE: days})
    out: Columns = {}
    for name, (kind, length) in schema.query_inputs().items():
        source = derived if name in (*CONTEXT, DAYS_SINCE) else rows
        values = [row.get(name) for row in source]
        out[name] = [_scalar(v, kind) for v in values] if length is None else [_padded(v, kind, length) for v in values]
    return out


def _scalar(value: Any, kind: str) -> Any:
    if kind == "string":
        return PAD_STRING if value is None else str(value)
    if kind == "int":
        return PAD_INT if value is None else int(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _padded(values: Sequence[Any] | None, kind: str, length: int) -> list[Any]:
    head = list(values or [])[:length]
    if kind == "string":
        return [PAD_STRING if v is None else str(v) for v in head] + [PAD_STRING] * (length - len(head))
    if kind == "int":
        return [PAD_INT if v is None else int(v) for v in head] + [PAD_INT] * (length - len(head))
    return [0.0 if v is None else float(v) for v in head] + [0.0] * (length - len(head))
