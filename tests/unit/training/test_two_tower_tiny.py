"""A short training on the ``tiny`` preset: learning happens, early stopping restores the best epoch, and the
test-week recall beats a random ranking of the catalogue by a wide margin."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from towerdata import Tiny

from recsys.training import retrieval_eval
from recsys.training.baselines import popularity_baseline
from recsys.training.retrieval_data import candidate_inputs, catalogue_rows, query_inputs
from recsys.training.retrieval_eval import Recommendations, recall
from recsys.training.retrieval_job import METHOD, POPULARITY, TWO_TOWER, RetrievalData, per_transaction_table
from recsys.training.splits import Split
from recsys.training.two_tower import TwoTowerConfig, fit, tower_function

# Measured with these settings: model recall@100 ~0.5 on the test week, random ~0.1, popularity ~0.36.
MARGIN = 0.2


@pytest.mark.slow
def test_short_training_beats_random_ranking(tiny: Tiny) -> None:
    lines: list[str] = []
    config = TwoTowerConfig(epochs=3, patience=3, seed=7)
    model, history = fit(config, tiny.train, tiny.val, tiny.articles, tiny.features, log=lines.append)
    print("\n".join(lines))
    assert len(history) == 3 and len(lines) == 3
    assert {"loss", "val_recall_at_100", "examples_per_s"} <= set(history[0])
    assert model.schema is not None
    query, candidate = tower_function(model.query_model), tower_function(model.candidate_model)
    # the best epoch's weights are back: validation recall, recomputed, is the best one seen
    val_metrics, _ = retrieval_eval.evaluate_retrieval(
        query, candidate, model.schema, tiny.train, tiny.val, tiny.articles
    )
    assert val_metrics["recall@100"] == pytest.approx(max(h["val_recall_at_100"] for h in history), abs=1e-9)

    history_rows = tiny.train.vstack(tiny.val)
    metrics, recs = retrieval_eval.evaluate_retrieval(
        query,
        candidate,
        model.schema,
        history_rows,
        tiny.test,
        tiny.articles,
        customers=tiny.customers,
        as_of=tiny.test_start,
    )
    truth = tiny.test.select("customer_id", "article_id")
    rng = np.random.default_rng(0)
    catalogue = tiny.articles.get_column("article_id").to_numpy()
    random = Recommendations(recs.customer_ids, np.stack([rng.permutation(catalogue)[:200] for _ in recs.customer_ids]))
    random_recall = recall(random, truth, (100,))["recall@100"]
    popular = popularity_baseline(recs.customer_ids, history_rows, tiny.test_start, 200, catalogue=catalogue)
    popular_recall = recall(popular, truth, (100,))["recall@100"]
    print(f"test week: model {metrics}\nrandom recall@100 {random_recall:.3f}, popularity {popular_recall:.3f}")
    assert recs.n == 200 and set(recs.customer_ids) == set(truth.get_column("customer_id"))
    assert metrics["recall@100"] > random_recall + MARGIN


@pytest.mark.slow
def test_per_row_validation_watches_each_rows_own_top_k_accuracy(tiny: Tiny) -> None:
    """The per-customer split's validation: every validation row queried from its own point-in-time features (not
    one as-of day, which for that split lies before most customers' history); the best epoch's weights return."""
    config = TwoTowerConfig(epochs=2, patience=2, seed=7)
    model, history = fit(config, tiny.train, tiny.val, tiny.articles, tiny.features, per_row=True, log=lambda _: None)
    assert model.schema is not None and "val_recall_at_100" not in history[0]
    query, candidate = tower_function(model.query_model), tower_function(model.candidate_model)
    queries = retrieval_eval.embed(query, query_inputs(tiny.val, model.schema))
    catalogue = retrieval_eval.embed(candidate, candidate_inputs(tiny.articles, model.schema))
    true_rows = catalogue_rows(tiny.val, tiny.articles)
    # brute force: the true article's rank among all catalogue scores, row by row
    scores = queries @ catalogue.T
    ranks = (scores > scores[np.arange(len(true_rows)), true_rows][:, None]).sum(axis=1)
    accuracy = float(np.mean(ranks < 100))
    assert accuracy == pytest.approx(max(h["val_top_100_accuracy"] for h in history), abs=1e-9)

    # The per-customer table scores each test row over the whole catalogue and over what its customer had not bought
    split = Split(tiny.val_start, tiny.test_start, tiny.test_start + timedelta(days=7), "per-customer", 0.1)
    data = RetrievalData(split, tiny.train, tiny.val, tiny.test, tiny.articles, tiny.customers)
    table = {row[METHOD]: row for row in per_transaction_table(model, data).iter_rows(named=True)}
    test_rows = catalogue_rows(tiny.test, tiny.articles)
    bought = catalogue_rows(tiny.train, tiny.articles)
    scorers = {
        TWO_TOWER: retrieval_eval.embed(query, query_inputs(tiny.test, model.schema)) @ catalogue.T,
        POPULARITY: np.tile(np.bincount(bought[bought >= 0], minlength=len(catalogue)), (len(test_rows), 1)),
    }
    past = tiny.train.vstack(tiny.val)
    customers = tiny.test.get_column("customer_id").to_list()
    owned = {c: catalogue_rows(past.filter(pl.col("customer_id") == c), tiny.articles) for c in set(customers)}
    for method, scores in scorers.items():
        true = scores[np.arange(len(test_rows)), test_rows]
        whole = (scores > true[:, None]).sum(axis=1)
        unseen = np.empty(len(test_rows), np.int64)
        for i, customer in enumerate(customers):
            shown = np.ones(len(catalogue), bool)
            shown[owned[customer]] = False
            shown[test_rows[i]] = True
            unseen[i] = (scores[i, shown] > true[i]).sum()
        assert table[method]["top_100_accuracy"] == pytest.approx(float(np.mean(whole < 100)), abs=1e-9)
        assert table[method]["top_100_accuracy_unseen"] == pytest.approx(float(np.mean(unseen < 100)), abs=1e-9)
        assert table[method]["top_10_accuracy_unseen"] > table[method]["top_10_accuracy"]
