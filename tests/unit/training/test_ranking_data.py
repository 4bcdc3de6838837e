"""The ranking dataset: weeks, labels, point in time on hand-made purchases, and no label leak on the tiny preset."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
import rankdata
from sklearn.metrics import roc_auc_score
from towerdata import Tiny

from recsys.data.dataset import FeatureSpec
from recsys.training.ranking_data import (
    LABEL,
    N_TRUTH,
    WEEK,
    RankingData,
    RankingDataError,
    RankingWeeks,
    ranking_dataset,
    ranking_week,
    week_state,
)
from recsys.training.ranking_features import ARTICLE_PRICE, RankerSchema, candidate_features, ranker_schema
from recsys.training.retrieval_eval import Recommendations
from recsys.training.splits import Split

D = datetime
WEEK_START = D(2020, 1, 8)  # the week Jan 8 .. Jan 14
FEATURES = {
    "customers": {"club_member_status": FeatureSpec("categorical"), "age": FeatureSpec("numeric")},
    "articles": {"product_type_name": FeatureSpec("categorical"), "colour_group_name": FeatureSpec("categorical")},
}


def purchases() -> pl.DataFrame:
    rows = [
        ("c1", 1, D(2020, 1, 2), 10.0),
        ("c2", 2, D(2020, 1, 5), 20.0),
        ("c2", 1, D(2020, 1, 8), 11.0),  # first day of the week: a label, never a feature
        ("c1", 2, D(2020, 1, 9), 99.0),  # in the week
        ("c1", 3, D(2020, 1, 20), 30.0),  # a later week
        ("c3", 4, D(2020, 1, 3), 40.0),  # c3 does not buy in the week
    ]
    frame = pl.DataFrame(rows, schema=["customer_id", "article_id", "t_dat", "price"], orient="row")
    return frame.with_columns(pl.lit(1, pl.Int32).alias("quantity"))


def customers() -> pl.DataFrame:
    return pl.DataFrame(
        {"customer_id": ["c1", "c2", "c3"], "club_member_status": ["ACTIVE", "PRE", "ACTIVE"]}
    ).with_columns(age=pl.Series([30.0, 40.0, None]))


def articles() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "article_id": [1, 2, 3, 4],
            "product_type_name": ["Dress", "Sweater", "Dress", "Trousers"],
            "colour_group_name": ["Black", "White", "Black", "Blue"],
        }
    )


class Generator:
    """A stand-in retrieval: the same fixed candidates for everyone; records what it was given."""

    def __init__(self, article_ids: list[int]) -> None:
        self.article_ids = article_ids
        self.calls: list[tuple[pl.DataFrame, pl.DataFrame, datetime, int]] = []

    def __call__(self, customers: pl.DataFrame, past: pl.DataFrame, as_of: datetime, n: int) -> Recommendations:
        self.calls.append((customers, past, as_of, n))
        ids = np.tile(np.array(self.article_ids[:n]), (customers.height, 1))
        scores = np.tile(-np.arange(ids.shape[1], dtype=np.float32), (customers.height, 1))
        return Recommendations(customers.get_column("customer_id").to_numpy(), ids, scores)


def schema() -> RankerSchema:
    state, catalogue = week_state(purchases(), customers(), articles(), WEEK_START)
    return ranker_schema(FEATURES, state, catalogue)


def test_weeks_follow_the_evaluation_protocol() -> None:
    weeks = RankingWeeks.ending(D(2020, 9, 22, 13), n_train_weeks=3)
    assert weeks.test == D(2020, 9, 16) and weeks.validation == D(2020, 9, 9)
    assert weeks.train == (D(2020, 8, 19), D(2020, 8, 26), D(2020, 9, 2))
    with pytest.raises(ValueError, match="n_train_weeks"):
        RankingWeeks.ending(D(2020, 9, 22), 0)


def test_the_weeks_of_a_time_split_are_its_validation_and_test_weeks() -> None:
    split = Split.before(D(2020, 9, 23))
    weeks = RankingWeeks.of_split(split, n_train_weeks=3)
    assert (weeks.validation, weeks.test) == (split.val_start, split.test_start)
    # what the ranker of `training_pipeline all` got from the last purchase day (13:00 on the split's last day)
    assert weeks == RankingWeeks.ending(D(2020, 9, 22, 13), n_train_weeks=3)
    random = Split(split.val_start, split.test_start, split.end, "random", 0.2, 7)
    with pytest.raises(RankingDataError, match=r"random split \(20% .* in sample: rank a run trained on the time"):
        RankingWeeks.of_split(random)
    with pytest.raises(RankingDataError, match="7-day validation and test weeks, not train < 2020-09-13"):
        RankingWeeks.of_split(Split.before(D(2020, 9, 23), test_days=3))


def test_a_week_sees_only_what_happened_before_it() -> None:
    generate = Generator([1, 2, 3, 4])
    rows = ranking_week(generate, purchases(), customers(), articles(), WEEK_START, schema(), n=4)
    # the generator got the week's buyers and the purchases before the week, nothing later
    (who, past, as_of, n), *_ = generate.calls
    assert who.get_column("customer_id").to_list() == ["c1", "c2"] and as_of == WEEK_START and n == 4
    assert past.get_column("t_dat").max() < WEEK_START
    assert who.get_column("n_purchases").to_list() == [1, 1]  # their state as of the week start
    by = {(r["customer_id"], r["article_id"]): r for r in rows.to_dicts()}
    assert rows.height == 8 and set(rows.get_column(WEEK)) == {WEEK_START}
    # labels: c1 bought 2 and c2 bought 1 in the week; 3 (bought later) is a negative
    assert {k for k, r in by.items() if r[LABEL] == 1} == {("c1", 2), ("c2", 1)}
    assert by["c1", 1][N_TRUTH] == 1 and by["c2", 4][N_TRUTH] == 1
    # history: only the purchases before Jan 8
    assert by["c1", 1]["n_purchases"] == 1 and by["c2", 1]["n_purchases"] == 1
    assert by["c1", 1]["days_since_last_purchase"] == 6 and by["c2", 1]["days_since_last_purchase"] == 3
    # repurchase: c2's Jan 8 purchase of 1 and c1's Jan 9 purchase of 2 are not in their lists yet
    assert by["c2", 1]["repurchase_count"] == 0 and by["c2", 2]["repurchase_count"] == 1
    assert by["c1", 2]["repurchase_count"] == 0 and by["c1", 1]["repurchase_count"] == 1
    # affinity: c1 has only bought a dress before the week
    assert by["c1", 3]["product_type_name_share"] == 1.0 and by["c1", 2]["product_type_name_share"] == 0.0
    # popularity and price: the in-week sales of 1 and 2 (Jan 8, Jan 9 at 99.0) do not count
    assert by["c1", 1]["units_7d"] == 1 and by["c1", 2]["units_7d"] == 1 and by["c1", 3]["units_30d"] == 0
    assert by["c1", 2][ARTICLE_PRICE] == 20.0 and by["c1", 3][ARTICLE_PRICE] is None


def test_missed_purchases_are_not_added() -> None:
    rows = ranking_week(Generator([3, 1]), purchases(), customers(), articles(), WEEK_START, schema(), n=2)
    # c1 bought 2, which retrieval did not return: c1 has no positive row, but its truth count says 1
    assert rows.filter(pl.col("customer_id") == "c1").get_column(LABEL).to_list() == [0, 0]
    assert rows.get_column(LABEL).sum() == 1 and set(rows.get_column(N_TRUTH)) == {1}


def test_weeks_without_positives_fail_clearly() -> None:
    with pytest.raises(RankingDataError, match="2020-01-08: none of the 2 purchases"):
        ranking_week(Generator([4, 3]), purchases(), customers(), articles(), WEEK_START, schema(), n=2)
    with pytest.raises(RankingDataError, match="2020-02-01: no purchases"):
        ranking_week(Generator([1]), purchases(), customers(), articles(), D(2020, 2, 1), schema(), n=1)


def test_a_training_week_without_positives_is_skipped_but_not_validation_or_test() -> None:
    week = [D(2020, 1, 1) + timedelta(days=7 * i) for i in range(4)]
    rows = [
        ("c3", 4, week[0] + timedelta(days=1)),  # retrieval gives 1 and 2: nothing to learn in week 0
        ("c2", 1, week[1] + timedelta(days=2)),
        ("c1", 2, week[2] + timedelta(days=3)),
        ("c2", 2, week[3] + timedelta(days=4)),
    ]
    bought = pl.DataFrame(rows, schema=["customer_id", "article_id", "t_dat"], orient="row")
    bought = bought.with_columns(pl.lit(1, pl.Int32).alias("quantity"), pl.lit(10.0).alias("price"))

    def dataset(train: tuple[datetime, ...], validation: datetime, log: list[str]) -> RankingData:
        weeks = RankingWeeks(train, validation, week[3])
        generate = Generator([1, 2])
        return ranking_dataset(generate, bought, customers(), articles(), FEATURES, weeks=weeks, n=2, log=log.append)

    lines: list[str] = []
    data = dataset((week[0], week[1]), week[2], lines)
    assert set(data.train.get_column(WEEK)) == {week[1]} and data.train.get_column(LABEL).sum() == 1
    assert data.skipped == (week[0],)
    assert any(line.startswith("ranking week 2020-01-01 skipped: week starting 2020-01-01: none of") for line in lines)
    with pytest.raises(RankingDataError, match="no training week has ranking rows: week starting 2020-01-01"):
        dataset((week[0],), week[2], [])
    with pytest.raises(RankingDataError, match="2020-01-01: none of the 1 purchases"):
        dataset((week[1],), week[0], [])  # a validation week without positives stops the run


# -- the leak test --------------------------------------------------------------------------------------------

NULL_AUC_BAND = 0.1  # a feature's null indicator alone must not tell positives from negatives better than this
MAX_AUC = 0.9  # no single feature may (almost) separate the labels: a real signal here stays below ~0.75
# Features whose null is itself a pair-level signal: "the candidate is not in the customer's last purchases"
# (leak_problems checks that they are null on the same rows, so that this is all their nulls say).
NULL_IS_SIGNAL = ("repurchase_position", "repurchase_days")


def leak_problems(rows: pl.DataFrame, schema: RankerSchema, n: int) -> list[str]:
    """What would show that positive rows were built differently from negative ones (empty = none found)."""
    problems = []
    customer_level = [*schema.customer_categorical, *schema.customer_numeric, *schema.history]
    article_level = [*schema.article_categorical, *schema.article_numeric, *schema.popularity]
    article_level += [ARTICLE_PRICE] if schema.price else []
    for keys, columns, what in (
        (["customer_id", WEEK], customer_level, "customer-week"),
        (["article_id", WEEK], article_level, "article-week"),
    ):
        counts = rows.group_by(keys).agg(pl.col(columns).n_unique())  # nulls count as a value
        problems += [f"{c} varies within one {what}" for c in columns if counts.get_column(c).max() > 1]
    sizes = rows.group_by("customer_id", WEEK).agg(pl.len(), pl.col("retrieval_rank").n_unique().alias("ranks"))
    if sizes.filter((pl.col("len") != n) | (pl.col("ranks") != n)).height:
        problems.append(f"a customer-week does not have exactly the {n} retrieved candidates")
    positives = rows.filter(pl.col(LABEL) == 1)
    if positives.get_column("retrieval_score").null_count() or positives.get_column("retrieval_rank").max() >= n:
        problems.append("positives without a retrieval score or rank were added")
    signals = [rows.get_column(f).is_null() for f in NULL_IS_SIGNAL if f in schema.features]
    if any((s != signals[0]).any() for s in signals):
        problems.append(f"{', '.join(NULL_IS_SIGNAL)} are null on different rows")
    label = rows.get_column(LABEL).to_numpy()
    for feature in schema.features:
        column = rows.get_column(feature)
        missing = (column == "MISSING") if feature in schema.categorical else column.is_null()
        if 0 < missing.sum() < rows.height and feature not in NULL_IS_SIGNAL:
            auc = roc_auc_score(label, missing.to_numpy())
            if abs(auc - 0.5) > NULL_AUC_BAND:
                problems.append(f"{feature}: null-indicator AUC {auc:.3f}")
        if feature not in schema.categorical:
            auc = roc_auc_score(label, column.fill_null(-1e30).to_numpy())
            if max(auc, 1 - auc) > MAX_AUC:
                problems.append(f"{feature}: separates the labels alone (AUC {auc:.3f})")
    return problems


def auc_table(rows: pl.DataFrame, schema: RankerSchema) -> pl.DataFrame:
    """Per feature: null rate among positives and negatives, null-indicator AUC, single-feature AUC (for the log)."""
    label = rows.get_column(LABEL).to_numpy()
    out = []
    for f in schema.features:
        col = rows.get_column(f)
        missing = ((col == "MISSING") if f in schema.categorical else col.is_null()).to_numpy()
        null_auc = roc_auc_score(label, missing) if 0 < missing.sum() < len(missing) else 0.5
        auc = None if f in schema.categorical else roc_auc_score(label, col.fill_null(-1e30).to_numpy())
        out.append((f, missing[label == 1].mean(), missing[label == 0].mean(), null_auc, auc))
    return pl.DataFrame(out, schema=["feature", "null_pos", "null_neg", "null_auc", "auc"], orient="row")


@pytest.mark.slow
def test_ranking_rows_do_not_leak_the_label(tiny: Tiny) -> None:
    built = rankdata.built(tiny, "tower")
    data, n = built.data, rankdata.N_CANDIDATES
    rows = pl.concat([data.train, data.validation, data.test])
    with pl.Config(tbl_rows=60, float_precision=3):
        print(f"\n{rows.height:,} rows, {rows.get_column(LABEL).sum():,} positives\n{auc_table(rows, data.schema)}")
    assert leak_problems(rows, data.schema, n) == []

    # One code path: every row's features, rebuilt from its keys alone (no label anywhere), are the same.
    for start in (*data.weeks.train, data.weeks.validation, data.weeks.test):
        week = rows.filter(pl.col(WEEK) == start)
        state, catalogue = week_state(built.transactions, tiny.customers, tiny.articles, start)
        keys = week.select("customer_id", "article_id", "retrieval_score", "retrieval_rank", WEEK)
        rebuilt = candidate_features(keys, state, catalogue, start, data.schema)
        assert rebuilt.equals(week.select(rebuilt.columns))

    # The checks have teeth: positives joined with the state as of the week's *end* (e.g. the latest customers
    # and ranking views instead of the point-in-time ones) are caught.
    start = data.weeks.validation
    week = data.validation
    end = start + timedelta(days=7)
    state, catalogue = week_state(built.transactions, tiny.customers, tiny.articles, end)
    keys = week.filter(pl.col(LABEL) == 1).select(
        "customer_id", "article_id", "retrieval_score", "retrieval_rank", WEEK
    )
    leaked = candidate_features(keys, state, catalogue, start, data.schema).join(
        week.select("customer_id", "article_id", LABEL, N_TRUTH), on=["customer_id", "article_id"]
    )
    leaky = pl.concat([week.filter(pl.col(LABEL) == 0), leaked.select(week.columns)])
    problems = leak_problems(leaky, data.schema, n)
    print("a leaky build is caught by:", problems)
    assert "n_purchases varies within one customer-week" in problems
    assert "units_7d varies within one article-week" in problems
