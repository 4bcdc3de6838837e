"""Benchmark: two-tower training throughput at batch 2048, its memory, and embedding a 105k-article catalogue.

Throughput is measured twice on the ``small`` preset's retrieval rows (built into ``--home`` on first use):

* ``small``: the rows as they are (50k customers, 15k articles);
* ``hm_shaped``: the same rows with H&M's numbers of ids — each customer split into clones over 1.37M ids and
  each article copied 7 times (105k articles), rows and histories pointing at random copies — so that the
  lookups, the article tables (and the customer table when ``use_customer_id``) and the catalogue are H&M's size.

Each is the median of ``--windows`` consecutive windows of ``--steps`` training steps after a warm-up, all in one
``fit`` call as in training (``--steps``: a multiple of ``steps_per_execution``); the hm epoch (31.8M rows) is
extrapolated from the ``hm_shaped`` rate. CPU time per example (all threads) is recorded beside wall time, with the
load average, because the machine may be shared. Memory: the peak RSS of this process (the small store's frames and
both models) and, for H&M, the encoded training rows ``fit`` holds (``encoded_bytes_per_row`` x 31.8M); the
retrieval frame it is given (``retrieval_frame_bytes_per_row``) is the caller's. The embedding time is a saved
candidate tower reloaded as serving loads it, over the 105k-article catalogue (inputs built from the frame). Targets
(issue D): >= 100k examples/s (<= 10 ms per 1k), hm epoch <= 6 min, peak RSS <= 10 GiB, embedding 105k articles <=
30 s.

    python benchmarks/training_retrieval.py [--home DIR] [--steps 96] [--windows 5] [--set negatives=1024 ...]

``--set KEY=VALUE`` (repeatable) changes one :class:`TwoTowerConfig` field (a JSON value), to measure what a knob
buys, e.g. ``--set negatives=1024``: a shared pool of negatives instead of the whole batch.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import polars as pl
import tf_keras as keras

sys.path.insert(0, str(Path(__file__).parent))
from _common import small_store, write_result

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID
from recsys.features.customer_history import LAST_ARTICLES
from recsys.training.retrieval_data import ARTICLE_INDEX, candidate_inputs, catalogue_rows, encode
from recsys.training.retrieval_eval import embed
from recsys.training.retrieval_job import RetrievalData, load_retrieval_data
from recsys.training.two_tower import (
    PackedRows,
    TwoTowerConfig,
    TwoTowerModel,
    build_model,
    encode_inputs,
    load_tower_artifacts,
    save_tower_artifacts,
)

HM_ROWS, HM_CUSTOMERS, HM_ARTICLES = 31_788_324, 1_371_980, 105_542
COPIES = 7  # 15,000 small articles x 7 = 105,000
TARGETS = {"small_ms_per_1k_examples": 10.0, "hm_epoch_minutes": 6.0, "peak_rss_gib": 10.0, "embed_105k_s": 30.0}


def small_data(home: Path) -> tuple[dict, RetrievalData]:
    """The small preset's spec features and retrieval data, backfilling the store on first use."""
    dataset, project = small_store(home)
    return dataset.features, load_retrieval_data(project)


def hm_shaped(train: pl.DataFrame, articles: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``train`` and ``articles`` with H&M's numbers of customer and article ids (see the module docstring)."""
    rng = np.random.default_rng(0)
    clones = -(-HM_CUSTOMERS // train.get_column(CUSTOMER_ID).n_unique())
    copy = pl.Series(rng.integers(0, COPIES, train.height))
    train = train.with_columns(
        (pl.col(CUSTOMER_ID) + "-" + pl.Series(rng.integers(0, clones, train.height)).cast(pl.String)),
        pl.col(ARTICLE_ID) * COPIES + copy,
        pl.col(LAST_ARTICLES).list.eval(pl.element() * COPIES + (pl.element().hash(1) % COPIES).cast(pl.Int64)),
    )
    catalogue = pl.concat(
        [articles.with_columns(pl.col(ARTICLE_ID) * COPIES + k) for k in range(COPIES)], how="vertical"
    )
    return train, catalogue


class _StepClock(keras.callbacks.Callback):
    """Wall and CPU clocks after each execution of ``steps_per_execution`` training steps."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: list[tuple[int, float, float]] = []

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.marks.append((batch + 1, time.perf_counter(), time.process_time()))


def throughput(model: TwoTowerModel, rows: pl.DataFrame, articles: pl.DataFrame, steps: int, windows: int) -> dict:
    """Median examples/s over ``windows`` consecutive windows of ``steps`` steps, after a warm-up of ``steps``.

    One ``fit`` call, as training makes: Keras' own start-up per call (data handler, listing variables and
    metrics) is paid once per run there, so timing separate short calls would charge it to every window.
    """
    config = model.config
    assert config is not None
    started = time.perf_counter()
    data = model.dataset(rows, articles, batch_size=config.batch_size, seed=config.seed)
    encode_s = time.perf_counter() - started
    clock = _StepClock()
    model.fit(data.repeat().take(steps * (windows + 1)), verbose=0, callbacks=[clock])
    done = {step: (wall, cpu) for step, wall, cpu in clock.marks}
    bounds = [done[steps * (w + 1)] for w in range(windows + 1)]  # steps: a multiple of steps_per_execution
    walls = [b[0] - a[0] for a, b in pairwise(bounds)]
    cpus = [b[1] - a[1] for a, b in pairwise(bounds)]
    examples = steps * config.batch_size
    rate = examples / statistics.median(walls)
    print(f"  {rate:,.0f} examples/s (windows: {', '.join(f'{examples / w:,.0f}' for w in walls)})", flush=True)
    return {
        "examples_per_s": rate,
        "ms_per_1k_examples": 1000 * statistics.median(walls) / examples * 1000,
        "cpu_ms_per_1k_examples": 1000 * statistics.median(cpus) / examples * 1000,
        "encode_s_per_million_rows": encode_s / rows.height * 1e6,
        "windows_examples_per_s": [examples / w for w in walls],
    }


def encoded_bytes_per_row(model: TwoTowerModel, rows: pl.DataFrame, articles: pl.DataFrame) -> float:
    """Bytes a training row takes once encoded for training (what ``fit`` holds for the whole training split)."""
    schema = model.schema
    assert schema is not None
    columns = encode(rows, schema.query_inputs(), age_reference=schema.age_reference)
    arrays = encode_inputs(model.towers["query"], columns)
    arrays[ARTICLE_INDEX] = catalogue_rows(rows, articles).astype(np.int32)
    return PackedRows(arrays).nbytes / rows.height


def embedding_seconds(model: TwoTowerModel, catalogue: pl.DataFrame, repeats: int = 3) -> float:
    """Median seconds to embed ``catalogue`` with the candidate tower saved and reloaded as serving does."""
    with tempfile.TemporaryDirectory(prefix="tower-") as tmp:
        save_tower_artifacts(model, "candidate", Path(tmp) / "candidate")
        tower, schema = load_tower_artifacts(Path(tmp) / "candidate")
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            vectors = embed(tower, candidate_inputs(catalogue, schema))
            times.append(time.perf_counter() - started)
    assert vectors.shape[0] == catalogue.height and np.isfinite(vectors).all()
    return statistics.median(times)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _setting(item: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE read as JSON (``negatives=1024``, ``hidden_units=[256]``), else as a string."""
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
    try:
        return key, json.loads(text)
    except json.JSONDecodeError:
        return key, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "recsys-bench-small-home")
    parser.add_argument("--steps", type=int, default=96, help="training steps per timed window")
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a two-tower config field")
    args = parser.parse_args()
    overrides = {"batch_size": 2048} | dict(_setting(item) for item in args.set)
    config = TwoTowerConfig.from_dict(overrides)
    if args.steps % config.steps_per_execution:
        parser.error(f"--steps must be a multiple of steps_per_execution ({config.steps_per_execution})")
    features, data = small_data(args.home)
    medians: dict[str, float] = {}
    details: dict[str, object] = {"config": overrides, "load_average_before": os.getloadavg()}

    print(f"small: {data.train.height:,} rows, {data.articles.height:,} articles", flush=True)
    model = build_model(config, features, data.train, data.articles)
    small = throughput(model, data.train, data.articles, args.steps, args.windows)
    details["small"] = small
    medians |= {f"small_{k}": v for k, v in small.items() if not isinstance(v, list)}
    medians["small_peak_rss_gib"] = peak_rss_gib()
    del model

    train, catalogue = hm_shaped(data.train, data.articles)
    print(f"hm_shaped: {train.height:,} rows, {catalogue.height:,} articles", flush=True)
    model = build_model(config, features, train, catalogue)
    hm = throughput(model, train, catalogue, args.steps, args.windows)
    details["hm_shaped"] = hm | {
        "customer_vocabulary": model.query_model.get_layer("customer_id_lookup").vocabulary_size(),
        "article_vocabulary": model.candidate_model.get_layer("article_id_lookup").vocabulary_size(),
    }
    medians |= {f"hm_shaped_{k}": v for k, v in hm.items() if not isinstance(v, list)}
    medians["hm_epoch_minutes"] = HM_ROWS / hm["examples_per_s"] / 60
    row_bytes = encoded_bytes_per_row(model, train.head(100_000), catalogue)
    medians["encoded_bytes_per_row"] = row_bytes
    medians["hm_encoded_rows_gib"] = row_bytes * HM_ROWS / 2**30
    details["retrieval_frame_bytes_per_row"] = data.train.estimated_size() / data.train.height
    medians["embed_105k_s"] = embedding_seconds(model, catalogue)
    medians["peak_rss_gib"] = peak_rss_gib()
    details["load_average_after"] = os.getloadavg()
    parameters = {"preset": "small", "steps": args.steps, "windows": args.windows, "config": overrides}
    write_result("training_retrieval", parameters, medians, TARGETS, details)


if __name__ == "__main__":
    main()
