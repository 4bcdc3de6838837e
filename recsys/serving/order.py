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


def order(scored: pl.DataFrame | pl.LazyFrame, top_k: np.ndarray, options: ServingOptions) -> pl.DataFrame:
    """``scored`` (query, article_id, score, tier, retrieval_rank + article columns) cut to each query's answer.

    ``top_k[q]`` is the answer length of query ``q``. Returns the kept rows with ``position`` (0 = first), sorted
    by query and position. One lazy plan, one ``collect``: a request is a few hundred rows, where every eager
    call's fixed cost would add up to more than the work.
    """
    ranked = scored.lazy().sort(
        [QUERY, TIER, SCORE, RETRIEVAL_RANK, ARTICLE_ID], descending=[False, False, True, False, False]
    )
    names = ranked.collect_schema().names()
    group = options.group_column
    if group and group in names:
        # an article without a group value is its own group; a repeated article has its first row's group, so
        # the first row of each group is also the article's first row
        value = pl.coalesce(pl.col(group).cast(pl.String), pl.lit("\x00") + pl.col(ARTICLE_ID).cast(pl.String))
        ranked = ranked.filter(pl.struct(pl.col(QUERY), value.alias(_GROUP)).is_first_distinct())
    else:
        ranked = ranked.filter(pl.struct(QUERY, ARTICLE_ID).is_first_distinct())
    kind = options.type_column
    if options.max_per_type > 0 and kind and kind in names:
        ranked = ranked.filter(pl.int_range(pl.len()).over([QUERY, kind]) < options.max_per_type)
    limits = pl.Series(np.asarray(top_k, dtype=np.int64))
    position = pl.int_range(pl.len(), dtype=pl.Int32).over(QUERY)
    return (
        ranked.with_columns(position.alias(POSITION))
        .filter(pl.col(POSITION) < pl.lit(limits).gather(pl.col(QUERY)))
        .collect(engine="in-memory")
    )
