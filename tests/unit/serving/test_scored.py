"""The ranking transformer puts the ranker's scores back on its candidates: by position when the ranked rows are
the model tier in order (the usual case), by a join otherwise; both give the same frame."""

from __future__ import annotations

import numpy as np
import polars as pl
from polars.testing import assert_frame_equal

from recsys.serving.ranking_transformer import RankingPlan, RankingTransformer


def plan(ranked_order: list[int]) -> RankingPlan:
    # query 0: model articles 10, 11, 12, then popular 13 and 10 again; query 1: model article 11
    candidates = pl.DataFrame(
        {
            "query": [0, 0, 0, 1, 0, 0],
            "article_id": [10, 11, 12, 11, 13, 10],
            "retrieval_score": pl.Series([0.9, 0.8, 0.7, 0.6, 50.0, 40.0], dtype=pl.Float32),
            "tier": pl.Series([0, 0, 0, 0, 1, 1], dtype=pl.Int8),
        }
    )
    ranked = candidates.head(4).select("query", "article_id")[ranked_order]
    scores = {10: 0.1, 11: 0.3, 12: 0.2}
    by_row = [scores[a] + q for q, a in ranked.iter_rows()]
    return RankingPlan([], np.ones(2, bool), candidates, ranked, {}, 0.0, scores=by_row)


def test_scores_by_position_equal_scores_by_join() -> None:
    aligned = RankingTransformer._scored(plan([0, 1, 2, 3]))
    shuffled = RankingTransformer._scored(plan([2, 0, 3, 1]))  # not aligned: the join path
    assert_frame_equal(aligned, shuffled)
    assert aligned.get_column("score").to_list() == [0.1, 0.3, 0.2, 1.3, 50.0, 40.0]  # popular rows keep theirs
