"""A complete model set on the ``tiny`` preset, built once per session: features, towers, embeddings, ranker.

Small on purpose (one short epoch, a few dozen trees): the serving tests check behaviour, not model quality.
Imported by the tests of this folder as ``tinyrun`` (pytest puts the folder on ``sys.path``).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from recsys.config import Settings, load_settings
from recsys.data.dataset import T_DAT
from recsys.data.sources import load_dataset
from recsys.inference.embed import embed_catalogue
from recsys.pipeline.feature_job import backfill
from recsys.pipeline.views import ARTICLES_VIEW, CUSTOMERS_VIEW, RETRIEVAL_VIEW
from recsys.store import Project, connect
from recsys.training import retrieval_eval
from recsys.training.ranking import RankerConfig, save_ranker, train_ranker
from recsys.training.ranking_data import RankingWeeks, ranking_dataset
from recsys.training.retrieval_data import candidate_inputs
from recsys.training.runs import CANDIDATE_MODEL, QUERY_MODEL, RANKER_MODEL, new_run_id
from recsys.training.two_tower import TwoTowerConfig, fit, save_tower_artifacts, tower_function


@dataclass(frozen=True)
class TinyRun:
    settings: Settings
    run_id: str
    last_day: datetime  # the newest purchase day in the store
    customers: pl.DataFrame  # the customers view (attributes + latest history)
    articles: pl.DataFrame  # the articles view

    @property
    def project(self) -> Project:
        return connect(self.settings)

    @property
    def request_time(self) -> datetime:
        """The day after the last purchase: every stored purchase is history, recent ones within the window."""
        return self.last_day + timedelta(days=1, hours=10)

    def copy_home(self, folder: Path) -> Path:
        """A private copy of the store under ``folder``: what a test writes there stays out of the other tests."""
        home = folder / "home"
        shutil.copytree(self.settings.home, home)
        return home

    def recent_buyers(self, n: int, skip: int = 0) -> list[str]:
        """Customers whose latest purchase is among the newest: the already-bought filter has work to do."""
        recent = self.customers.filter(pl.col("last_purchase").is_not_null()).sort(
            ["last_purchase", "customer_id"], descending=[True, False]
        )
        return recent.get_column("customer_id").slice(skip, n).to_list()

    def recently_bought(self, customer_id: str, window_days: int = 30, last_n: int = 20) -> set[int]:
        """What the filter must remove for this customer at :attr:`request_time` (the serving defaults)."""
        row = self.customers.filter(pl.col("customer_id") == customer_id).row(0, named=True)
        if row["last_purchase"] is None or (self.request_time - row["last_purchase"]).days > window_days:
            return set()
        return set(row["last_article_ids"][:last_n])

    def check_answer(self, prediction: dict, top_k: int, bought: set[int] | None = None) -> None:
        """top_k distinct articles, one per product_code, none bought recently, display fields, the run id."""
        ids = prediction["article_ids"]
        assert len(ids) == top_k, prediction
        assert len(set(ids)) == top_k
        codes = self.articles.filter(pl.col("article_id").is_in(ids)).get_column("product_code")
        assert codes.n_unique() == top_k, "two colour variants of one product"
        assert not set(ids) & (self.recently_bought(prediction["customer_id"]) if bought is None else bought)
        assert prediction["run_id"] == self.run_id
        for source in ("model", "popularity"):  # each tier in score order, the model's first
            scores = [a["score"] for a in prediction["articles"] if a["source"] == source]
            assert scores == sorted(scores, reverse=True)
        sources = [a["source"] for a in prediction["articles"]]
        assert sources == sorted(sources)
        first = prediction["articles"][0]
        assert {
            "article_id",
            "score",
            "prod_name",
            "product_type_name",
            "colour_group_name",
            "index_group_name",
        } <= set(first)


def build_tiny_run(home: Path, *, register_ranker: bool = True) -> TinyRun:
    settings = load_settings(backend="local", home=home)
    project = connect(settings)
    ds = load_dataset("synthetic:tiny", settings)
    backfill(project, ds)
    fs, registry = project.feature_store, project.model_registry
    rows, _ = fs.get_feature_view(*RETRIEVAL_VIEW).training_data()
    articles, _ = fs.get_feature_view(*ARTICLES_VIEW).training_data()
    customers, _ = fs.get_feature_view(*CUSTOMERS_VIEW).training_data()
    last_day = rows.get_column(T_DAT).max()
    test_start = last_day - timedelta(days=6)
    val_start = test_start - timedelta(days=7)
    train = rows.filter(pl.col(T_DAT) < val_start)
    val = rows.filter((pl.col(T_DAT) >= val_start) & (pl.col(T_DAT) < test_start))
    config = TwoTowerConfig(epochs=1, patience=1, embedding_dim=32, hidden_units=(64,), seed=3, eval_k=50)
    model, _ = fit(config, train, val, articles, ds.features, val_start=val_start, log=lambda _: None)

    run_id = new_run_id()
    with tempfile.TemporaryDirectory() as tmp:
        for which, name in (("query", QUERY_MODEL), ("candidate", CANDIDATE_MODEL)):
            folder = save_tower_artifacts(model, which, Path(tmp) / which)
            registry.create_model(name, run_id=run_id, metrics={"recall@50": 0.0}).save(folder)
        embed_catalogue(project, run_id, log=lambda _: None)
        if register_ranker:
            query, candidate = tower_function(model.query_model), tower_function(model.candidate_model)
            catalogue = retrieval_eval.embed(candidate, candidate_inputs(articles, model.schema))
            assert model.schema is not None

            def generate(
                who: pl.DataFrame, past: pl.DataFrame, start: datetime, n: int
            ) -> retrieval_eval.Recommendations:
                return retrieval_eval.retrieve(query, model.schema, who, past, articles, catalogue, start, n)

            weeks = RankingWeeks.ending(last_day, n_train_weeks=1)
            data = ranking_dataset(
                generate, rows, customers, articles, ds.features, weeks=weeks, n=50, log=lambda _: None
            )
            ranker, _ = train_ranker(
                data.train,
                data.validation,
                RankerConfig(iterations=40, objective="Logloss", threads=1),
                schema=data.schema,
                log=lambda _: None,
            )
            folder = save_ranker(ranker, Path(tmp) / "ranker")
            registry.create_model(RANKER_MODEL, run_id=run_id, metrics=ranker.metrics).save(folder)
    return TinyRun(settings, run_id, last_day, customers, articles)
