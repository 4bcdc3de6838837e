"""A split whose training period is too small to learn from is refused before any training (bug: two weeks of
data trained the towers on 1 row against 355 validation rows and registered them)."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest

from recsys.pipeline.views import ARTICLES_VIEW, CUSTOMERS_VIEW, RETRIEVAL_VIEW
from recsys.training.retrieval_job import load_retrieval_data
from recsys.training.splits import TrainingDataError

END = datetime(2020, 1, 29)  # test 01-22..01-28, validation 01-15..01-21, training before 01-15


class _Store:
    """Just the views load_retrieval_data reads."""

    def __init__(self, rows: pl.DataFrame) -> None:
        self.frames = {
            RETRIEVAL_VIEW: rows,
            ARTICLES_VIEW: pl.DataFrame({"article_id": [1, 2]}),
            CUSTOMERS_VIEW: pl.DataFrame({"customer_id": ["a", "b"]}),
        }

    def get_feature_view(self, *view: Any) -> Any:
        frame = self.frames[tuple(view)]
        return SimpleNamespace(training_data=lambda: (frame, None))


def _project(days: dict[datetime, int]) -> Any:
    """A store whose retrieval view holds ``n`` purchases on each day."""
    times = [day for day, n in days.items() for _ in range(n)]
    rows = pl.DataFrame(
        {"customer_id": ["a", "b"] * (len(times) // 2) + ["a"] * (len(times) % 2), "article_id": 1, "t_dat": times}
    )
    return SimpleNamespace(feature_store=_Store(rows))


def _week(start: datetime, n: int) -> dict[datetime, int]:
    return {start + timedelta(days=i): n for i in range(7)}


def test_a_single_training_day_is_refused() -> None:
    project = _project({datetime(2020, 1, 14): 1} | _week(datetime(2020, 1, 15), 50) | _week(datetime(2020, 1, 22), 4))
    with pytest.raises(TrainingDataError) as exc:
        load_retrieval_data(project)
    assert str(exc.value) == (
        "too little training data: the training period before 2020-01-15 holds 1 row(s) on 1 day(s) "
        "(2020-01-14..2020-01-14), against validation 350 rows, test 28 rows; training needs at least 7 days and "
        "as many rows as validation: add older purchases to the data set"
    )


def test_a_training_week_with_fewer_rows_than_validation_is_refused() -> None:
    project = _project(
        _week(datetime(2020, 1, 8), 2) | _week(datetime(2020, 1, 15), 50) | _week(datetime(2020, 1, 22), 4)
    )
    with pytest.raises(TrainingDataError, match=r"holds 14 row\(s\) on 7 day\(s\) \(2020-01-08..2020-01-14\)"):
        load_retrieval_data(project)


def test_a_training_week_as_large_as_validation_is_enough() -> None:
    project = _project(
        _week(datetime(2020, 1, 8), 50) | _week(datetime(2020, 1, 15), 50) | _week(datetime(2020, 1, 22), 4)
    )
    data = load_retrieval_data(project)
    assert (data.train.height, data.val.height, data.test.height) == (350, 350, 28)
    assert data.split.val_start == datetime(2020, 1, 15) and data.split.end == END


def test_a_row_split_without_training_rows_is_refused() -> None:
    # Two purchases per customer: the per-customer split holds out both, one for test and one for validation.
    project = _project({datetime(2020, 1, 1): 2, datetime(2020, 1, 2): 2})
    with pytest.raises(TrainingDataError, match=r"per-customer split .* leaves 0 training rows .* as many rows as"):
        load_retrieval_data(project, split="per-customer")
