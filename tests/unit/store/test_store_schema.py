"""Schema normalisation, the dtype JSON codec, insert validation and the SQLite value codec."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import polars as pl
import pytest

from recsys.store.embedding import EmbeddingIndex, exclude_per_query
from recsys.store.errors import SchemaError, ValidationError, format_rows
from recsys.store.local import sqlite_codec
from recsys.store.schema import (
    check_new_schema,
    normalize_dtype,
    schema_from_json,
    schema_to_json,
    unique_keys,
    validate_frame,
)
from recsys.store.timeparse import between, to_datetime

NESTED = pl.Schema(
    {
        "id": pl.String,
        "n": pl.Int32,
        "when": pl.Datetime("us", "UTC"),
        "day": pl.Date,
        "vec": pl.Array(pl.Float32, 3),
        "last": pl.List(pl.Int64),
        "st": pl.Struct({"a": pl.Int64, "b": pl.List(pl.String)}),
        "ok": pl.Boolean,
    }
)


def test_schema_json_round_trip_keeps_every_dtype() -> None:
    assert schema_from_json(schema_to_json(NESTED)) == NESTED


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (pl.UInt32(), pl.Int64()),
        (pl.UInt8(), pl.Int16()),
        (pl.Categorical(), pl.String()),
        (pl.Datetime("ns", "Europe/Paris"), pl.Datetime("us", "Europe/Paris")),
        (pl.List(pl.UInt16()), pl.List(pl.Int32())),
        (pl.Float32(), pl.Float32()),
    ],
)
def test_normalize_dtype(given: pl.DataType, stored: pl.DataType) -> None:
    assert normalize_dtype(given) == stored


def test_unstorable_dtype_is_rejected() -> None:
    with pytest.raises(SchemaError, match="'d'"):
        normalize_dtype(pl.Duration("us"), "d")


def test_new_schema_needs_lowercase_names_and_a_time_typed_event_time() -> None:
    with pytest.raises(SchemaError, match="FN"):
        check_new_schema(pl.DataFrame({"id": [1], "FN": [1.0]}), ["id"], None, "g")
    with pytest.raises(SchemaError, match="event time"):
        check_new_schema(pl.DataFrame({"id": [1], "t": ["2020"]}), ["id"], "t", "g")


def test_validate_reports_extra_columns_and_reorders() -> None:
    schema = pl.Schema({"id": pl.Int64, "x": pl.Float64})
    out = validate_frame(pl.DataFrame({"x": [1.0], "id": [1]}), schema, ["id"], "g")
    assert out.columns == ["id", "x"]
    with pytest.raises(SchemaError, match="unexpected column"):
        validate_frame(pl.DataFrame({"id": [1], "x": [1.0], "y": [2]}), schema, ["id"], "g")


def test_duplicate_composite_keys_show_at_most_five_rows() -> None:
    schema = pl.Schema({"a": pl.Int64, "b": pl.Int64})
    frame = pl.DataFrame({"a": [1] * 8, "b": [2] * 8})
    with pytest.raises(ValidationError, match="8 rows share a key") as info:
        validate_frame(frame, schema, ["a", "b"], "g")
    assert info.value.rows is not None and len(info.value.rows) == 5
    # the same (a) with different (b) is fine
    validate_frame(pl.DataFrame({"a": [1, 1], "b": [1, 2]}), schema, ["a", "b"], "g")


def test_unique_keys_equals_the_exact_check_with_duplicates_and_nulls() -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    frame = pl.DataFrame(
        {
            "customer_id": pl.Series([f"c{i}" for i in rng.integers(0, 3_000, n)]).scatter([5, 9], [None, None]),
            "article_id": rng.integers(0, 40, n),
            "t_dat": rng.integers(0, 3, n),
        }
    )
    key = ["customer_id", "article_id", "t_dat"]
    expected = frame.select(pl.struct(key).is_unique()).to_series()
    assert 0 < (~expected).sum() < n  # both kinds of rows are there
    assert unique_keys(frame, key).to_list() == expected.to_list()
    assert unique_keys(frame.unique(key), key).all()


def test_sqlite_codec_round_trip_with_nulls() -> None:
    frame = pl.DataFrame(
        {
            "id": ["x", "y"],
            "n": [1, None],
            "when": [datetime(2020, 1, 1, 5), None],
            "day": [date(2020, 1, 2), None],
            "vec": [[0.1, 0.2, 0.3], None],
            "last": [[1], []],
            "st": [{"a": 1, "b": ['q"uote']}, None],
            "ok": [True, None],
        },
        schema=NESTED,
    )
    encoded = sqlite_codec.encode(frame)
    assert encoded["vec"][0] == "[0.1,0.2,0.3]"
    assert encoded["when"][0] == 1577854800000000
    assert sqlite_codec.decode(encoded, NESTED).equals(frame)
    assert [sqlite_codec.sqlite_type(d) for d in NESTED.dtypes()] == [
        "TEXT",
        "INTEGER",
        "INTEGER",
        "INTEGER",
        "TEXT",
        "TEXT",
        "TEXT",
        "INTEGER",
    ]


def test_sqlite_codec_keeps_non_ascii_list_values() -> None:
    frame = pl.DataFrame({"genres": [["Comédie", "Drâme"], ["ñ – 映画"], []], "ids": [["film 1 – ñ"], [], ["a"]]})
    encoded = sqlite_codec.encode(frame)
    assert encoded["genres"][0] == '["Comédie","Drâme"]'  # was '["Comédie","Drâme"]}': a slice counted bytes
    assert sqlite_codec.decode(encoded, frame.schema).equals(frame)


def test_sample_rows_show_times_python_cannot_hold() -> None:
    far = pl.DataFrame({"t_dat": [1_536_000_000_000 * 1_000_000]}).cast(pl.Datetime("us"))  # milliseconds read as s
    assert format_rows(far) == "{'t_dat': '+50643-11-26 18:40:00.000000'}"  # was a ValueError: year out of range


def test_time_bounds_are_half_open() -> None:
    frame = pl.DataFrame({"t": [datetime(2020, 1, d) for d in (1, 2, 3)]})
    got = frame.filter(between("t", frame.schema["t"], "2020-01-02", date(2020, 1, 3)))
    assert got["t"].to_list() == [datetime(2020, 1, 2)]
    with pytest.raises(SchemaError, match="ISO-8601"):
        to_datetime("next tuesday")


def test_exclude_lists_per_query() -> None:
    assert exclude_per_query([1, 2], 3) == [[1, 2]] * 3
    assert exclude_per_query([[1], []], 2) == [[1], []]
    assert exclude_per_query(None, 2) is None
    with pytest.raises(SchemaError):
        exclude_per_query([[1]], 2)


def test_embedding_index_rejects_unknown_metric() -> None:
    with pytest.raises(SchemaError, match="metric"):
        EmbeddingIndex(metric="hamming")  # type: ignore[arg-type]
    assert EmbeddingIndex.from_dict(EmbeddingIndex(dimension=4).to_dict()) == EmbeddingIndex(dimension=4)
