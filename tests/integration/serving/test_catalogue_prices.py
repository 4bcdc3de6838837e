"""The ranker's article price comes from the store's ``ranking`` view, and a catalogue refresh sees a new one."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from tinyrun import TinyRun

from recsys.config import load_settings
from recsys.data.dataset import ARTICLE_ID
from recsys.features.article_popularity import ARTICLE_PRICE
from recsys.pipeline.groups import ARTICLE_POPULARITY, TRANSACTIONS
from recsys.serving.chain import InProcessChain
from recsys.store import connect


def test_the_catalogue_holds_the_price_paid_and_a_refresh_reads_a_new_one(tiny_run: TinyRun, tmp_path: Path) -> None:
    project = connect(load_settings(backend="local", home=tiny_run.copy_home(tmp_path)))
    fs = project.feature_store
    with InProcessChain(project, tiny_run.run_id) as chain:
        transformer = chain.ranking_transformer
        assert transformer.schema.price  # the tiny ranker reads the price
        rows = transformer.catalogue.get().rows.select(ARTICLE_ID, ARTICLE_PRICE)
        # what customers paid per unit, computed here from the stored transactions the feature pipeline saw (the
        # serving tests record purchases after its last day; their snapshots come with its next run)
        paid = (
            TRANSACTIONS.get(fs)
            .read()
            .filter(pl.col("price").is_not_null(), pl.col("t_dat") <= tiny_run.last_day)
            .group_by(ARTICLE_ID)
            .agg(((pl.col("price") * pl.col("quantity")).sum() / pl.col("quantity").sum()).alias("paid"))
        )
        both = rows.join(paid, on=ARTICLE_ID, how="left")
        sold = both.filter(pl.col("paid").is_not_null())
        assert sold.height > 100
        assert both.filter(pl.col("paid").is_null())[ARTICLE_PRICE].is_null().all()  # never sold: no price
        assert (sold[ARTICLE_PRICE] - sold["paid"]).abs().max() == pytest.approx(0, abs=1e-9)

        article = sold[ARTICLE_ID][0]
        group = ARTICLE_POPULARITY.get(fs)
        latest = group.read(online=True).filter(pl.col(ARTICLE_ID) == article)
        later = latest.with_columns(pl.col("as_of") + timedelta(days=1), pl.lit(123.0).alias(ARTICLE_PRICE))
        group.insert(later)  # e.g. the next incremental run
        refreshed = transformer._read_catalogue().rows.filter(pl.col(ARTICLE_ID) == article)
        assert refreshed[ARTICLE_PRICE].to_list() == [123.0]
