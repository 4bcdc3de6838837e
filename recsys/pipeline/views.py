"""The feature views of design §3, built over the groups of :mod:`recsys.pipeline.groups`.

* ``retrieval`` — one row per daily purchase (the two-tower model's positive pairs): transaction, customer and
  article features, and the customer's history *as of the purchase* (point in time: only days before it).
* ``customers`` — customer attributes + their latest history: what the query tower reads online at request time.
* ``articles`` — the catalogue: what the candidate tower embeds.
* ``ranking`` — article attributes + latest popularity and price: the per-candidate features the ranker reads
  online in one batched call.

Columns are everything the groups hold (whatever the dataset spec produced) minus join keys and event times, so
the views follow the schema instead of H&M's names.
"""

from __future__ import annotations

from recsys.pipeline.groups import ARTICLE_POPULARITY, ARTICLES, CUSTOMER_HISTORY, CUSTOMERS, TRANSACTIONS, GroupDef
from recsys.store.base import FeatureStore, FeatureView, Query

# A view's query is fixed by its first version, so a new group version is a new view: retrieval and customers v2
# are over customer_history v2, ranking v2 over article_popularity v2.
RETRIEVAL_VIEW = ("retrieval", 2)
CUSTOMERS_VIEW = ("customers", 2)
ARTICLES_VIEW = ("articles", 1)
RANKING_VIEW = ("ranking", 2)
VIEWS = (RETRIEVAL_VIEW, CUSTOMERS_VIEW, ARTICLES_VIEW, RANKING_VIEW)
# What to do about a view that does not exist (yet, or in this version).
MISSING_VIEW = (
    "run `python -m feature_pipeline backfill` first (a store that has only older versions of the views gets "
    "these from its next `python -m feature_pipeline incremental` run)"
)
# The history snapshot's day count is only right on its as_of day: consumers recompute it at their own time.
STALE = ("days_since_last_purchase",)


def _features(fs: FeatureStore, group: GroupDef, drop: tuple[str, ...] = ()) -> Query:
    """All features of ``group`` except its keys, its event time and ``drop``."""
    fg = group.get(fs)
    skip = {*group.primary_key, group.event_time, *drop}
    return fg.select([name for name in fg.select_all().features if name not in skip])


def retrieval_query(fs: FeatureStore) -> Query:
    tx = TRANSACTIONS.get(fs)
    return (
        tx.select_all()
        .join(_features(fs, CUSTOMERS), on=["customer_id"])
        .join(_features(fs, ARTICLES), on=["article_id"])
        .join(_features(fs, CUSTOMER_HISTORY, STALE), on=["customer_id"])
    )


def customers_query(fs: FeatureStore) -> Query:
    return CUSTOMERS.get(fs).select_all().join(_features(fs, CUSTOMER_HISTORY, STALE), on=["customer_id"])


def articles_query(fs: FeatureStore) -> Query:
    return ARTICLES.get(fs).select_all()


def ranking_query(fs: FeatureStore) -> Query:
    return ARTICLES.get(fs).select_all().join(_features(fs, ARTICLE_POPULARITY), on=["article_id"])


_QUERIES = {
    RETRIEVAL_VIEW: retrieval_query,
    CUSTOMERS_VIEW: customers_query,
    ARTICLES_VIEW: articles_query,
    RANKING_VIEW: ranking_query,
}


def create_views(fs: FeatureStore) -> dict[str, FeatureView]:
    """Create (or find, when unchanged) every view; the groups must exist and hold data."""
    return {name: fs.get_or_create_feature_view(name, version, _QUERIES[name, version](fs)) for name, version in VIEWS}
