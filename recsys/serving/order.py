"""The order stage: from scored candidates to the answer of each instance.

Within each query: the model's tier before the popularity tier, then score (high first), then retrieval rank;
an article once; one article per ``group_column`` value (H&M's ``product_code``: colour variants of one product
would otherwise fill the list); at most ``max_per_type`` articles per ``type_column`` value; then ``top_k``.
One sort of the whole request, then order-preserving de-duplication and cuts (no per-query work).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from recsys.data.dataset import ARTICLE_ID
from recsys.serving.options import ServingOptions
from recsys.serving.retrieve import QUERY, TIER
from recsys.training.ranking_features import RETRIEVAL_RANK

SCORE, POSITION = "score", "position"
_GROUP = "_group"


def order(scored: pl.DataFrame, top_k: np.ndarray, options: ServingOptions) -> pl.DataFrame:
    """``scored`` (query, article_id, score, tier, retrieval_rank + article columns) cut to each query's answer.

    ``top_k[q]`` is the answer length of query ``q``. Returns the kept rows with ``position`` (0 = first), sorted
    by query and position.
    """
    ranked = scored.sort(
        [QUERY, TIER, SCORE, RETRIEVAL_RANK, ARTICLE_ID], descending=[False, False, True, False, False]
    )
    ranked = ranked.unique(subset=[QUERY, ARTICLE_ID], keep="first", maintain_order=True)
    group = options.group_column
    if group and group in ranked.columns:
        # an article without a group value is its own group
        value = pl.coalesce(pl.col(group).cast(pl.String), pl.lit("\x00") + pl.col(ARTICLE_ID).cast(pl.String))
        ranked = ranked.with_columns(value.alias(_GROUP))
        ranked = ranked.unique(subset=[QUERY, _GROUP], keep="first", maintain_order=True).drop(_GROUP)
    kind = options.type_column
    if options.max_per_type > 0 and kind and kind in ranked.columns:
        ranked = ranked.filter(pl.int_range(pl.len()).over([QUERY, kind]) < options.max_per_type)
    position = positions(ranked.get_column(QUERY).to_numpy())
    keep = position < np.asarray(top_k)[ranked.get_column(QUERY).to_numpy()] if ranked.height else position > 0
    return ranked.with_columns(pl.Series(POSITION, position.astype(np.int32))).filter(pl.Series(keep))


def positions(queries: np.ndarray) -> np.ndarray:
    """The position of each row within its run of equal ``queries`` (sorted): 0, 1, 2, ... per query."""
    n = len(queries)
    if n == 0:
        return np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, queries[1:] != queries[:-1]])
    lengths = np.diff(np.r_[starts, n])
    return np.arange(n) - np.repeat(starts, lengths)
