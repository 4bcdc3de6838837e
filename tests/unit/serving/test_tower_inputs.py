"""Serving builds the query tower's inputs in plain Python: they must equal training's ``query_inputs``."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from recsys.serving.tower_inputs import month_context, query_columns
from recsys.serving.wire import columns_to_arrays
from recsys.training.retrieval_data import TowerFeatures, query_inputs

D = datetime
SCHEMA = TowerFeatures(
    customer_id_kind="string",
    article_id_kind="int",
    customer_categorical=("club_member_status", "age_group"),
    customer_multi=("interests",),
    customer_numeric=("age",),
    history=True,
    history_numeric=("n_purchases", "avg_price", "days_since_last_purchase"),
    affinities=("index_group_name",),
    list_lengths={"interests": 2, "last_article_ids": 4, "index_group_name": 2},
)


def customers() -> pl.DataFrame:
    """Customers view rows: full history, long lists (cut), empty lists, and a customer the store lacks."""
    return pl.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3", "new"],
            "club_member_status": ["ACTIVE", "PRE-CREATE", "ACTIVE", None],
            "age_group": ["25-34", "unknown", "65+", None],
            "interests": [["a", "b", "c"], [], ["x"], None],
            "age": [31.0, None, 70.0, None],
            "last_article_ids": [[9, 8, 7, 6, 5], [4], [], None],
            "n_purchases": [12, 1, None, None],
            "avg_price": [0.02, 0.03, None, None],
            "last_purchase": [D(2020, 9, 1), D(2019, 12, 31, 15), None, None],
            "index_group_name_values": [["Ladieswear", "Divided", "Sport"], ["Menswear"], [], None],
            "index_group_name_shares": [[0.5, 0.3, 0.2], [1.0], [], None],
        },
        schema_overrides={"n_purchases": pl.Int32},
    )


TIMES = [D(2020, 9, 23, 10), D(2020, 1, 2, 0, 30), D(2020, 12, 31, 23), D(2020, 4, 1)]


def with_request_times(frame: pl.DataFrame, times: list[datetime]) -> pl.DataFrame:
    """Training reads the month and the recency of each row from ``t_dat``."""
    return frame.with_columns(pl.Series("t_dat", times, dtype=pl.Datetime("us")))


@pytest.mark.parametrize("row", range(4))
def test_same_values_as_training(row: int) -> None:
    frame = customers()
    expected = query_inputs(with_request_times(frame, TIMES).slice(row, 1), SCHEMA)
    got, n = columns_to_arrays(
        query_columns(frame.slice(row, 1).to_dicts(), SCHEMA, TIMES[row : row + 1]),
        {name: kind for name, (kind, _) in SCHEMA.query_inputs().items()},
    )
    assert n == 1 and set(got) == set(expected)
    for name, values in expected.items():
        if values.dtype.kind == "f":
            np.testing.assert_allclose(got[name], values.astype(np.float32), rtol=1e-6, err_msg=name)
        else:
            assert got[name].tolist() == values.tolist(), name


def test_request_context() -> None:
    columns = query_columns(customers().to_dicts(), SCHEMA, TIMES)
    assert columns["days_since_last_purchase"] == [22.0, 2.0, None, None]  # whole days; none without history
    assert columns["month_sin"][0] == pytest.approx(month_context(D(2020, 9, 1))[0])
    assert month_context(D(2020, 1, 5)) == pytest.approx((0.0, 1.0)) and month_context(D(2020, 4, 5))[0] == 1.0
