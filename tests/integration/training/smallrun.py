"""The ``small`` preset trained once per session (see ``conftest.small_run``): shared by the retrieval and ranking
quality tests, so that CI trains the towers once."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import pytest

from recsys.config import load_settings
from recsys.data.dataset import Dataset
from recsys.data.oracle import Oracle
from recsys.data.sources import load_dataset, synthetic_dir
from recsys.pipeline.feature_job import backfill
from recsys.store import connect
from recsys.training.retrieval_job import RetrievalData, load_retrieval_data
from recsys.training.two_tower import TwoTowerConfig, fit

# The defaults, with at most EPOCHS epochs to stay within the test budget.
EPOCHS = 4
CONFIG = TwoTowerConfig(epochs=EPOCHS, patience=EPOCHS, seed=42)


@dataclass(frozen=True)
class SmallRun:
    model: Any  # the fitted TwoTowerModel
    data: RetrievalData
    dataset: Dataset
    oracle: Oracle


def train_small(tmp_path_factory: pytest.TempPathFactory) -> SmallRun:
    """A fresh store backfilled with ``synthetic:small`` (seed 42) and the towers trained on its time split."""
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
    print("\n".join(lines), f"\nconfig {asdict(CONFIG)}\n{time.perf_counter() - started:.0f} s to train")
    return SmallRun(model, data, dataset, Oracle.from_dir(synthetic_dir(settings, "small")))
