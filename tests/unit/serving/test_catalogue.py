"""The in-memory catalogue: the popular tier, the showable candidates, and the background refresh."""

from __future__ import annotations

import threading
import time

import numpy as np
import polars as pl

from recsys.serving.catalogue import CatalogueSnapshot, Refreshing, RowFinder
from recsys.serving.retrieve import MODEL_TIER, POPULAR_TIER, Neighbours


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


def hits(query: list[int], ids: list[int] | list[str]) -> Neighbours:
    found = np.array(ids) if isinstance(ids[0], int) else pl.Series("article_id", ids)
    return Neighbours(np.array(query, np.int64), found, np.linspace(1, 0, len(ids)).astype(np.float32))


def test_candidates_are_the_showable_model_hits_then_the_popular_tier_without_what_is_excluded() -> None:
    snapshot = CatalogueSnapshot.of(rows(), n_popular=3, carried=["name"])  # popular: 2, 3, 1
    # 5: off sale, 99: unknown; 4 in both queries; query 0 bought 2, query 1 bought 1 and 3
    found = hits([0, 0, 0, 0, 1, 1, 1], [4, 5, 2, 6, 4, 99, 1])
    candidates = snapshot.candidates(found, 2, [[2], [1, 3]], keep_per_query=2)
    articles = snapshot.model_rows(candidates)
    ids = snapshot.article_ids(candidates.at).to_list()
    # query 0: 4, 5 are its first two not excluded (2 is), 5 may not be shown; query 1: 4, 99 (99 unknown)
    assert candidates.n_model == 2 and ids[:2] == [4, 4] and candidates.query[:2].tolist() == [0, 1]
    assert candidates.rank[:2].tolist() == [0, 0] and candidates.score[:2].tolist() == found.scores[[0, 4]].tolist()
    # the popular tier of each query, less what it bought, with its 7-day units as score and its own ranks
    assert ids[2:] == [3, 1, 2] and candidates.query[2:].tolist() == [0, 0, 1]
    assert candidates.rank[2:].tolist() == [1, 2, 0] and candidates.score[2:].tolist() == [5.0, 5.0, 9.0]
    assert candidates.tier.tolist() == [MODEL_TIER] * 2 + [POPULAR_TIER] * 3
    assert candidates.score.dtype == np.float32 and candidates.rank.dtype == np.int32
    # the articles' rows once each, in the order of first occurrence, with every column
    assert articles["article_id"].to_list() == [4] and articles.columns == rows().columns
    assert articles["units_30d"].to_list() == [1]
    keys = snapshot.id_keys(candidates.at).tolist()
    assert sorted(range(5), key=lambda i: keys[i]) == sorted(range(5), key=lambda i: ids[i])  # keys order as ids
    none = snapshot.candidates(hits([0], [99]), 1, [[]], keep_per_query=2)
    articles = snapshot.model_rows(none)
    assert none.n_model == 0 and snapshot.article_ids(none.at).to_list() == [2, 3, 1] and articles.height == 0
    assert articles.schema == rows().schema


def test_candidates_of_string_ids_and_of_ids_of_another_kind() -> None:
    frame = rows().with_columns(pl.col("article_id").cast(pl.String))
    snapshot = CatalogueSnapshot.of(frame, n_popular=1, carried=[])
    candidates = snapshot.candidates(hits([0, 0, 0], ["4", "x", "1"]), 1, [["1"]], keep_per_query=5)
    articles = snapshot.model_rows(candidates)
    assert snapshot.article_ids(candidates.at).to_list() == ["4", "2"] and candidates.n_model == 1
    assert articles["article_id"].to_list() == ["4"]
    # integer hits against string ids: nothing known (no cast that could match "1" with 1)
    candidates = snapshot.candidates(hits([0], [4]), 1, [[]], keep_per_query=5)
    assert candidates.n_model == 0
    assert RowFinder(rows()["article_id"])(np.array([6, 0, 1, 7])).tolist() == [4, -1, 0, -1]
    assert RowFinder(frame["article_id"])(np.array(["6", "0"], dtype=object)).tolist() == [4, -1]


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
    frame = rows().with_columns(pl.Series("product", ["P1", "P3", "P1", None, "P2"]))
    # the popular tier (2 and 3) holds P3 and P1 only: its codes must still be the whole catalogue's
    snapshot = CatalogueSnapshot.of(frame, n_popular=2, carried=["product"], coded=["product"])
    assert snapshot.carried.columns == ["article_id", "product", "product:code"]
    at = snapshot.candidates(hits([0, 0, 0, 0], [1, 3, 4, 2]), 1, [[]], keep_per_query=5).at
    codes = snapshot.codes("product", at).tolist()  # rows: 1, 3, 4, 2, then the popular 2, 3
    assert codes[0] == codes[1] and codes[3] not in (codes[0], -1) and codes[2] == -1  # P1, P1, null, P3
    assert codes[4:] == [codes[3], codes[1]]
    popular = dict(zip(snapshot.popular["article_id"], snapshot.popular["product:code"], strict=True))
    assert [popular[a] for a in (2, 3)] == [codes[3], codes[1]]  # the popular frame's codes too
    assert snapshot.codes("name", at) is None
