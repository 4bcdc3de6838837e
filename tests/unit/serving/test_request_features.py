"""The serving-size feature function equals the training one, frame for frame: no train/serve skew.

Every comparison is ``assert_frame_equal`` with exact dtypes and exact values (nulls and NaNs told apart)
between :func:`~recsys.serving.request_features.request_features` and
:func:`~recsys.training.ranking_features.candidate_features` on the same inputs. Where the fast path must be
the one that answered, the ``fast`` fixture makes any hand-over to ``candidate_features`` fail the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import recsys.serving.request_features as request_module
from recsys.data.dataset import FeatureSpec
from recsys.serving.request_features import request_features
from recsys.training.ranking_features import RankerSchema, candidate_features, ranker_schema

D = datetime
AS_OF = D(2020, 1, 15)
FEATURES = {
    "customers": {
        "club_member_status": FeatureSpec("categorical"),
        "fashion_news_frequency": FeatureSpec("categorical"),
        "preferred_sections": FeatureSpec("multi_categorical"),  # a list: sorted and joined by "|"
        "age": FeatureSpec("numeric"),
        "active": FeatureSpec("numeric"),
        "postal_code": FeatureSpec("categorical"),  # id-like: not a ranker feature
    },
    "articles": {
        "product_type_name": FeatureSpec("categorical"),
        "colour_group_name": FeatureSpec("categorical"),
        "index_group_name": FeatureSpec("categorical"),
        "tags": FeatureSpec("multi_categorical"),
        "weight": FeatureSpec("numeric"),
        "product_code": FeatureSpec("categorical"),  # id-like
    },
}
AFFINITIES = ("product_type_name", "colour_group_name", "index_group_name")


def history_dtypes(affinities: Iterable[str]) -> dict[str, pl.DataType]:
    """The customers view's history dtypes that hand-made rows would not infer."""
    return {
        "last_article_ids": pl.List(pl.Int64),
        "last_article_gaps": pl.List(pl.Int32),
        "n_purchases": pl.Int32,
        "n_units": pl.Int32,
        "n_distinct_articles": pl.Int32,
        "preferred_sections": pl.List(pl.String),
        **{f"{a}_values": pl.List(pl.String) for a in affinities},
        **{f"{a}_shares": pl.List(pl.Float64) for a in affinities},
    }


def customers() -> pl.DataFrame:
    """The ``customers`` view's shape. c1: a full history (article 3 twice, a null id, a null affinity value
    and a null share); c2: attributes without history (null lists); c4: empty lists and a zero average price;
    c5: NaNs (an age, a share, the average price). c3 is not here (cold start)."""
    lists = {
        "product_type_name": (
            [["Dress", "Sweater", "MISSING"], None, [], ["Trousers"]],
            [[0.5, 0.25, 0.25], None, [], [1.0]],
        ),
        "colour_group_name": (
            [["Black", None, "White"], None, [], ["Blue", "Black"]],
            [[0.5, 0.3, None], None, [], [float("nan"), 0.0]],
        ),
        "index_group_name": ([["Ladieswear"], None, [], ["Menswear"]], [[1.0], None, [], [1.0]]),
    }
    return pl.DataFrame(
        {
            "customer_id": ["c1", "c2", "c4", "c5"],
            "club_member_status": ["ACTIVE", None, "PRE-CREATE", "ACTIVE"],
            "fashion_news_frequency": ["Regularly", "NONE", None, "Monthly"],
            "preferred_sections": [["Womens", "Divided"], None, [], ["Mens", None]],
            "age": [30.0, None, 51.0, float("nan")],
            "active": [1.0, 0.0, None, 1.0],
            "age_group": ["25-34", "unknown", "45-54", "unknown"],
            "postal_code": ["p1", "p2", "p4", "p5"],
            "last_article_ids": [[3, 1, 3, None, 5], None, [], [2]],
            "last_article_gaps": [[None, 0, 4, 7, None], None, [], [0]],
            "n_purchases": [5, None, 0, 1],
            "n_units": [6, None, 0, 1],
            "n_distinct_articles": [3, None, 0, 1],
            "last_purchase": [D(2020, 1, 10), None, D(2019, 3, 1, 18, 30), D(2020, 1, 14)],
            "avg_price": [20.0, None, 0.0, float("nan")],
            "price_index": [1.1, None, 0.9, 1.0],
            **{f"{a}_values": values for a, (values, _) in lists.items()},
            **{f"{a}_shares": shares for a, (_, shares) in lists.items()},
        },
        schema_overrides=history_dtypes(AFFINITIES),
    )


def articles() -> pl.DataFrame:
    """The ``ranking`` view's shape: attributes as strings (some null), popularity, a price (null, NaN, 0)."""
    return pl.DataFrame(
        {
            "article_id": [1, 2, 3, 4, 5, 6, 7],
            "product_code": ["p1", "p2", "p3", "p4", "p5", "p6", "p7"],
            "product_type_name": ["Dress", "Sweater", "Dress", "Trousers", None, "Sweater", "Shorts"],
            "colour_group_name": ["Black", "White", None, "Blue", "Black", "Red", "Black"],
            "index_group_name": ["Ladieswear", "Ladieswear", "Ladieswear", "Menswear", "Divided", None, "Sport"],
            "tags": [["summer", "basic"], None, [], ["basic"], ["b", None, "a"], ["x"], None],
            "weight": [1.0, None, float("nan"), 4.0, 0.5, 2.0, 1.5],
            "units_7d": [5, 0, 1, None, 3, 2, 0],
            "units_30d": [9, 1, 1, None, 7, 4, 0],
            "units_prev_7d": [1, 0, 0, None, 2, 2, 0],
            "trend": [3.0, 1.0, 2.0, None, 1.5, float("nan"), 0.0],
            "article_price": [10.0, 30.0, 40.0, None, float("nan"), 0.0, 25.0],
        }
    )


def candidates(rows: list[tuple[str, int]] | None = None) -> pl.DataFrame:
    """Rows of (customer, article), customer by customer as retrieval gives them, with extra key columns."""
    rows = rows or [
        *(("c1", a) for a in (3, 2, 5, 99, 6, 1)),  # 99: not in the articles
        *(("c2", a) for a in (1, 3, 4)),
        *(("c3", a) for a in (2, 7)),  # c3: not in the customers
        *(("c4", a) for a in (3, 5)),
        *(("c5", a) for a in (6, 2, 4)),
        ("c1", 4),  # c1 again, after others
    ]
    n = len(rows)
    query = {c: q for q, c in enumerate(dict.fromkeys(c for c, _ in rows))}
    return pl.DataFrame(
        {
            "query": [query[c] for c, _ in rows],
            "customer_id": [c for c, _ in rows],
            "article_id": [a for _, a in rows],
            "retrieval_score": pl.Series(np.linspace(1.0, 0.0, n), dtype=pl.Float32),
            "retrieval_rank": pl.Series(range(n), dtype=pl.Int32),
            "week": [AS_OF] * n,
        }
    )


def schema() -> RankerSchema:
    return ranker_schema(FEATURES, customers(), articles())


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if request_features hands its inputs to candidate_features (the fast path must answer)."""

    def refuse(*args: object, **kwargs: object) -> pl.DataFrame:
        raise AssertionError("request_features delegated to candidate_features")

    monkeypatch.setattr(request_module, "candidate_features", refuse)


def same(
    cands: pl.DataFrame,
    custs: pl.DataFrame,
    arts: pl.DataFrame,
    ranker: RankerSchema,
    as_of: datetime | date = AS_OF,
) -> pl.DataFrame:
    """request_features' frame, checked equal to candidate_features' (dtypes, values, nulls, NaNs, order)."""
    expected = candidate_features(cands, custs, arts, as_of, ranker)
    got = request_features(cands, custs, arts, as_of, ranker)
    assert_frame_equal(got, expected, check_exact=True)
    return got


def with_string_ids(custs: pl.DataFrame, arts: pl.DataFrame, cands: pl.DataFrame) -> tuple[pl.DataFrame, ...]:
    """The same rows with string article ids (history lists too)."""
    as_string = pl.col("article_id").cast(pl.String)
    history = pl.col("last_article_ids").cast(pl.List(pl.String))
    return custs.with_columns(history), arts.with_columns(as_string), cands.with_columns(as_string)


# -- hand-made rows -------------------------------------------------------------------------------------------


def test_the_hand_made_rows_cover_what_they_claim(fast: None) -> None:
    ranker = schema()
    assert ranker.repurchase and ranker.recency and ranker.price and set(ranker.affinities) == set(AFFINITIES)
    assert {"preferred_sections", "tags"} <= set(ranker.categorical)  # a list on each side
    out = same(candidates(), customers(), articles(), ranker)
    rows = {(r["customer_id"], r["article_id"]): r for r in out.to_dicts()}
    assert (rows["c1", 3]["repurchase_count"], rows["c1", 3]["repurchase_position"]) == (2.0, 0.0)
    assert rows["c1", 5]["repurchase_position"] == 4.0  # after the null id
    assert rows["c1", 2]["repurchase_position"] is None and rows["c1", 2]["repurchase_count"] == 0.0
    # 5 days since c1's last purchase plus the smallest gap of 3's places, the null one skipped; 5's gap is null
    assert (rows["c1", 3]["repurchase_days"], rows["c1", 5]["repurchase_days"]) == (9.0, None)
    assert rows["c1", 2]["repurchase_days"] is None and rows["c3", 2]["repurchase_days"] is None
    assert rows["c1", 5]["product_type_name_share"] == 0.25  # a null type is MISSING, which c1 has
    assert rows["c1", 99]["colour_group_name_share"] == 0.0  # no article row: MISSING, which c1 never bought
    assert rows["c1", 3]["colour_group_name_share"] == 0.0  # c1's null value matches nothing
    assert rows["c2", 1]["product_type_name_share"] is None and rows["c4", 3]["product_type_name_share"] == 0.0
    assert rows["c3", 2]["club_member_status"] == "MISSING" and rows["c3", 2]["days_since_last_purchase"] is None
    assert np.isnan(rows["c5", 4]["colour_group_name_share"]) and rows["c5", 6]["colour_group_name_share"] == 0.0
    assert np.isnan(rows["c5", 2]["price_ratio"]) and np.isnan(rows["c4", 5]["price_ratio"])  # a NaN in, NaN out
    assert rows["c4", 3]["price_ratio"] == float("inf") and rows["c1", 4]["price_ratio"] is None  # 40 / 0; null price
    assert rows["c1", 4]["article_price"] is None and rows["c3", 2]["price_ratio"] is None
    assert rows["c1", 2]["tags"] == "MISSING" and rows["c1", 5]["tags"] == "a|b" and rows["c1", 3]["tags"] == ""
    assert rows["c1", 3]["preferred_sections"] == "Divided|Womens" and rows["c5", 6]["preferred_sections"] == "Mens"
    assert rows["c4", 3]["days_since_last_purchase"] == 319.0  # 2019-03-01 18:30 to 2020-01-15: 319.2 days


@pytest.mark.parametrize(
    "as_of",
    [AS_OF, date(2020, 1, 15), D(2020, 1, 15, 23, 59), D(2020, 1, 14, 23, 30, tzinfo=UTC), D(2019, 6, 1)],
    ids=["datetime", "date", "late", "aware", "before-purchases"],
)
def test_hand_made_rows_equal_candidate_features(fast: None, as_of: datetime | date) -> None:
    same(candidates(), customers(), articles(), schema(), as_of)


def test_string_ids(fast: None) -> None:
    custs, arts, cands = with_string_ids(customers(), articles(), candidates())
    same(cands, custs, arts, ranker_schema(FEATURES, custs, arts))


def test_integer_customer_ids(fast: None) -> None:
    as_number = pl.col("customer_id").str.slice(1).cast(pl.Int64)
    same(candidates().with_columns(as_number), customers().with_columns(as_number), articles(), schema())


def test_one_customer_as_serving_sends_it(fast: None) -> None:
    """One customer's candidates with the catalogue rows of exactly those articles, in order; then in another
    order and with more rows; then for a customer not there, and one without history."""
    ranker = schema()
    for customer in ("c1", "c2", "c3", "c4", "c5"):
        cands = candidates([(customer, a) for a in (6, 3, 1, 5, 2)])
        in_order = pl.DataFrame({"article_id": cands["article_id"]}).join(articles(), on="article_id", how="left")
        same(cands, customers().filter(pl.col("customer_id") == customer), in_order, ranker)
        same(cands, customers().filter(pl.col("customer_id") == customer), articles().reverse(), ranker)
        same(cands, customers().reverse(), articles(), ranker)


def test_without_price_repurchase_or_affinities(fast: None) -> None:
    bare_customers = customers().drop(
        "last_article_ids", *(f"{a}_{s}" for a in AFFINITIES for s in ("values", "shares"))
    )
    ranker = ranker_schema(FEATURES, bare_customers, articles(), exclude=["article_price", "last_purchase"])
    assert not ranker.price and not ranker.repurchase and not ranker.affinities
    same(candidates(), bare_customers, articles(), ranker)
    priced = ranker_schema(FEATURES, customers(), articles(), exclude=["article_price"])
    assert not priced.price and priced.repurchase
    same(candidates(), customers(), articles().drop("article_price"), priced)


def test_empty_and_missing_frames(fast: None) -> None:
    ranker = schema()
    nobody = pl.DataFrame({"customer_id": []}, schema={"customer_id": pl.String})  # cold start: no columns
    nothing = pl.DataFrame({"article_id": []}, schema={"article_id": pl.Int64})
    same(candidates(), nobody, articles(), ranker)
    same(candidates(), customers(), nothing, ranker)
    same(candidates(), nobody, nothing, ranker)
    same(candidates().head(0), customers(), articles(), ranker)
    same(candidates().head(0), nobody, nothing, ranker)
    same(candidates(), customers().head(0), articles().head(0), ranker)  # empty, with every column


def test_days_since_last_purchase_on_other_time_types(fast: None) -> None:
    """Fractions of a day either side of the cut-off (polars truncates toward zero), as ms and as dates."""
    ranker = schema()
    moments = [D(2020, 1, 13, 18), D(2020, 1, 16, 12), D(2020, 1, 14, 23, 59, 59, 999_000), D(2020, 1, 15)]
    custs = customers().with_columns(last_purchase=pl.Series(moments, dtype=pl.Datetime("us")))
    for dtype in (pl.Datetime("us"), pl.Datetime("ms"), pl.Date()):
        same(candidates(), custs.with_columns(pl.col("last_purchase").cast(dtype)), articles(), ranker)


def test_other_list_types_read_the_same(fast: None) -> None:
    """Float32 shares and Int32 history ids (the online store may narrow them) give the same features."""
    custs = customers().with_columns(
        pl.col("last_article_ids").cast(pl.List(pl.Int32)),
        *(pl.col(f"{a}_shares").cast(pl.List(pl.Float32)) for a in AFFINITIES),
    )
    same(candidates(), custs, articles(), schema())


# -- what candidate_features refuses, or reads its own way ----------------------------------------------------


def outcome(function: Callable[..., pl.DataFrame], *args: object) -> pl.DataFrame | tuple[type, str]:
    try:
        return function(*args)
    except Exception as exc:  # whatever happens, compared
        return type(exc), str(exc)


@pytest.mark.parametrize(
    "change",
    [
        "no rank",
        "feature taken",
        "customer lacks a column",
        "article lacks a column",
        "customer twice",
        "article twice",
        "value twice",
        "ragged lists",
        "ragged gaps",
        "gaps of floats",
        "unreferenced duplicates",
        "ns timestamps",
        "zoned timestamps",
        "int customer ids in a string frame",
        "null ids",
        "an input's name taken",
        "a helper's name taken",
    ],
)
def test_bad_or_unusual_inputs_give_what_candidate_features_gives(change: str) -> None:
    cands, custs, arts, ranker = candidates(), customers(), articles(), schema()
    if change == "no rank":
        cands = cands.drop("retrieval_rank")
    elif change == "feature taken":
        cands = cands.with_columns(pl.lit(1.0).alias("trend"))
    elif change == "customer lacks a column":
        custs = custs.drop("price_index")
    elif change == "article lacks a column":
        arts = arts.drop("units_7d")
    elif change == "customer twice":
        custs = pl.concat([custs, custs.head(1)])
    elif change == "article twice":
        arts = pl.concat([arts, arts.filter(pl.col("article_id") == 3)])
    elif change == "value twice":
        custs = custs.with_columns(
            product_type_name_values=pl.Series([["Dress", "Dress"], None, [], ["Trousers"]]),
            product_type_name_shares=pl.Series([[0.5, 0.5], None, [], [1.0]]),
        )
    elif change == "ragged lists":
        custs = custs.with_columns(product_type_name_shares=pl.Series([[0.5], None, [], [1.0]]))
    elif change == "ragged gaps":
        custs = custs.with_columns(last_article_gaps=pl.Series([[0, 1], None, [], [0]], dtype=pl.List(pl.Int32)))
    elif change == "gaps of floats":
        custs = custs.with_columns(pl.col("last_article_gaps").cast(pl.List(pl.Float64)))
    elif change == "unreferenced duplicates":
        c8 = custs.filter(pl.col("customer_id") == "c5").with_columns(customer_id=pl.lit("c8"))
        a70 = arts.filter(pl.col("article_id") == 7).with_columns(article_id=pl.lit(70, pl.Int64))
        custs, arts = pl.concat([custs, c8, c8]), pl.concat([arts, a70, a70])  # twice, but no candidate has them
    elif change == "ns timestamps":
        custs = custs.with_columns(pl.col("last_purchase").cast(pl.Datetime("ns")))
    elif change == "zoned timestamps":
        custs = custs.with_columns(pl.col("last_purchase").dt.replace_time_zone("UTC"))
    elif change == "int customer ids in a string frame":
        cands = cands.with_columns(customer_id=pl.col("query"))
    elif change == "null ids":
        cands = cands.with_columns(pl.when(pl.col("article_id") != 2).then(pl.col("article_id")).alias("article_id"))
    elif change == "an input's name taken":  # not a feature: candidate_features' join renames the input
        cands = cands.with_columns(last_purchase=pl.lit(D(2020, 1, 1)))
    elif change == "a helper's name taken":  # candidate_features' own column for the gaps
        cands = cands.with_columns(_gap=pl.lit(100, pl.Int32))
    expected = outcome(candidate_features, cands, custs, arts, AS_OF, ranker)
    got = outcome(request_features, cands, custs, arts, AS_OF, ranker)
    if isinstance(expected, pl.DataFrame):
        assert isinstance(got, pl.DataFrame)
        assert_frame_equal(got, expected, check_exact=True)
    else:
        assert got == expected


@pytest.mark.parametrize("dtype", [pl.Datetime("ns"), pl.Datetime("us", "UTC")])
def test_recency_alone_reads_other_timestamps_as_candidate_features_does(dtype: pl.DataType) -> None:
    ranker = ranker_schema(FEATURES, customers(), articles(), exclude=["days_since_last_purchase"])
    assert ranker.recency and "days_since_last_purchase" not in ranker.features
    custs = customers().with_columns(pl.col("last_purchase").cast(dtype))
    expected = outcome(candidate_features, candidates(), custs, articles(), AS_OF, ranker)
    got = outcome(request_features, candidates(), custs, articles(), AS_OF, ranker)
    if isinstance(expected, pl.DataFrame):
        assert isinstance(got, pl.DataFrame)
        assert_frame_equal(got, expected, check_exact=True)
    else:
        assert got == expected


# -- randomized rows ------------------------------------------------------------------------------------------

VALUES = {
    "product_type_name": ["Dress", "Sweater", "Trousers", "Shorts", "Bra", "MISSING"],
    "colour_group_name": ["Black", "White", "Blue", "Red", "Grey"],
    "index_group_name": ["Ladieswear", "Menswear", "Divided", "Sport"],
}


def random_inputs(seed: int, *, n_customers: int = 5, n_articles: int = 80, n: int = 300) -> tuple[pl.DataFrame, ...]:
    """Customers (one not there, one without history), a catalogue slice and ~n candidates, drawn with nulls,
    NaNs, repeated history ids and affinity lists that miss the candidates' values."""
    rng = np.random.default_rng(seed)

    def maybe(values: list[object], p: float = 0.15) -> list[object]:
        return [None if rng.random() < p else v for v in values]

    def choice(options: list[str], k: int) -> list[str]:
        return [options[i] for i in rng.integers(0, len(options), k)]

    ids = [f"c{seed}_{i}" for i in range(n_customers)]
    known = ids[:-1]  # the last one is not in the customers frame
    histories, gaps, value_lists, share_lists = [], [], {a: [] for a in VALUES}, {a: [] for a in VALUES}
    for i in range(len(known)):
        empty = i == 1
        history = None if empty else maybe(list(rng.integers(0, n_articles + 5, rng.integers(0, 21))), 0.05)
        histories.append(history)
        steps = rng.integers(0, 3, len(history or ())) * (rng.random(len(history or ())) < 0.5)
        gaps.append(None if history is None else maybe((np.cumsum(steps) - steps[:1].sum()).tolist(), 0.05))
        for a, options in VALUES.items():
            k = int(rng.integers(0, len(options) + 1))
            chosen = list(rng.choice(options, k, replace=False))
            weights = rng.dirichlet(np.ones(k)).tolist() if k else []
            value_lists[a].append(None if empty else maybe(chosen, 0.05))
            share_lists[a].append(None if empty else maybe(weights, 0.05))
    moments = [AS_OF - timedelta(days=float(d)) for d in rng.uniform(-3, 400, len(known))]
    custs = pl.DataFrame(
        {
            "customer_id": known,
            "club_member_status": maybe(choice(["ACTIVE", "PRE-CREATE", "LEFT CLUB"], len(known))),
            "fashion_news_frequency": maybe(choice(["NONE", "Regularly", "Monthly"], len(known))),
            "preferred_sections": [maybe(choice(["Womens", "Mens", "Divided"], 2)) for _ in known],
            "age": maybe(rng.uniform(16, 90, len(known)).tolist()),
            "active": maybe([float("nan") if rng.random() < 0.2 else 1.0 for _ in known]),
            "age_group": choice(["16-24", "25-34", "unknown"], len(known)),
            "postal_code": known,
            "last_article_ids": histories,
            "last_article_gaps": gaps,
            "n_purchases": maybe(rng.integers(0, 50, len(known)).tolist()),
            "n_units": maybe(rng.integers(0, 80, len(known)).tolist()),
            "n_distinct_articles": maybe(rng.integers(0, 40, len(known)).tolist()),
            "last_purchase": maybe(moments),
            "avg_price": maybe([0.0 if rng.random() < 0.2 else float(p) for p in rng.uniform(5, 60, len(known))]),
            "price_index": maybe(rng.uniform(0.5, 2, len(known)).tolist()),
            **{f"{a}_values": v for a, v in value_lists.items()},
            **{f"{a}_shares": v for a, v in share_lists.items()},
        },
        schema_overrides=history_dtypes(VALUES) | {"last_purchase": pl.Datetime("us")},
    )
    article_ids = rng.permutation(n_articles + 20)[:n_articles]  # some candidates are not in this slice
    arts = pl.DataFrame(
        {
            "article_id": article_ids.astype(np.int64),
            "product_code": [f"p{a}" for a in article_ids],
            **{a: maybe(choice([o for o in options if o != "MISSING"], n_articles)) for a, options in VALUES.items()},
            "tags": [
                maybe(choice(["a", "b", "c"], int(rng.integers(0, 3)))) if rng.random() > 0.1 else None
                for _ in article_ids
            ],
            "weight": maybe([float("nan") if rng.random() < 0.1 else float(w) for w in rng.uniform(0, 3, n_articles)]),
            "units_7d": maybe(rng.integers(0, 100, n_articles).tolist()),
            "units_30d": maybe(rng.integers(0, 300, n_articles).tolist()),
            "units_prev_7d": maybe(rng.integers(0, 100, n_articles).tolist()),
            "trend": maybe(rng.uniform(0, 5, n_articles).tolist()),
            "article_price": maybe([0.0 if rng.random() < 0.1 else float(p) for p in rng.uniform(5, 60, n_articles)]),
        },
        schema_overrides={"units_7d": pl.Int64, "units_30d": pl.Int64, "units_prev_7d": pl.Int64},
    )
    per_customer = rng.multinomial(n, np.ones(n_customers) / n_customers)
    rows = [(c, int(a)) for c, k in zip(ids, per_customer, strict=True) for a in rng.integers(0, n_articles + 20, k)]
    return custs, arts, candidates(rows)


@pytest.mark.parametrize("seed", range(6))
def test_random_rows_equal_candidate_features(fast: None, seed: int) -> None:
    custs, arts, cands = random_inputs(seed)
    ranker = schema()
    same(cands, custs, arts, ranker)
    same(cands.sample(fraction=1.0, shuffle=True, seed=seed), custs, arts, ranker)  # customers interleaved
    string_customers, string_articles, string_candidates = with_string_ids(custs, arts, cands)
    same(string_candidates, string_customers, string_articles, ranker)


# -- the tiny synthetic preset --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_state(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, pl.DataFrame, RankerSchema, D]:
    """The tiny preset's customers and catalogue as of its last week (the rows serving reads) and its schema."""
    from recsys.config import load_settings
    from recsys.data.sources import load_dataset
    from recsys.pipeline.feature_job import backfill
    from recsys.pipeline.views import ARTICLES_VIEW, CUSTOMERS_VIEW, RETRIEVAL_VIEW
    from recsys.store import connect
    from recsys.training.ranking_data import week_state

    settings = load_settings(backend="local", home=Path(tmp_path_factory.mktemp("tiny_home")))
    dataset = load_dataset("synthetic:tiny", settings)
    project = connect(settings)
    backfill(project, dataset)
    fs = project.feature_store
    rows, _ = fs.get_feature_view(*RETRIEVAL_VIEW).training_data()
    articles_view, _ = fs.get_feature_view(*ARTICLES_VIEW).training_data()
    customers_view, _ = fs.get_feature_view(*CUSTOMERS_VIEW).training_data()
    as_of = rows.get_column("t_dat").max() - timedelta(days=6)
    transactions = rows.select("customer_id", "article_id", "t_dat", "price", "quantity")
    state, catalogue = week_state(transactions, customers_view, articles_view, as_of)
    return state, catalogue, ranker_schema(dataset.features, state, catalogue), as_of


def test_tiny_preset_requests(fast: None, tiny_state: tuple[pl.DataFrame, pl.DataFrame, RankerSchema, D]) -> None:
    """Requests of one and of five customers (mostly with histories) on the preset's own rows and schema."""
    state, catalogue, ranker, as_of = tiny_state
    assert ranker.repurchase and ranker.price and len(ranker.affinities) >= 3 and len(ranker.categorical) >= 10
    rng = np.random.default_rng(7)
    buyers = state.filter(pl.col("last_article_ids").list.len() > 3).get_column("customer_id")
    article_ids = catalogue.get_column("article_id").to_numpy()
    for size in (1, 1, 5, 5):
        chosen = [buyers[int(i)] for i in rng.integers(0, buyers.len(), size)]
        rows = []
        for customer in dict.fromkeys(chosen):
            history = state.filter(pl.col("customer_id") == customer).get_column("last_article_ids")[0].to_list()
            picks = [*history[:10], *rng.choice(article_ids, 110, replace=False).tolist()]
            rows += [(customer, int(a)) for a in dict.fromkeys(picks)]
        cands = candidates(rows)
        custs = state.filter(pl.col("customer_id").is_in(chosen))
        served = pl.DataFrame({"article_id": cands["article_id"].unique(maintain_order=True)})
        same(cands, custs, served.join(catalogue, on="article_id", how="left"), ranker, as_of)  # as serving reads
        same(cands, custs, catalogue.sample(fraction=1.0, shuffle=True, seed=size), ranker, as_of)  # every row
