"""Validation rules: each rule stops a bad frame with group, rule, column and sample rows in the message."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest
from featdata import articles, day, transactions

from recsys.data.dataset import FeatureSpec
from recsys.errors import RecsysError
from recsys.features import (
    FeatureValidationError,
    Rule,
    customer_features,
    customer_history_events,
    rules_for,
    split_valid,
    transaction_features,
    validate,
)
from recsys.features.validation import gaps, in_range, not_null, references, unique
from recsys.store.errors import SchemaError, ValidationError

NOW = datetime(2020, 1, 10, 12)


def _fails(group: str, df: pl.DataFrame, rule: str, column: str, sample: str, **kw: object) -> FeatureValidationError:
    """Validate ``df`` with the group's rules and check the error names everything a person needs."""
    with pytest.raises(FeatureValidationError) as info:
        validate(df, group, rules_for(group, df, **kw))
    err = info.value
    message = str(err)
    assert message.startswith(f"{group}: rule '{rule}' failed on column '{column}'")
    assert sample in message  # a sample row is shown
    assert (err.group, err.rule.name, err.column) == (group, rule, column)
    assert 1 <= err.rows.height <= 5
    return err


def _tx() -> pl.DataFrame:
    return transaction_features(transactions([("c1", 10, day(1), 2, 3.0), ("c2", 20, day(2), 1, 4.0)]))


def _history() -> pl.DataFrame:
    return customer_history_events(transactions([("c1", 10, day(1)), ("c1", 20, day(2))]), articles())


def test_good_frames_pass_and_the_error_is_a_store_validation_error() -> None:
    assert validate(_tx(), "transactions", rules_for("transactions", _tx(), now=NOW)).equals(_tx())
    history = _history()
    assert validate(history, "customer_history", rules_for("customer_history", history, now=NOW, n_last=20)).height == 2
    assert issubclass(FeatureValidationError, ValidationError) and issubclass(FeatureValidationError, RecsysError)


def test_primary_key_not_null() -> None:
    df = pl.DataFrame({"customer_id": ["a", None], "age": [30.0, 40.0]})
    _fails("customers", df, "customer_id_not_null", "customer_id", "'age': 40.0")


def test_primary_key_unique() -> None:
    df = _tx().vstack(_tx().head(1))
    err = _fails("transactions", df, "primary_key_unique", "customer_id", "'customer_id': 'c1'")
    assert err.n_bad == 2  # both copies are shown as offending


def test_rules_that_all_bring_their_own_mask_check_the_frame() -> None:
    df = _tx().vstack(_tx().head(1))
    with pytest.raises(FeatureValidationError, match="primary_key_unique"):
        validate(df, "transactions", [unique(["customer_id", "article_id", "t_dat"])])
    good, bad = split_valid(df, [unique(["customer_id", "article_id", "t_dat"])])
    assert (good.height, bad.height) == (1, 2)


def test_the_gaps_rules_own_mask_equals_its_expression() -> None:
    rule = gaps("ids", "g")
    df = pl.DataFrame(
        {
            "ids": [[1, 2], [1, 2], [1], [1, 2], None, [], [1, 2, 3]],
            "g": [[0, 4], [0, 3, 5], [1], [0, None], [0], [], [0, 5, 2]],
        },
        schema={"ids": pl.List(pl.Int64), "g": pl.List(pl.Int32)},
    )
    assert rule.mask is not None
    assert rule.mask(df).to_list() == df.select(rule.check.fill_null(False)).to_series().to_list()
    assert rule.mask(df).to_list() == [True, False, False, True, False, False, False]


@pytest.mark.parametrize("ids", [["c1", "c3", "c1"], []])
def test_the_references_rules_own_mask_equals_its_expression(ids: list[str]) -> None:
    df = pl.DataFrame({"customer_id": ["c1", "c2", None, "c3", "c1"], "other": [1, 2, 3, 4, 5]})
    rule = references("customer_id", pl.Series("whatever", ids, dtype=pl.String), "customers")
    assert rule.mask is not None
    expected = df.select(rule.check.fill_null(False)).to_series().to_list()
    assert rule.mask(df).to_list() == expected
    assert expected == ([True, False, False, True, True] if ids else [False] * 5)
    as_numbers = pl.DataFrame({"customer_id": [1, None]})  # another id type: the expression decides (it refuses)
    for check in (rule.mask, lambda frame: frame.select(rule.check)):
        with pytest.raises(pl.exceptions.InvalidOperationError, match="is_in"):
            check(as_numbers)
    assert references("article_id", pl.Series([1, 2]), "articles").mask is None  # integers: the expression is faster


def test_price_not_negative() -> None:
    _fails("transactions", _tx().with_columns(price=pl.lit(-1.0)), "price_in_range", "price", "'price': -1.0")


@pytest.mark.parametrize("price", [float("nan"), float("inf")])
def test_price_is_a_finite_number(price: float) -> None:
    # NaN sorts above every number in polars: without the finiteness check it passes `price >= 0`
    _fails("transactions", _tx().with_columns(price=pl.lit(price)), "price_in_range", "price", "'price': ")
    unpriced = _tx().with_columns(price=pl.lit(None, pl.Float64))  # a missing price stays allowed
    assert validate(unpriced, "transactions", rules_for("transactions", unpriced)).height == 2


def test_quantity_at_least_one() -> None:
    bad = _tx().with_columns(quantity=pl.lit(0, dtype=pl.Int32))
    _fails("transactions", bad, "quantity_in_range", "quantity", "'quantity': 0")


def test_month_sin_within_unit_circle() -> None:
    bad = _tx().with_columns(month_sin=pl.lit(1.5))
    _fails("transactions", bad, "month_sin_in_range", "month_sin", "'month_sin': 1.5")


def test_t_dat_is_a_day_and_not_in_the_future() -> None:
    _fails(
        "transactions",
        _tx().with_columns(t_dat=pl.lit(day(1, hour=3))),
        "t_dat_is_day",
        "t_dat",
        "datetime(2020, 1, 1, 3, 0)",
    )
    late = _tx().with_columns(t_dat=pl.lit(datetime(2020, 1, 11)))
    _fails("transactions", late, "t_dat_not_future", "t_dat", "2020, 1, 11", now=NOW)


def test_ids_must_join() -> None:
    customer_ids = pl.Series(["c1", "c2"])
    err = _fails(
        "transactions",
        _tx(),
        "article_id_in_articles",
        "article_id",
        "'article_id': 20",
        customer_ids=customer_ids,
        article_ids=pl.Series([10]),
    )
    assert err.n_bad == 1
    _fails("transactions", _tx(), "customer_id_in_customers", "customer_id", "'c2'", customer_ids=pl.Series(["c1"]))


def test_age_range_and_age_group_values() -> None:
    _fails("customers", pl.DataFrame({"customer_id": ["a"], "age": [150.0]}), "age_in_range", "age", "150.0")
    bad_group = pl.DataFrame({"customer_id": ["a"], "age_group": ["teen"]})
    _fails("customers", bad_group, "age_group_allowed", "age_group", "'teen'")


def test_categoricals_not_empty_and_indicators_zero_or_one() -> None:
    spec = {"club_member_status": FeatureSpec("categorical"), "FN": FeatureSpec("numeric")}
    good = customer_features(pl.DataFrame({"customer_id": ["a"], "club_member_status": [None], "FN": [None]}), spec)
    validate(good, "customers", rules_for("customers", good, features=spec))  # MISSING is a value, not empty
    empty = good.with_columns(club_member_status=pl.lit(""))
    _fails("customers", empty, "club_member_status_not_empty", "club_member_status", "''", features=spec)
    _fails("customers", good.with_columns(fn_missing=pl.lit(2)), "fn_missing_allowed", "fn_missing", "2")


def test_history_last_articles_bounded_by_n() -> None:
    err = _fails("customer_history", _history(), "last_article_ids_length", "last_article_ids", "[20, 10]", n_last=1)
    assert err.n_bad == 1  # the first snapshot has one article


def test_history_gaps_start_at_zero_ascend_and_match_the_ids() -> None:
    history = _history()
    assert history.get_column("last_article_gaps").to_list() == [[0], [0, 1]]
    for bad, shown in (([[0], [1, 0]], "[1, 0]"), ([[0], [0]], "[0]"), ([[0], [0, -1]], "[0, -1]")):
        rows = history.with_columns(last_article_gaps=pl.Series(bad, dtype=pl.List(pl.Int32)))
        err = _fails("customer_history", rows, "last_article_gaps_gaps", "last_article_gaps", shown)
        assert err.n_bad == 1


def test_history_shares_in_unit_interval_summing_to_one() -> None:
    bad = _history().with_columns(index_group_name_shares=pl.lit([0.5], dtype=pl.List(pl.Float64)))
    _fails("customer_history", bad, "index_group_name_shares_shares", "index_group_name_shares", "[0.5]")


def test_history_point_in_time_last_purchase_before_as_of() -> None:
    leaky = _history().with_columns(as_of=pl.col("last_purchase"))
    _fails("customer_history", leaky, "last_purchase_before_as_of", "last_purchase", "'as_of': datetime")


def test_history_distinct_articles_at_most_purchases() -> None:
    bad = _history().with_columns(n_distinct_articles=pl.lit(9, dtype=pl.Int32))
    _fails("customer_history", bad, "n_distinct_articles_at_most_n_purchases", "n_distinct_articles", "9")


def test_event_time_at_most_tomorrow() -> None:
    late = _history().with_columns(pl.col("as_of", "last_purchase") + timedelta(days=10))  # bought 11 and 12 Jan
    _fails("customer_history", late, "last_purchase_not_future", "last_purchase", "2020, 1, 11", now=NOW)
    pop = pl.DataFrame(
        {
            "article_id": [1],
            "as_of": [datetime(2020, 1, 12)],
            "units_7d": [0],
            "units_30d": [0],
            "units_prev_7d": [0],
            "trend": [1.0],
        }
    )
    _fails("article_popularity", pop, "as_of_not_future", "as_of", "2020, 1, 12", now=NOW)
    validate(
        pop.with_columns(as_of=pl.lit(datetime(2020, 1, 11))),
        "article_popularity",
        rules_for("article_popularity", pop, now=NOW),
    )  # tomorrow is fine


def test_popularity_counts_and_trend() -> None:
    pop = pl.DataFrame(
        {
            "article_id": [1, 2],
            "as_of": [day(3)] * 2,
            "units_7d": [5, 0],
            "units_30d": [4, 0],
            "units_prev_7d": [0, 0],
            "trend": [6.0, 0.0],
        }
    )
    _fails("article_popularity", pop, "units_7d_at_most_units_30d", "units_7d", "'units_7d': 5")
    _fails("article_popularity", pop.head(0).vstack(pop.tail(1)), "trend_positive", "trend", "'trend': 0.0")


def test_split_valid_keeps_good_rows_and_names_every_failed_rule() -> None:
    df = pl.DataFrame({"customer_id": ["a", None, "c"], "age": [30.0, 200.0, -5.0]})
    rules = rules_for("customers", df)
    good, bad = split_valid(df, rules)
    assert good["customer_id"].to_list() == ["a"]
    assert bad["reason"].to_list() == ["customer_id_not_null; age_in_range", "age_in_range"]
    assert bad.columns == [*df.columns, "reason"]


def test_rules_are_data_and_misuse_fails_clearly() -> None:
    rules = rules_for("transactions", _tx(), now=NOW)
    assert all(isinstance(r, Rule) and r.description for r in rules)
    assert {"primary_key_unique", "quantity_in_range", "t_dat_not_future"} <= {r.name for r in rules}
    with pytest.raises(ValueError, match="unknown feature group"):
        rules_for("nope", _tx())
    with pytest.raises(SchemaError, match="needs column 'age'"):
        validate(_tx(), "transactions", [in_range("age", 0, 1)])
    assert not_null("x").check.meta.root_names() == ["x"]


def test_rules_comparing_two_columns_apply_only_when_both_exist() -> None:
    partial = _history().drop("n_purchases")
    names = {r.name for r in rules_for("customer_history", partial)}
    assert "n_distinct_articles_at_most_n_purchases" not in names and "n_distinct_articles_in_range" in names
    rule = next(r for r in rules_for("customer_history", _history()) if r.name.endswith("_at_most_n_purchases"))
    assert sorted(rule.columns) == ["n_distinct_articles", "n_purchases"]
    with pytest.raises(SchemaError, match="needs column 'n_purchases'"):
        validate(partial, "customer_history", [rule])
