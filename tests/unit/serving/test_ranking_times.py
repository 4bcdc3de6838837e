"""A request whose instances have different request times: each candidate row's features are computed as of its
own instance's time, and the rows come back in the order they were sent (the scores go back by position)."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
from polars.testing import assert_frame_equal

from recsys.serving.ranking_transformer import RankingTransformer
from recsys.training.ranking_features import candidate_features
from tests.unit.serving.test_request_features import AS_OF, articles, candidates, customers, schema


def test_features_of_instances_at_different_times_keep_the_rows_order() -> None:
    transformer = object.__new__(RankingTransformer)  # _features reads only the schema
    transformer.schema = schema()
    rows = candidates().drop("week")  # queries 0..4, query 0 (c1) again at the end
    times = [AS_OF + timedelta(days=d) for d in (40, 0, 40, 3, 0)]  # one later day shared by queries 0 and 2
    got = transformer._features(rows, customers(), articles(), times)
    assert got.select("query", "article_id").equals(rows.select("query", "article_id"))
    for query, when in enumerate(times):
        mine = rows.filter(pl.col("query") == query)
        expected = candidate_features(mine, customers(), articles(), when, transformer.schema)
        assert_frame_equal(got.filter(pl.col("query") == query), expected)
    # days since the last purchase really moved with the time (c1 has a history)
    c1 = got.filter(pl.col("query") == 0).get_column("days_since_last_purchase").unique().to_list()
    same_day = transformer._features(rows, customers(), articles(), [AS_OF] * 5)
    assert c1 != same_day.filter(pl.col("query") == 0).get_column("days_since_last_purchase").unique().to_list()
