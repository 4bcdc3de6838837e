"""Ranking datasets on the ``tiny`` preset, built once per test session and shared by the ranker tests.

Two candidate generators: the repurchase + popularity baseline (no TensorFlow, a second) and a tiny two-tower
model trained as in ``test_two_tower_tiny.py`` (~10 s). Imported by the tests of this folder as ``rankdata``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl
from towerdata import Tiny

from recsys.training.baselines import repurchase_baseline
from recsys.training.ranking_data import CandidateGenerator, RankingData, RankingWeeks, ranking_dataset
from recsys.training.retrieval_eval import Recommendations

N_CANDIDATES = 100
N_TRAIN_WEEKS = 6


@dataclass(frozen=True)
class Built:
    """A ranking dataset and what it was built from."""

    data: RankingData
    generate: CandidateGenerator
    transactions: pl.DataFrame  # every retrieval row (train + validation + test weeks)


_cache: dict[tuple[int, str], Built] = {}


def transactions(tiny: Tiny) -> pl.DataFrame:
    return pl.concat([tiny.train, tiny.val, tiny.test])


def weeks(tiny: Tiny) -> RankingWeeks:
    """The two-tower tests' split: test = the last 7 days, validation the 7 before (design §6)."""
    found = RankingWeeks.ending(transactions(tiny).get_column("t_dat").max(), N_TRAIN_WEEKS)
    assert found.test == tiny.test_start and found.validation == tiny.val_start
    return found


def baseline_generator(tiny: Tiny) -> CandidateGenerator:
    """Repurchase + popularity as a candidate generator, scored by rank (a stand-in for retrieval)."""
    catalogue = tiny.articles.get_column("article_id")

    def generate(customers: pl.DataFrame, past: pl.DataFrame, as_of: datetime, n: int) -> Recommendations:
        recs = repurchase_baseline(customers.get_column("customer_id"), past, as_of, n, catalogue=catalogue)
        scores = -np.tile(np.arange(n, dtype=np.float32), (len(recs.customer_ids), 1))
        return Recommendations(recs.customer_ids, recs.article_ids, scores)

    return generate


def tower_generator(tiny: Tiny) -> CandidateGenerator:
    """A tiny two-tower model trained before the validation week; its top-n over the catalogue."""
    from recsys.training.retrieval_data import candidate_inputs
    from recsys.training.retrieval_eval import embed, retrieve
    from recsys.training.two_tower import TwoTowerConfig, fit, tower_function

    model, _ = fit(TwoTowerConfig(epochs=3, patience=3, seed=7), tiny.train, tiny.val, tiny.articles, tiny.features)
    assert model.schema is not None
    query = tower_function(model.query_model)
    catalogue = embed(tower_function(model.candidate_model), candidate_inputs(tiny.articles, model.schema))

    def generate(customers: pl.DataFrame, past: pl.DataFrame, as_of: datetime, n: int) -> Recommendations:
        return retrieve(query, model.schema, customers, past, tiny.articles, catalogue, as_of, n)

    return generate


def built(tiny: Tiny, generator: str) -> Built:
    """The ranking dataset of ``tiny`` with the ``"baseline"`` or ``"tower"`` generator (cached)."""
    key = (id(tiny), generator)
    if key not in _cache:
        generate = (baseline_generator if generator == "baseline" else tower_generator)(tiny)
        rows = transactions(tiny)
        data = ranking_dataset(
            generate, rows, tiny.customers, tiny.articles, tiny.features, weeks=weeks(tiny), n=N_CANDIDATES
        )
        _cache[key] = Built(data, generate, rows)
    return _cache[key]
