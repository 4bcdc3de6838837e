"""Issue D's quality bar: on the ``small`` preset (seed 42) the two towers' test-week recall@100 is at least twice
global popularity's and at least 0.7 of the oracle's (the generator's true purchase probabilities).

The whole protocol of ``training_pipeline retrieval`` (design §6): a fresh store, the time split (test = the last
7 days, validation = the 7 before, early stopping on validation recall@100), the test week scored over the whole
catalogue beside the baselines and the oracle on the same customers. Nothing is tuned on the test week.
"""

from __future__ import annotations

import time
from dataclasses import asdict

import polars as pl
import pytest

from recsys.config import load_settings
from recsys.data.oracle import Oracle
from recsys.data.sources import load_dataset, synthetic_dir
from recsys.pipeline.feature_job import backfill
from recsys.store import connect
from recsys.training.retrieval_job import METHOD, ORACLE, POPULARITY, TWO_TOWER, evaluate_test, load_retrieval_data
from recsys.training.two_tower import TwoTowerConfig, fit

# The defaults, with at most EPOCHS epochs to stay within the test budget.
EPOCHS = 4
CONFIG = TwoTowerConfig(epochs=EPOCHS, patience=EPOCHS, seed=42)


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    started = time.perf_counter()
    settings = load_settings(backend="local", home=tmp_path_factory.mktemp("small_home"), seed=42)
    dataset = load_dataset("synthetic:small", settings)
    project = connect(settings)
    backfill(project, dataset)
    data = load_retrieval_data(project)
    lines: list[str] = []
    model, _ = fit(
        CONFIG,
        data.train,
        data.val,
        data.articles,
        dataset.features,
        customers_df=data.customers,
        val_start=data.split.val_start,
        log=lines.append,
    )
    result, _ = evaluate_test(model, data, Oracle.from_dir(synthetic_dir(settings, "small")))
    print("\n".join(lines), f"\nconfig {asdict(CONFIG)}\n{result}\n{time.perf_counter() - started:.0f} s")
    return result


def _recall(table: pl.DataFrame, method: str) -> float:
    return table.filter(pl.col(METHOD) == method).get_column("recall@100").item()


# Measured on this seed (2 cores): recall@100 two-tower 0.3835, popularity 0.1911 (2.007x), oracle 0.5203 (0.737x);
# with 6 epochs 0.3848 (2.014x, 0.740x). The targets are asserted as stated: the margin over 2x is thin (0.003).


@pytest.mark.slow
def test_two_tower_recall_is_twice_popularity(table: pl.DataFrame) -> None:
    assert _recall(table, TWO_TOWER) >= 2.0 * _recall(table, POPULARITY)


@pytest.mark.slow
def test_two_tower_recall_is_at_least_seventy_percent_of_the_oracle(table: pl.DataFrame) -> None:
    assert _recall(table, TWO_TOWER) >= 0.7 * _recall(table, ORACLE)
