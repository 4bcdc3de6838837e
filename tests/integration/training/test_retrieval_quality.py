"""Issue D's quality bar: on the ``small`` preset (seed 42) the two towers' test-week recall@100 is at least twice
global popularity's and at least 0.7 of the oracle's (the generator's true purchase probabilities). Beside the issue's
bars, the towers reach at least 0.8 of the *estimated* oracle's (the generator's model with each customer's tastes
fitted to their history: what the data allows), which stays below the oracle.

The whole protocol of ``training_pipeline retrieval`` (design §6): a fresh store, the time split (test = the last
7 days, validation = the 7 before, early stopping on validation recall@100), the test week scored over the whole
catalogue beside the baselines and the oracle on the same customers. Nothing is tuned on the test week.
"""

from __future__ import annotations

import polars as pl
import pytest
from smallrun import SmallRun

from recsys.training.retrieval_job import ESTIMATED_ORACLE, METHOD, ORACLE, POPULARITY, TWO_TOWER, evaluate_test


@pytest.fixture(scope="module")
def table(small_run: SmallRun) -> pl.DataFrame:
    result, _ = evaluate_test(small_run.model, small_run.data, small_run.oracle)
    print(result)
    return result


def _recall(table: pl.DataFrame, method: str) -> float:
    return table.filter(pl.col(METHOD) == method).get_column("recall@100").item()


# Measured on this seed (2 cores): recall@100 two-tower 0.3835, popularity 0.1911 (2.007x), oracle 0.5203 (0.737x);
# with 6 epochs 0.3848 (2.014x, 0.740x). The targets are asserted as stated: the margin over 2x is thin (0.003).
# The estimated oracle: 0.4324 (0.831x the oracle); the towers reach 0.887x of it.


@pytest.mark.slow
def test_two_tower_recall_is_twice_popularity(table: pl.DataFrame) -> None:
    assert _recall(table, TWO_TOWER) >= 2.0 * _recall(table, POPULARITY)


@pytest.mark.slow
def test_two_tower_recall_is_at_least_seventy_percent_of_the_oracle(table: pl.DataFrame) -> None:
    assert _recall(table, TWO_TOWER) >= 0.7 * _recall(table, ORACLE)


@pytest.mark.slow
def test_two_tower_recall_is_at_least_eighty_percent_of_what_the_data_allows(table: pl.DataFrame) -> None:
    assert 0.8 * _recall(table, ESTIMATED_ORACLE) <= _recall(table, TWO_TOWER)
    assert _recall(table, ESTIMATED_ORACLE) < _recall(table, ORACLE)
