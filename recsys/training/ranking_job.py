"""The ranking step of the training pipeline: the run's own candidates → CatBoost → the whole pipeline's report.

It loads the run's two towers from the registry (never a model of another run), generates the candidates of
each customer-week with them (:mod:`ranking_data`), trains the ranker, and evaluates the offline pipeline on the
test week: retrieval order alone, retrieval + ranker, global popularity, repurchase + popularity and, on
synthetic data, the oracle and the estimated oracle (design §6), each twice: over the whole catalogue, and
ordering the ranker's own candidates (``retrieval + oracle``), the most any ranker could make of them. The ranker
is registered under the same run id, with the report.

Note: the ranker's training weeks lie inside the towers' training period, so their retrieval scores are
in-sample; validation and test weeks are not, and they decide early stopping and the reported numbers. They are
the run's own validation and test weeks, recorded with its towers, whatever the store holds now: a store that has
moved on since (an incremental run) would otherwise test the ranker on another week than the towers, and one
backfilled to an earlier day on days the towers trained on.
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
from recsys.pipeline.views import RANKING_VIEW
from recsys.store.base import Project
from recsys.training import baselines
from recsys.training.pipeline_eval import K, evaluate_pipeline, order_candidates, rerank
from recsys.training.ranking import Ranker, RankerConfig, save_ranker, train_ranker
from recsys.training.ranking_data import LABEL, RankingData, RankingDataError, RankingWeeks, ranking_dataset
from recsys.training.ranking_features import RETRIEVAL_RANK
from recsys.training.report import REPORT_FILE, REPORT_FOLDER, write_report
from recsys.training.retrieval_data import TowerFeatures, candidate_inputs
from recsys.training.retrieval_eval import Recommendations, Tower, embed, retrieve
from recsys.training.retrieval_job import (
    EVALUATION_FILE,
    RetrievalData,
    ceilings,
    check_features,
    check_store_features,
    describe_split,
    load_retrieval_data,
)
from recsys.training.runs import CANDIDATE_MODEL, QUERY_MODEL, RANKER_MODEL, RETRIEVAL_MODELS, Run, find_run
from recsys.training.splits import Split, TrainingDataError
from recsys.training.two_tower import load_tower_artifacts

RANKING_EVALUATION_FILE = "ranking_evaluation.json"
RETRIEVAL_PLUS = "retrieval + "
RETRIEVAL_ORDER, RANKED = "retrieval order", f"{RETRIEVAL_PLUS}ranker"


@dataclass
class RankingResult:
    run_id: str
    metrics: pl.DataFrame
    importance: pl.DataFrame
    objective: str
    model_version: int
    report: Path
    seconds: float


def candidate_generator(run: Run, data: RetrievalData) -> Callable[..., Recommendations]:
    """Top-n of the run's towers for customers as of a time, with the catalogue embedded once."""
    query, schema = load_tower_artifacts(run.model(QUERY_MODEL).download())
    candidate, _ = load_tower_artifacts(run.model(CANDIDATE_MODEL).download())
    return towers_generator(query, candidate, schema, data.articles)


def towers_generator(
    query: Tower, candidate: Tower, schema: TowerFeatures, articles: pl.DataFrame
) -> Callable[..., Recommendations]:
    """Top-n of two towers (saved or just trained) for customers as of a time, ``articles`` embedded once."""
    catalogue = embed(candidate, candidate_inputs(articles, schema))

    def generate(customers: pl.DataFrame, past: pl.DataFrame, as_of: Any, n: int) -> Recommendations:
        return retrieve(query, schema, customers, past, articles, catalogue, as_of, n)

    return generate


def retrieval_order(rows: pl.DataFrame, n: int) -> Recommendations:
    """Each customer's candidates in retrieval order, the first ``n`` (customers sorted by id)."""
    lists = (
        rows.sort(CUSTOMER_ID, RETRIEVAL_RANK)
        .group_by(CUSTOMER_ID, maintain_order=True)
        .agg(pl.col(ARTICLE_ID).head(n))
    )
    return Recommendations(
        lists.get_column(CUSTOMER_ID).to_numpy(),
        lists.get_column(ARTICLE_ID).explode().to_numpy().reshape(lists.height, n),
    )


def evaluate_test_week(
    ranking: RankingData, ranker: Any, data: RetrievalData, oracle: Any = None, k: int = K
) -> pl.DataFrame:
    """MAP@k, NDCG@k, recall@k and coverage of every method on the test week's customers."""
    test_start = ranking.weeks.test
    truth = data.test.filter(pl.col(T_DAT) >= test_start).select(CUSTOMER_ID, ARTICLE_ID).unique()
    methods = {RETRIEVAL_ORDER: retrieval_order(ranking.test, k), RANKED: rerank(ranking.test, ranker, k)}
    customers = methods[RANKED].customer_ids
    past = pl.concat([data.train, data.val], how="diagonal_relaxed")
    catalogue = data.articles.get_column(ARTICLE_ID)
    methods["popularity"] = baselines.popularity_baseline(customers, past, test_start, k, catalogue=catalogue)
    methods["repurchase+popularity"] = baselines.repurchase_baseline(
        customers, past, test_start, k, catalogue=catalogue
    )
    if oracle is not None:
        first, last = (oracle.latent.day_of(np.datetime64(day, "D")) for day in (test_start, data.split.end))
        for name, ceiling in ceilings(oracle, customers, test_start):
            # one scoring pass: the whole catalogue's top k, and the ranker's own candidates in the ceiling's order
            # (the most a ranker could make of them)
            rows, candidate_scores = ceiling.top_k_and_pair_scores(
                ceiling.customer_rows(customers), first, k, last - 1, pairs=ranking.test
            )
            methods[name] = Recommendations(customers, ceiling.article_ids[rows])
            methods[f"{RETRIEVAL_PLUS}{name}"] = order_candidates(ranking.test, candidate_scores, k)
    return evaluate_pipeline(methods, truth, data.articles.height, k)


def fit_ranking(
    generate: Callable[..., Recommendations],
    data: RetrievalData,
    features: Mapping[str, Mapping[str, FeatureSpec]],
    config: RankerConfig = RankerConfig(),
    *,
    n_candidates: int = 100,
    n_train_weeks: int = 4,
    oracle: Any = None,
    log: Callable[[str], None] = print,
) -> tuple[RankingData, Ranker, dict[str, Any], pl.DataFrame]:
    """The ranking rows of ``generate``'s candidates, the ranker trained on them, and the test-week table.

    The ranker's validation and test weeks are those of ``data``'s time split.
    """
    transactions = pl.concat([data.train, data.val, data.test], how="diagonal_relaxed")
    ranking = ranking_dataset(
        generate,
        transactions,
        data.customers,
        data.articles,
        features,
        weeks=RankingWeeks.of_split(data.split, n_train_weeks),
        n=n_candidates,
        log=log,
    )
    ranker, history = train_ranker(ranking.train, ranking.validation, config, schema=ranking.schema, log=log)
    return ranking, ranker, history, evaluate_test_week(ranking, ranker, data, oracle)


def run_evaluation(run: Run) -> dict[str, Any]:
    """The evaluation the run's retrieval step saved beside its query tower (split, rows, table, history)."""
    path = run.model(QUERY_MODEL).download() / EVALUATION_FILE
    if not path.is_file():
        raise TrainingDataError(
            f"run {run.run_id}'s query tower has no {EVALUATION_FILE}, so its split is unknown: "
            "train a new run (`python -m training_pipeline all`)"
        )
    return json.loads(path.read_text())


def run_split(run: Run, evaluation: Mapping[str, Any]) -> Split:
    """The time split the run's towers were trained and tested on; a clear error when ranking cannot use it.

    A split saved before splits had a ``kind`` is a time split (:meth:`Split.from_dict`). A run that saved none,
    or split by rows, is refused: the weeks its towers never saw are unknown or do not exist, so the ranker's
    numbers could be in-sample ones.
    """
    if not evaluation.get("split"):
        raise TrainingDataError(
            f"run {run.run_id} recorded no split with its towers, so the weeks they never trained on are unknown "
            "and a ranker tested now could be tested in sample: train a new run (`python -m training_pipeline all`)"
        )
    split = Split.from_dict(evaluation["split"])
    try:
        RankingWeeks.of_split(split)
    except RankingDataError as exc:
        raise TrainingDataError(f"run {run.run_id}: {exc}") from None
    return split


def run_data(
    project: Project,
    run: Run,
    split: Split,
    rows: Mapping[str, int] | None = None,
    *,
    log: Callable[[str], None] = print,
) -> RetrievalData:
    """The store's rows cut at the run's ``split``: the same periods, and the same ``rows`` (the counts the run
    recorded per period, when it did), its towers saw.

    Days the store gained after the split's end are the future for this run and are left out. A store that no
    longer holds the run's days (backfilled to an earlier day, or from other data) is refused, naming both.
    """
    advice = (
        f"backfill the store up to {split.end - timedelta(days=1):%Y-%m-%d} or later "
        "(`python -m feature_pipeline backfill`) or train a new run (`python -m training_pipeline all`)"
    )
    try:
        data = load_retrieval_data(project, periods=split)
    except TrainingDataError as exc:
        raise TrainingDataError(f"cannot rank run {run.run_id} on its own split: {exc}; {advice}") from None
    recorded = rows or {}
    held = {"train": data.train.height, "validation": data.val.height, "test": data.test.height}
    differ = [
        f"{name} {recorded[name]:,} then, {held[name]:,} now"
        for name in held
        if recorded.get(name, held[name]) != held[name]
    ]
    if differ:
        raise TrainingDataError(
            f"cannot rank run {run.run_id} on its own split ({split.describe()}): the store no longer holds the rows "
            f"its towers saw ({'; '.join(differ)}); {advice}"
        )
    log(f"run {run.run_id}: its own split, {describe_split(data)}")
    return data


def train_ranking(
    project: Project,
    features: Mapping[str, Mapping[str, FeatureSpec]],
    config: RankerConfig = RankerConfig(),
    *,
    run_id: str | None = None,
    data: RetrievalData | None = None,
    n_candidates: int = 100,
    n_train_weeks: int = 4,
    oracle: Any = None,
    load_oracle: Callable[[], Any] | None = None,
    dataset: str | None = None,
    log: Callable[[str], None] = print,
) -> RankingResult:
    """Train the ranker on the run's candidates, evaluate the pipeline, register it and write the report.

    The ranker is trained, validated and tested on the run's own split (:func:`run_data`). ``data``: that split's
    retrieval data when the caller has it already (``training_pipeline all``, which has just trained the towers).
    ``load_oracle``: instead of ``oracle``, called once the run and its data are checked, before training.
    ``dataset``: the reference ``features`` came from, named when they are not the store's.
    """
    started = time.perf_counter()
    if data is None:  # before any work: the spec of another data set trains a blind ranker (given data: checked below)
        check_store_features(project, features, dataset)
    run = find_run(project.model_registry, run_id, need=RETRIEVAL_MODELS)
    retrieval = run_evaluation(run)
    split = run_split(run, retrieval)
    if data is None:
        data = run_data(project, run, split, retrieval.get("rows"), log=log)
    elif data.split != split:
        raise ValueError(f"the data given are split {data.split.describe()}, run {run.run_id} {split.describe()}")
    check_features(features, data)
    oracle = load_oracle() if load_oracle is not None else oracle
    generate = candidate_generator(run, data)
    log(f"run {run.run_id}: ranking rows from the top {n_candidates} candidates of each customer-week")
    ranking, ranker, history, table = fit_ranking(
        generate, data, features, config, n_candidates=n_candidates, n_train_weeks=n_train_weeks, oracle=oracle, log=log
    )
    importance = ranker.feature_importance(20)
    weeks = ranking.weeks
    evaluation = {
        "run_id": run.run_id,
        "objective": ranker.objective,
        "weeks": {
            "train": [f"{start:%Y-%m-%d}" for start in weeks.train],
            "validation": f"{weeks.validation:%Y-%m-%d}",
            "test": f"{weeks.test:%Y-%m-%d}",
        },
        "metrics": table.to_dicts(),
        "importance": importance.to_dicts(),
        "history": history,
        "rows": {name: getattr(ranking, name).height for name in ("train", "validation", "test")},
        "positives": {name: int(getattr(ranking, name).get_column(LABEL).sum()) for name in ("train", "validation")},
        "skipped_weeks": [f"{start:%Y-%m-%d}" for start in ranking.skipped],
        "n_candidates": n_candidates,
        "config": asdict(config),
    }
    ranked = table.filter(pl.col("method") == RANKED).to_dicts()[0]
    metrics = {key: float(value) for key, value in ranked.items() if key != "method"}
    for row in table.filter(pl.col("method") != RANKED).iter_rows(named=True):
        metrics |= {f"{row['method']}/{key}": float(value) for key, value in row.items() if key != "method"}
    with tempfile.TemporaryDirectory(prefix="ranker-") as tmp:
        folder = save_ranker(ranker, Path(tmp) / RANKER_MODEL)
        (folder / RANKING_EVALUATION_FILE).write_text(json.dumps(evaluation, indent=2, default=str))
        write_report(folder / REPORT_FOLDER, retrieval, evaluation)
        saved = project.model_registry.create_model(
            RANKER_MODEL,
            metrics=metrics,
            description=f"CatBoost ranker ({ranker.objective}) of {run.run_id}",
            feature_view=project.feature_store.get_feature_view(*RANKING_VIEW),
            input_example=ranking.test.head(3).select(ranking.schema.features),
            run_id=run.run_id,
            framework="catboost",
        ).save(folder)
    assert saved.version is not None
    report = saved.download() / REPORT_FOLDER / REPORT_FILE
    return RankingResult(
        run.run_id, table, importance, ranker.objective, saved.version, report, time.perf_counter() - started
    )
