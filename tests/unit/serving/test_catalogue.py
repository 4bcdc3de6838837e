"""The in-memory catalogue: the popular tier, the showable candidates, and the background refresh."""

from __future__ import annotations

import threading
import time

import polars as pl

from recsys.serving.catalogue import CatalogueSnapshot, Refreshing
from recsys.serving.retrieve import POPULAR_TIER, for_queries


def rows() -> pl.DataFrame:  # the showable articles (5 is off sale, so it is not here)
    return pl.DataFrame(
        {
            "article_id": [1, 2, 3, 4, 6],
            "units_7d": [5, 9, 5, 0, None],  # 6 has no sales numbers at all
            "units_30d": [6, 9, 8, 1, None],
            "name": ["a", "b", "c", "d", "f"],
        }
    )


def test_popular_tier_is_the_most_sold_showable_articles() -> None:
    snapshot = CatalogueSnapshot.of(rows(), n_popular=5, carried=["name"])
    tier = snapshot.popular
    # 7-day units first, ties by 30-day units, then id; an article without numbers last
    assert tier.select("article_id", "retrieval_score", "retrieval_rank").rows() == [
        (2, 9.0, 0),
        (3, 5.0, 1),
        (1, 5.0, 2),
        (4, 0.0, 3),
        (6, 0.0, 4),
    ]
    assert tier["tier"].unique().to_list() == [POPULAR_TIER] and tier["name"].to_list()[0] == "b"
    assert CatalogueSnapshot.of(rows(), n_popular=2, carried=[]).popular["article_id"].to_list() == [2, 3]
    assert for_queries(tier, 1)["query"].to_list() == [0] * 5
    assert snapshot.popular_for(1).equals(for_queries(tier, 1)) and snapshot.popular_for(2).equals(for_queries(tier, 2))
    assert for_queries(tier, 3).group_by("query").len().sort("query").rows() == [(0, 5), (1, 5), (2, 5)]


def test_showable_candidates_keep_order_drop_what_may_not_be_shown_and_carry_columns() -> None:
    snapshot = CatalogueSnapshot.of(rows(), n_popular=3, carried=["name"])
    # 5: off sale, 99: unknown; 4 twice (two queries)
    candidates = pl.DataFrame({"query": [0, 0, 0, 1, 1, 1], "article_id": [4, 5, 2, 4, 99, 1]})
    kept, articles = snapshot.showable_candidates(candidates)
    assert kept.columns == ["query", "article_id", "name"]
    assert kept.rows() == [(0, 4, "d"), (0, 2, "b"), (1, 4, "d"), (1, 1, "a")]
    assert articles["article_id"].to_list() == [4, 2, 1] and articles.columns == rows().columns
    assert articles["units_30d"].to_list() == [1, 9, 6]
    kept, articles = snapshot.showable_candidates(candidates.head(0))
    assert kept.height == 0 and kept.columns == ["query", "article_id", "name"]
    assert articles.height == 0 and articles.schema == rows().schema


def test_refresh_happens_in_the_background_and_a_failed_one_keeps_the_old_copy() -> None:
    loads: list[int] = []
    release = threading.Event()
    fail = False

    def load() -> int:
        if loads:  # every refresh after the first waits for the test, so requests must not
            release.wait(10)
        if fail:
            raise OSError("store unreachable")
        loads.append(len(loads))
        return len(loads)

    value = Refreshing(load, refresh_s=3600)
    assert value.get() == 1 and value.get() == 1 and loads == [0]  # loaded once, then cached
    value.refresh_s = 0.0  # stale: answers at once with the old value while a thread re-reads
    started = time.monotonic()
    assert value.get() == 1 and time.monotonic() - started < 1
    value.refresh_s = 3600.0
    release.set()
    deadline = time.monotonic() + 10
    while value.get() == 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert value.get() == 2
    fail, value.refresh_s = True, 0.0
    value.get()  # starts a refresh that fails
    time.sleep(0.2)
    value.refresh_s = 3600.0
    assert value.get() == 2 and value.age_s < 1  # kept, and not retried at once


def test_coded_columns_travel_with_both_tiers_equal_where_the_values_are() -> None:
    frame = rows().with_columns(pl.Series("product", ["P1", "P2", "P1", None, "P3"]))
    snapshot = CatalogueSnapshot.of(frame, n_popular=5, carried=["product"], coded=["product"])
    kept, _ = snapshot.showable_candidates(pl.DataFrame({"query": [0, 0, 0, 0], "article_id": [1, 3, 4, 2]}))
    assert kept.columns == ["query", "article_id", "product", "product:code"]
    codes = kept["product:code"].to_list()
    assert codes[0] == codes[1] and codes[3] not in (codes[0], None) and codes[2] is None  # P1, P1, null, P2
    popular = dict(zip(snapshot.popular["article_id"], snapshot.popular["product:code"], strict=True))
    assert [popular[a] for a in (1, 3, 4, 2)] == codes  # the same codes in the popular tier
