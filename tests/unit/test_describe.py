"""describe() on a hand-made data set whose every number is worked out by hand below."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest
from rich.console import Console

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID, PRICE, QUANTITY, T_DAT, Dataset, FeatureSpec
from recsys.data.describe import describe, render_description

# day, customer, article, quantity
ROWS = [
    (1, "c1", 1, 1),
    (1, "c1", 1, 1),  # same pair, same day: not a repurchase
    (2, "c1", 1, 1),  # c1 bought article 1 on day 1: repurchase
    (2, "c2", 2, 3),
    (3, "c2", 1, 1),
    (5, "c3", 3, 1),
    (5, "c2", 2, 1),  # c2 bought article 2 on day 2: repurchase
    (3, "c1", 2, 1),
]


def _dataset(rows: list[tuple[int, str, int, int]] = ROWS) -> Dataset:
    transactions = pl.DataFrame(
        {
            T_DAT: [datetime(2024, 1, day, 10 + i) for i, (day, *_) in enumerate(rows)],
            CUSTOMER_ID: [r[1] for r in rows],
            ARTICLE_ID: [r[2] for r in rows],
            PRICE: [None] * len(rows),
            QUANTITY: [r[3] for r in rows],
        },
        schema_overrides={PRICE: pl.Float64, QUANTITY: pl.Int32},
    )
    articles = pl.DataFrame(
        {
            ARTICLE_ID: [1, 2, 3, 4, 5],
            "colour": ["red", "blue", "red", "green", None],
            "group": ["top", "bottom", None, "top", "top"],
            "name": ["a", "b", "c", "d", "e"],
        }
    )
    customers = pl.DataFrame({CUSTOMER_ID: ["c1", "c2", "c3", "c4"]})
    features = {
        "articles": {
            "colour": FeatureSpec("categorical"),
            "group": FeatureSpec("categorical"),
            "name": FeatureSpec("text"),
        }
    }
    return Dataset("hand", customers, articles, transactions, features)


def test_counts_and_dates() -> None:
    s = describe(_dataset())
    assert s["rows"] == {"customers": 4, "articles": 5, "transactions": 8}
    tx = s["transactions"]
    assert (tx["first_day"], tx["last_day"], tx["days"]) == ("2024-01-01", "2024-01-05", 5)  # 1st..5th inclusive
    assert (tx["active_customers"], tx["active_articles"]) == (3, 3)  # c4 and articles 4, 5 never sold
    assert tx["units"] == 10  # 8 rows, one of them 3 units


def test_sparsity() -> None:
    # distinct pairs: (c1,1) (c1,2) (c2,1) (c2,2) (c3,3) = 5, over 4 customers x 5 articles = 20 cells
    tx = describe(_dataset())["transactions"]
    assert tx["pairs"] == 5
    assert tx["sparsity"] == pytest.approx(1 - 5 / 20)


def test_transactions_per_customer() -> None:
    # c1: 4 rows, c2: 3, c3: 1 -> sorted [1, 3, 4]; mean 8/3, median 3, max 4;
    # p90 (linear): position 0.9 * 2 = 1.8 -> 3 + 0.8 * (4 - 3) = 3.8
    pc = describe(_dataset())["transactions"]["per_customer"]
    assert pc["mean"] == pytest.approx(8 / 3)
    assert pc["median"] == 3
    assert pc["p90"] == pytest.approx(3.8)
    assert pc["max"] == 4


def test_top_one_percent_share() -> None:
    # 5 articles -> ceil(0.05) = 1 article. Units: article 1 = 4, article 2 = 3 + 1 + 1 = 5, article 3 = 1.
    tx = describe(_dataset())["transactions"]
    assert tx["top_1pct_articles"] == 1
    assert tx["top_1pct_share"] == pytest.approx(5 / 10)


def test_repurchase_share() -> None:
    # two rows (c1 on day 2, c2 on day 5) re-buy a pair bought on an earlier day; same-day duplicates don't count
    assert describe(_dataset())["transactions"]["repurchase_share"] == pytest.approx(2 / 8)


def test_top_values_by_sales() -> None:
    # colour: red = article 1 (4) + article 3 (1) = 5, blue = article 2 (5): a tie, broken by value;
    # green and the null colour never sold. group: bottom 5, top 4, null (article 3) 1. Text features are skipped.
    top = describe(_dataset())["top_values"]
    assert list(top) == ["colour", "group"]
    assert top["colour"] == [{"value": "blue", "sales": 5}, {"value": "red", "sales": 5}]
    assert top["group"] == [{"value": "bottom", "sales": 5}, {"value": "top", "sales": 4}, {"value": None, "sales": 1}]


def test_unknown_ids_are_counted() -> None:
    s = describe(_dataset([*ROWS, (4, "zz", 9, 1)]))["transactions"]
    assert (s["unknown_customers"], s["unknown_articles"]) == (1, 1)
    assert describe(_dataset())["transactions"]["unknown_articles"] == 0


def test_empty_transactions() -> None:
    s = describe(_dataset([]))
    assert s["rows"]["transactions"] == 0 and s["transactions"] is None and s["top_values"] == {}
    console = Console(record=True, width=100)
    render_description(s, console)
    assert "no transactions" in console.export_text()


def test_render() -> None:
    console = Console(record=True, width=160)
    render_description(describe(_dataset()), console)
    text = console.export_text()
    assert "2024-01-01 .. 2024-01-05 (5 days)" in text
    assert "75.0000%" in text  # sparsity
    assert "25.0%" in text  # repurchase share
    assert "mean 2.67, median 3, p90 3.8, max 4" in text
    assert "blue (5), red (5)" in text
