"""Popularity and repurchase baselines on hand-made purchases, scored by the model's metric code."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from recsys.training.baselines import popular_articles, popularity_baseline, repurchase_baseline
from recsys.training.retrieval_eval import recall

D = datetime
AS_OF = D(2020, 1, 15, 9)  # the last week is Jan 8 .. Jan 14; Jan 15 itself is not seen
CATALOGUE = [1, 2, 3, 4, 5, 6, 7]


def purchases() -> pl.DataFrame:
    rows = [
        ("c1", 1, D(2020, 1, 1), 1),
        ("c1", 2, D(2020, 1, 3), 1),
        ("c1", 1, D(2020, 1, 10), 1),
        ("c1", 3, D(2020, 1, 10), 1),
        ("c2", 2, D(2020, 1, 9), 3),
        ("c2", 4, D(2020, 1, 12), 1),
        ("c3", 3, D(2020, 1, 14), 1),
        ("c3", 5, D(2020, 1, 15), 9),  # on the as-of day: not seen
        ("c3", 6, D(2020, 1, 20), 9),  # in the future
    ]
    return pl.DataFrame(
        rows,
        schema={"customer_id": pl.String, "article_id": pl.Int64, "t_dat": pl.Datetime("us"), "quantity": pl.Int32},
        orient="row",
    )


def test_popularity_counts_units_of_the_last_week_then_all_time_then_id() -> None:
    top = popular_articles(purchases(), AS_OF, 6, catalogue=CATALOGUE)
    # last-week units: 2 -> 3, 3 -> 2, 1 -> 1 (2 all time), 4 -> 1 (1 all time); 5, 6, 7 unsold before Jan 15
    assert top.get_column("article_id").to_list() == [2, 3, 1, 4, 5, 6]
    assert top.get_column("units").to_list() == [3, 2, 1, 1, 0, 0]
    with pytest.raises(ValueError, match="cannot rank 5"):
        popular_articles(purchases(), AS_OF, 5)  # only 4 articles sold before Jan 15 and no catalogue


def test_popularity_baseline_gives_everyone_the_same_list() -> None:
    recs = popularity_baseline(["c1", "c9"], purchases(), AS_OF, 3, catalogue=CATALOGUE)
    assert recs.article_ids.tolist() == [[2, 3, 1], [2, 3, 1]]
    assert recs.scores is not None and recs.scores[0].tolist() == [3.0, 2.0, 1.0]


def test_repurchase_first_then_popularity_without_repeats() -> None:
    recs = repurchase_baseline(["c1", "c2", "c3", "c9"], purchases(), AS_OF, 5, catalogue=CATALOGUE)
    assert recs.customer_ids.tolist() == ["c1", "c2", "c3", "c9"]
    assert recs.article_ids.tolist() == [
        [1, 3, 2, 4, 5],  # c1: 1 and 3 last bought Jan 10 (1 on two days, first), 2 on Jan 3; then popular
        [4, 2, 3, 1, 5],  # c2: 4 (Jan 12), 2 (Jan 9)
        [3, 2, 1, 4, 5],  # c3: 3; article 5 is bought on the as-of day, unseen
        [2, 3, 1, 4, 5],  # c9: a new customer gets the popularity list
    ]


def test_baselines_are_scored_by_the_model_metric_code() -> None:
    truth = pl.DataFrame({"customer_id": ["c1", "c2", "c3"], "article_id": [2, 7, 5]})  # the week from Jan 15
    repurchase = repurchase_baseline(truth["customer_id"], purchases(), AS_OF, 5, catalogue=CATALOGUE)
    popularity = popularity_baseline(truth["customer_id"], purchases(), AS_OF, 5, catalogue=CATALOGUE)
    # top 3: repurchase hits c1's 2 only; popularity ([2, 3, 1]) also only c1's 2
    assert recall(repurchase, truth, (3, 5)) == {"recall@3": pytest.approx(1 / 3), "recall@5": pytest.approx(2 / 3)}
    assert recall(popularity, truth, (1, 5)) == {"recall@1": pytest.approx(1 / 3), "recall@5": pytest.approx(2 / 3)}
    assert isinstance(repurchase.article_ids, np.ndarray) and repurchase.article_ids.shape == (3, 5)
