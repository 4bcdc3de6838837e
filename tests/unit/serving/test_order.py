"""The order stage on hand-made candidates: every rule checked against the answer worked out by hand."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recsys.serving import order as order_module
from recsys.serving.options import ServingOptions
from recsys.serving.order import order
from recsys.serving.retrieve import positions


@pytest.fixture(autouse=True, params=["numpy sort", "polars sort"])
def sort_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test on both sorts: numpy's (a request's rows) and polars' (from ``_POLARS_SORT_FROM`` rows)."""
    if request.param == "polars sort":
        monkeypatch.setattr(order_module, "_POLARS_SORT_FROM", 0)
    return request.param


def candidates() -> pl.DataFrame:
    """Query 0: model articles 1-5 and popular 6, 1; query 1: only popular articles 6, 1, 7.

    Articles 1 and 2 are variants of product P1; 3 and 4 are dresses like 1; 5 has no product code.
    """
    rows = [
        # query, article, score, tier, rank, product, type
        (0, 1, 0.9, 0, 0, "P1", "Dress"),
        (0, 2, 0.95, 0, 1, "P1", "Dress"),  # best score, same product as 1: 2 is kept, 1 dropped
        (0, 3, 0.5, 0, 2, "P3", "Dress"),
        (0, 4, 0.5, 0, 3, "P4", "Dress"),  # ties with 3 on score: retrieval rank decides
        (0, 5, 0.1, 0, 4, None, "Top"),
        (0, 6, 99.0, 1, 0, "P6", "Top"),  # popular tier comes after every model article
        (0, 1, 50.0, 1, 1, "P1", "Dress"),  # already in the model tier
        (1, 6, 99.0, 1, 0, "P6", "Top"),
        (1, 1, 50.0, 1, 1, "P1", "Dress"),
        (1, 7, 10.0, 1, 2, "P7", "Shoe"),
    ]
    names = ["query", "article_id", "score", "tier", "retrieval_rank", "product_code", "product_type_name"]
    return pl.DataFrame(rows, schema=names, orient="row").with_columns(
        pl.col("tier").cast(pl.Int8), pl.col("retrieval_rank").cast(pl.Int32)
    )


def answers(frame: pl.DataFrame) -> dict[int, list[int]]:
    grouped = frame.group_by("query", maintain_order=True).agg("article_id")
    return dict(zip(grouped["query"].to_list(), grouped["article_id"].to_list(), strict=True))


def test_tiers_scores_products_and_top_k() -> None:
    out = order(candidates(), np.array([10, 2]), ServingOptions())
    assert answers(out) == {0: [2, 3, 4, 5, 6], 1: [6, 1]}
    assert out["position"].to_list() == [0, 1, 2, 3, 4, 0, 1]


def test_cap_per_type() -> None:
    out = order(candidates(), np.array([10, 10]), ServingOptions(max_per_type=1))
    assert answers(out) == {0: [2, 5], 1: [6, 1, 7]}  # one dress, one top per answer


def test_without_product_rule_every_variant_may_show() -> None:
    out = order(candidates(), np.array([3, 1]), ServingOptions(group_column=""))
    assert answers(out) == {0: [2, 1, 3], 1: [6]}


def test_empty() -> None:
    out = order(candidates().head(0), np.array([5]), ServingOptions())
    assert out.height == 0 and "position" in out.columns


def test_positions() -> None:
    assert positions(np.array([0, 0, 0, 2, 2, 5])).tolist() == [0, 1, 2, 0, 1, 0]
    assert positions(np.array([], dtype=np.int64)).tolist() == []


def test_string_ids_and_exact_ties_order_by_article_id() -> None:
    frame = candidates().with_columns(pl.format("a{}", "article_id").alias("article_id"))
    assert answers(order(frame, np.array([10, 2]), ServingOptions())) == {
        0: ["a2", "a3", "a4", "a5", "a6"],
        1: ["a6", "a1"],
    }
    tied = frame.head(2).with_columns(pl.lit(0.5).alias("score"), pl.lit(0, pl.Int32).alias("retrieval_rank"))
    out = order(tied.reverse(), np.array([5]), ServingOptions(group_column=""))
    assert out["article_id"].to_list() == ["a1", "a2"]


def test_both_sorts_agree_on_many_queries_with_ties(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    n = 30_000
    frame = pl.DataFrame(
        {
            "query": np.sort(rng.integers(0, 300, n)),
            "article_id": rng.integers(0, 400, n),  # repeats within a query
            "score": rng.integers(0, 5, n) / 4,  # many exact ties
            "tier": rng.integers(0, 2, n).astype(np.int8),
            "retrieval_rank": rng.integers(0, 3, n).astype(np.int32),
            "product_code": pl.Series(rng.integers(0, 150, n)).set(pl.Series(rng.random(n) < 0.05), None),
            "product_type_name": rng.choice(["Dress", "Top", "Shoe"], n),
        }
    )
    options = ServingOptions(max_per_type=2)
    top = rng.integers(1, 15, 300)
    monkeypatch.setattr(order_module, "_POLARS_SORT_FROM", 10**9)
    by_numpy = order(frame, top, options)
    monkeypatch.setattr(order_module, "_POLARS_SORT_FROM", 0)
    by_polars = order(frame, top, options)
    assert by_numpy.height > 1000 and by_numpy.equals(by_polars)


def test_carried_codes_are_the_keys_when_present() -> None:
    frame = candidates()
    coded = frame.with_columns(pl.col("product_code").rank("dense").cast(pl.Int64).alias("product_code:code"))
    assert answers(order(coded, np.array([10, 2]), ServingOptions())) == {0: [2, 3, 4, 5, 6], 1: [6, 1]}
    # codes that put article 4 in article 3's product: the codes decide, not the strings
    code = pl.col("product_code:code")
    merged = coded.with_columns(
        pl.when(pl.col("article_id").is_in([3, 4])).then(99).otherwise(code).alias(code.meta.output_name())
    )
    assert answers(order(merged, np.array([10, 2]), ServingOptions())) == {0: [2, 3, 5, 6], 1: [6, 1]}


def test_wide_integer_ids_are_compacted_not_overflowed() -> None:
    # with ids 0, 4 and 2**62, (query, id) pairs coded as query * (2**62 + 1) + id would wrap: (4, 0) == (0, 4)
    frame = pl.DataFrame(
        {
            "query": [0, 0, 1, 2, 3, 4],
            "article_id": [4, 2**62, 0, 0, 0, 0],
            "score": [0.9, 0.8, 0.5, 0.5, 0.5, 0.5],
            "tier": pl.Series([0] * 6, dtype=pl.Int8),
            "retrieval_rank": pl.Series([0, 1, 0, 0, 0, 0], dtype=pl.Int32),
        }
    )
    out = order(frame, np.full(5, 5), ServingOptions(group_column=""))
    assert answers(out) == {0: [4, 2**62], 1: [0], 2: [0], 3: [0], 4: [0]}
    wide = frame.with_columns(pl.Series("article_id", [4, 2**63 - 1, -(2**63) + 1, 0, 0, 0]))  # a span past int64
    assert answers(order(wide, np.full(5, 5), ServingOptions(group_column="")))[0] == [4, 2**63 - 1]
