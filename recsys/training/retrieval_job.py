"""The retrieval step of the training pipeline: split by time, train the two towers, evaluate, register.

Design §6: the test week (the last 7 days the store holds) is never touched in training; the validation week
before it drives early stopping; everything earlier is training data. The test evaluation scores the model and,
in the same run and on the same customers, the baselines (global popularity of the last week, repurchase +
popularity) and, on synthetic data, the generator's oracle: the ceiling any model can reach.

Both towers are registered under one new run id, each with the test metrics (baselines included, prefixed),
the ``retrieval`` feature view and an input example; ``evaluation.json`` beside the artefacts keeps the whole
table, the per-epoch history and the split for the run's report.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID, T_DAT, FeatureSpec
from recsys.data.estimated_oracle import estimated_oracle_once
from recsys.features.common import cutoff, feature_name
from recsys.pipeline.groups import ARTICLES, CUSTOMERS, TRANSACTIONS
from recsys.pipeline.views import ARTICLES_VIEW, CUSTOMERS_VIEW, MISSING_VIEW, RETRIEVAL_VIEW
from recsys.store.base import Project
from recsys.store.errors import NotFoundError
from recsys.training import baselines, retrieval_eval
from recsys.training.report import REPORT_FILE, REPORT_FOLDER, write_report
from recsys.training.retrieval_data import candidate_inputs, catalogue_rows, query_inputs
from recsys.training.runs import CANDIDATE_MODEL, QUERY_MODEL, new_run_id
from recsys.training.splits import (
    SPLITS,
    Split,
    TrainingDataError,
    check_training_period,
    split_by_time,
    split_per_customer,
    split_random,
)
from recsys.training.two_tower import TwoTowerConfig, fit, save_tower_artifacts, tower_function

EVALUATION_FILE = "evaluation.json"
METHOD = "method"
TWO_TOWER, POPULARITY, REPURCHASE, ORACLE = "two_tower", "popularity", "repurchase+popularity", "oracle"
ESTIMATED_ORACLE = "estimated_oracle"  # the oracle with tastes fitted to the history: what the data allows
UNSEEN = "_unseen"  # suffix of the per-customer metrics over the articles a customer had not bought yet


@dataclass
class RetrievalData:
    """The retrieval rows of each period, the whole catalogue and the customers (views of the store)."""

    split: Split
    train: pl.DataFrame
    val: pl.DataFrame
    test: pl.DataFrame
    articles: pl.DataFrame
    customers: pl.DataFrame


def load_retrieval_data(
    project: Project,
    test_days: int = 7,
    val_days: int = 7,
    *,
    split: str = "time",
    share: float | None = None,
    seed: int = 0,
    periods: Split | None = None,
) -> RetrievalData:
    """Read the ``retrieval``, ``articles`` and ``customers`` views and split them (design §6).

    The retrieval view is read once, whatever the split, and cut in memory: its point-in-time join is the
    expensive part of loading (a second read for the view's own time split doubled the time and the peak memory).

    By default by time: the last ``test_days`` are the test period, the ``val_days`` before validation.
    ``per-customer`` instead takes each customer's last ``share`` of rows (default 0.1) as test and as many
    before them as validation, the protocol of published MovieLens results; ``random`` a random ``share``
    (default 0.2) of all rows as test and as many as validation. Both only for comparison with published numbers:
    their training rows include purchases made after test rows.

    ``periods``: a time split to cut instead of the one ending with the store's last day, e.g. a training run's
    own (the ranking step of an older run); days after its end are left out, and a store that no longer holds
    all of its days is refused.
    """
    if split not in SPLITS:
        raise TrainingDataError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    if periods is not None and (split != "time" or periods.per_row):
        raise ValueError(f"periods must be a time split, with split='time', not {periods.kind!r} with {split!r}")
    fs = project.feature_store
    try:
        view = fs.get_feature_view(*RETRIEVAL_VIEW)
    except NotFoundError as exc:
        raise TrainingDataError(f"{exc}: {MISSING_VIEW}") from None
    rows, _ = view.training_data()
    if rows.height == 0:
        raise TrainingDataError("the retrieval view is empty: run `python -m feature_pipeline backfill` first")
    first, last = rows.get_column(T_DAT).min(), rows.get_column(T_DAT).max()
    if split == "time":
        if periods is not None and cutoff(last) + timedelta(days=1) < periods.end:
            raise TrainingDataError(
                f"the store holds {first:%Y-%m-%d}..{last:%Y-%m-%d}, not the days of {periods.describe()} "
                f"(its last day is {periods.end - timedelta(days=1):%Y-%m-%d})"
            )
        periods = periods or Split.before(cutoff(last) + timedelta(days=1), test_days, val_days)
        if cutoff(first) >= periods.val_start:
            raise TrainingDataError(
                f"the store holds {first:%Y-%m-%d}..{last:%Y-%m-%d}: too short for {val_days} validation and "
                f"{test_days} test days plus training days"
            )
        train, val, test = split_by_time(rows, periods)
    else:
        if split == "per-customer":
            share = 0.1 if share is None else share
            train, val, test = split_per_customer(rows, share)
        else:
            share = 0.2 if share is None else share
            train, val, test = split_random(rows, share, seed)
        starts = [cutoff(frame.get_column(T_DAT).min()) if frame.height else cutoff(first) for frame in (val, test)]
        periods = Split(*starts, cutoff(last) + timedelta(days=1), split, share, seed if split == "random" else None)
    for name, frame in (("validation", val), ("test", test)):
        if frame.height == 0:
            raise TrainingDataError(f"the {name} period before {periods.end:%Y-%m-%d} has no purchases")
    check_training_period(train, val, test, periods)
    articles, _ = fs.get_feature_view(*ARTICLES_VIEW).training_data()
    customers, _ = fs.get_feature_view(*CUSTOMERS_VIEW).training_data()
    for name, frame in (("retrieval", rows), ("articles", articles), ("customers", customers)):
        check_numeric(frame, name)
    return RetrievalData(periods, train, val, test, articles, customers)


def describe_split(data: RetrievalData) -> str:
    """One line: the periods and their row counts."""
    sizes = f"train {data.train.height:,}, validation {data.val.height:,}, test {data.test.height:,} rows"
    return f"{data.split.describe()}: {sizes}"


def check_numeric(frame: pl.DataFrame, view: str) -> None:
    """NaN or infinite numbers would turn every gradient into NaN: refuse them before training, naming rows."""
    floats = [name for name, dtype in frame.schema.items() if dtype.is_float()]
    if not floats:
        return
    bad = frame.select(floats).select(pl.all().is_nan().or_(pl.all().is_infinite()).any())
    for column in [name for name in floats if bad.get_column(name).item()]:
        rows = frame.filter(~pl.col(column).is_finite()).head(5)
        keys = [c for c in (CUSTOMER_ID, ARTICLE_ID, T_DAT) if c in rows.columns]
        raise TrainingDataError(
            f"view '{view}', column '{column}': NaN or infinite values, e.g. in rows "
            f"{rows.select(*keys, column).to_dicts()}; fix the source data or its feature function"
        )


def check_features(features: Mapping[str, Mapping[str, FeatureSpec]], data: RetrievalData) -> None:
    """The spec's features must be the store's: a spec of another data set would silently train on ids only."""
    columns = {"customers": set(data.customers.columns), "articles": set(data.articles.columns)}
    columns["transactions"] = set(data.train.columns)
    _refuse_missing(features, columns)


def check_store_features(
    project: Project, features: Mapping[str, Mapping[str, FeatureSpec]], dataset: str | None = None
) -> None:
    """:func:`check_features` against the store's group schemas, reading no rows: it runs before the data set's
    spec could be generated or read and before any training. A store without the groups yet is left to
    :func:`load_retrieval_data`, whose message says to backfill. ``dataset``: the reference the features came
    from, named in the message (the default ``synthetic:small`` when no --dataset was given)."""
    fs = project.feature_store
    columns: dict[str, set[str]] = {}
    for table, group in (("customers", CUSTOMERS), ("articles", ARTICLES), ("transactions", TRANSACTIONS)):
        try:
            columns[table] = set(group.get(fs).select_all().features)
        except NotFoundError:
            return
    _refuse_missing(features, columns, dataset)


def _refuse_missing(
    features: Mapping[str, Mapping[str, FeatureSpec]], columns: Mapping[str, set[str]], dataset: str | None = None
) -> None:
    missing = [
        f"{table}.{name}"
        for table, specs in features.items()
        for name in specs
        if table in columns and feature_name(name) not in columns[table]
    ]
    if missing:
        named = f"{missing[:5]}" + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        whose = f"dataset {dataset}: its spec's" if dataset else "the dataset spec's"
        raise TrainingDataError(
            f"{whose} features {named} are not in the feature store: was the store built from "
            "another data set? Pass the --dataset the feature pipeline used"
        )
    if not any(features.get("articles", {})):
        raise TrainingDataError("the dataset spec declares no article features: the candidate tower needs some")


@dataclass
class RetrievalResult:
    """What the retrieval step produced: the run, the metric table (one row per method) and the epochs."""

    run_id: str
    metrics: pl.DataFrame
    history: list[dict[str, float]]
    model_versions: dict[str, int]
    seconds: float
    report: Path | None = None


def evaluate_test(
    model: Any,
    data: RetrievalData,
    oracle: Any = None,
) -> tuple[pl.DataFrame, retrieval_eval.Recommendations | None]:
    """Test-week metrics of the model and the baselines on the same customers; one row per method."""
    if data.split.per_row:
        return per_transaction_table(model, data), None
    past = pl.concat([data.train, data.val], how="diagonal_relaxed")
    query_fn, candidate_fn = tower_function(model.query_model), tower_function(model.candidate_model)
    metrics, recs = retrieval_eval.evaluate_retrieval(
        query_fn,
        candidate_fn,
        model.schema,
        past,
        data.test,
        data.articles,
        customers=data.customers,
        as_of=data.split.test_start,
    )
    rows = [{METHOD: TWO_TOWER, **metrics}]
    truth = data.test.select(CUSTOMER_ID, ARTICLE_ID)
    catalogue = data.articles.get_column(ARTICLE_ID)
    n = max(retrieval_eval.RECALL_KS)
    for name, baseline in ((POPULARITY, baselines.popularity_baseline), (REPURCHASE, baselines.repurchase_baseline)):
        ranked = baseline(recs.customer_ids, past, data.split.test_start, n, catalogue=catalogue)
        rows.append({METHOD: name, **retrieval_eval.recall(ranked, truth)})
    if oracle is not None:
        held = data.test.select(CUSTOMER_ID, ARTICLE_ID, T_DAT)
        for name, ceiling in ceilings(oracle, held.get_column(CUSTOMER_ID).unique(), held.get_column(T_DAT).min()):
            recall = ceiling.recall_at_k(held, retrieval_eval.RECALL_KS)
            rows.append({METHOD: name, **{f"recall@{k}": value for k, value in recall.items()}})
    return pl.DataFrame(rows, infer_schema_length=None), recs


def ceilings(oracle: Any, customer_ids: Any, day: Any) -> tuple[tuple[str, Any], ...]:
    """The synthetic data's yardsticks for ``customer_ids`` ranked from ``day``: the oracle (true tastes) and the
    estimated oracle (tastes fitted to their purchases before ``day``, once for both evaluations of a run)."""
    return (ORACLE, oracle), (ESTIMATED_ORACLE, estimated_oracle_once(oracle, customer_ids, day))


def per_transaction_table(model: Any, data: RetrievalData) -> pl.DataFrame:
    """Top-K accuracy per test row for the model and for training-set popularity (per-customer split).

    Without one evaluation day there is no single as-of state for recall per customer; each test row is scored
    from its own point-in-time features, and popularity ranks the catalogue by units sold in training. Beside
    the whole-catalogue accuracy (the TFRS definition), ``top_K_accuracy_unseen`` ranks each row's article among
    those its customer had not bought in training or validation: what a recommender that never shows an
    article twice (a rated movie) would rank. Both methods are scored both ways by the same code.
    """
    schema = model.schema
    rows = catalogue_rows(data.test, data.articles)
    catalogue = retrieval_eval.embed(tower_function(model.candidate_model), candidate_inputs(data.articles, schema))
    queries = retrieval_eval.embed(tower_function(model.query_model), query_inputs(data.test, schema))
    bought = catalogue_rows(data.train, data.articles)
    sold = np.bincount(bought[bought >= 0], minlength=data.articles.height).astype(np.float32)
    seen = _bought_before(data)
    table = []
    scorers = {TWO_TOWER: (queries, catalogue), POPULARITY: (np.ones((len(rows), 1)), sold[:, None])}
    for method, (q, c) in scorers.items():
        whole = retrieval_eval.top_k_accuracies(retrieval_eval.truth_ranks(q, c, rows))
        unseen = retrieval_eval.top_k_accuracies(retrieval_eval.truth_ranks(q, c, rows, excluded=seen))
        table.append({METHOD: method, **whole, **{f"{key}{UNSEEN}": value for key, value in unseen.items()}})
    return pl.DataFrame(table)


def _bought_before(data: RetrievalData) -> tuple[np.ndarray, np.ndarray]:
    """(test row, catalogue row) for every article the row's customer bought in training or validation."""
    past = pl.concat([data.train, data.val], how="diagonal_relaxed").select(CUSTOMER_ID, ARTICLE_ID).unique()
    past = past.select(CUSTOMER_ID, pl.Series("_row", catalogue_rows(past, data.articles))).filter(pl.col("_row") >= 0)
    pairs = data.test.select(CUSTOMER_ID).with_row_index("_test").join(past, on=CUSTOMER_ID)
    return pairs.get_column("_test").to_numpy().astype(np.int64), pairs.get_column("_row").to_numpy()


def registry_metrics(table: pl.DataFrame) -> dict[str, float]:
    """The model's metrics as they are, each baseline's prefixed by its name (``popularity/recall@100``)."""
    out: dict[str, float] = {}
    for row in table.iter_rows(named=True):
        prefix = "" if row[METHOD] == TWO_TOWER else f"{row[METHOD]}/"
        out |= {prefix + key: float(value) for key, value in row.items() if key != METHOD and value is not None}
    return out


def train_retrieval(
    project: Project,
    features: Mapping[str, Mapping[str, FeatureSpec]],
    config: TwoTowerConfig,
    *,
    data: RetrievalData | None = None,
    oracle: Any = None,
    load_oracle: Callable[[], Any] | None = None,
    run_id: str | None = None,
    split: str = "time",
    share: float | None = None,
    dataset: str | None = None,
    log: Callable[[str], None] = print,
) -> RetrievalResult:
    """Train the two towers, evaluate them on the test week and register both under one run id.

    ``split`` and ``share``: see :func:`load_retrieval_data`; a random split draws with ``config.seed``.
    ``load_oracle``: instead of ``oracle``, called once the store's data are checked and before training, so that
    an empty store or another data set's spec is named before a missing oracle. ``dataset``: the reference
    ``features`` came from, named when they are not the store's (given ``data``, they are checked against it).
    """
    started = time.perf_counter()
    if data is None:
        check_store_features(project, features, dataset)  # before the read
    data = data or load_retrieval_data(project, split=split, share=share, seed=config.seed)
    check_features(features, data)
    oracle = load_oracle() if load_oracle is not None else oracle
    run_id = run_id or new_run_id()
    log(f"run {run_id}: {describe_split(data)}; catalogue {data.articles.height:,} articles")
    if data.split.per_row:
        log(
            f"{data.split.kind} split: training holds purchases made after test rows, so its figures are only "
            "comparable with published numbers of the same protocol; the time split measures what serving sees"
        )
    model, history = fit(
        config,
        data.train,
        data.val,
        data.articles,
        features,
        customers_df=data.customers,
        val_start=data.split.val_start,
        per_row=data.split.per_row,
        log=log,
    )
    table, _ = evaluate_test(model, data, oracle)
    evaluation = {
        "run_id": run_id,
        "split": data.split.to_dict(),
        "rows": {"train": data.train.height, "validation": data.val.height, "test": data.test.height},
        "catalogue": data.articles.height,
        "metrics": table.to_dicts(),
        "history": history,
        "config": asdict(config),
    }
    view = project.feature_store.get_feature_view(*RETRIEVAL_VIEW)
    example = _input_example(model, data.test)
    versions: dict[str, int] = {}
    for name, which in ((QUERY_MODEL, "query"), (CANDIDATE_MODEL, "candidate")):
        with tempfile.TemporaryDirectory(prefix=f"{name}-") as tmp:
            folder = save_tower_artifacts(model, which, Path(tmp) / name)
            (folder / EVALUATION_FILE).write_text(json.dumps(evaluation, indent=2, default=str))
            if which == "query":  # the run's report until its ranker replaces it with the whole pipeline's
                write_report(folder / REPORT_FOLDER, evaluation)
            saved = project.model_registry.create_model(
                name,
                metrics=registry_metrics(table),
                description=f"two-tower {which} tower of {run_id}",
                feature_view=view,
                input_example=example[which],
                run_id=run_id,
                framework="tensorflow",
            ).save(folder)
        assert saved.version is not None
        versions[name] = saved.version
        if which == "query":
            report = saved.download() / REPORT_FOLDER / REPORT_FILE
    return RetrievalResult(run_id, table, history, versions, time.perf_counter() - started, report)


def _input_example(model: Any, rows: pl.DataFrame) -> dict[str, dict[str, list]]:
    """One row of each tower's encoded inputs (a retrieval row holds both sides), as JSON-ready lists."""
    first = rows.head(1)
    query, candidate = query_inputs(first, model.schema), candidate_inputs(first, model.schema)
    return {"query": _lists(query), "candidate": _lists(candidate)}


def _lists(inputs: Mapping[str, np.ndarray]) -> dict[str, list]:
    return {key: np.asarray(value).tolist() for key, value in inputs.items()}
