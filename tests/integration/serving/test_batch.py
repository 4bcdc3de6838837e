"""The batch job on the tiny model set: every customer's answer (the shop's new ones too), the same answers as the
chain, upserts."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tinyrun import TinyRun
from typer.testing import CliRunner

from inference_pipeline.cli import app
from recsys.cli_support import run_app
from recsys.config import load_settings
from recsys.inference.batch import RECOMMENDATIONS, BatchError, BatchScorer, batch_recommend, check_request_time
from recsys.pipeline.groups import CUSTOMER_HISTORY
from recsys.serving.actions import record_purchase
from recsys.serving.chain import InProcessChain
from recsys.serving.options import ServingOptions
from recsys.store import Project, connect

TOP_K = 12
SHOP_BUYER = "batch-shop-buyer"  # a customer the shop creates in this module's store (not 'someone-new': see chain)


@pytest.fixture(scope="module")
def home(tiny_run: TinyRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny store, so that the group written here does not leak into other tests."""
    return tiny_run.copy_home(tmp_path_factory.mktemp("batch"))


@pytest.fixture(scope="module")
def project(home: Path, tiny_run: TinyRun) -> Project:
    """The copy, where the shop has made a new customer: a purchase this morning, a history row, no attributes."""
    project = connect(load_settings(backend="local", home=home))
    article = tiny_run.articles.get_column("article_id")[0]
    record_purchase(project, SHOP_BUYER, article, tiny_run.request_time - timedelta(hours=1))
    return project


@pytest.fixture(scope="module")
def served(project: Project, tiny_run: TinyRun) -> set[str]:
    """Who the batch job must score: the customers group's customers and everyone else with a history online (this
    module's shop buyer, and those other tests' purchases made in the session's store before it was copied)."""
    history = CUSTOMER_HISTORY.get(project.feature_store).read(online=True).get_column("customer_id")
    everyone = {*tiny_run.customers.get_column("customer_id"), *history}
    assert SHOP_BUYER in everyone and len(everyone) > tiny_run.customers.height
    return everyone


@pytest.fixture(scope="module")
def written(project: Project, tiny_run: TinyRun) -> pl.DataFrame:
    """One batch run (several batches: 2,000 customers and more by 512), read back online."""
    result = batch_recommend(
        project, tiny_run.run_id, top_k=TOP_K, batch_size=512, request_time=tiny_run.request_time, log=lambda _: None
    )
    written = RECOMMENDATIONS.get(project.feature_store).read(online=True)
    assert result.customers == written.height and result.run_id == tiny_run.run_id
    return written


@pytest.fixture(scope="module")
def chain(project: Project, tiny_run: TinyRun) -> Iterator[InProcessChain]:
    with InProcessChain(project, tiny_run.run_id) as chain:
        yield chain


def bought_in_window(tiny_run: TinyRun, window_days: int = 30, last_n: int = 20) -> pl.DataFrame:
    """``customer_id``, ``article_id`` the filter must remove (the serving defaults), computed here independently."""
    day = tiny_run.request_time.replace(hour=0, minute=0, second=0, microsecond=0)
    recent = (pl.lit(day) - pl.col("last_purchase").dt.truncate("1d")).dt.total_days() <= window_days
    return (
        tiny_run.customers.filter(recent.fill_null(False))
        .select("customer_id", pl.col("last_article_ids").list.head(last_n).alias("article_id"))
        .explode("article_id")
    )


def test_every_customer_gets_top_k_fresh_distinct_products(
    written: pl.DataFrame, tiny_run: TinyRun, served: set[str]
) -> None:
    assert written.height == len(served)
    assert set(written.get_column("customer_id")) == served
    assert written.get_column("run_id").unique().to_list() == [tiny_run.run_id]
    assert written.get_column("computed_at").unique().to_list() == [tiny_run.request_time.replace(microsecond=0)]
    assert (written.get_column("source") == "model").all()  # every stored customer has signal
    assert (written.get_column("article_ids").list.len() == TOP_K).all()
    assert (written.get_column("scores").list.len() == TOP_K).all()
    shown = written.select("customer_id", "article_ids").explode("article_ids").rename({"article_ids": "article_id"})
    per_customer = shown.join(tiny_run.articles.select("article_id", "product_code"), on="article_id").group_by(
        "customer_id"
    )
    counts = per_customer.agg(pl.col("article_id").n_unique().alias("a"), pl.col("product_code").n_unique().alias("p"))
    assert counts.height == written.height
    assert (counts.get_column("a") == TOP_K).all(), "an article twice, or an id the catalogue lacks"
    assert (counts.get_column("p") == TOP_K).all(), "two colour variants of one product"
    banned = bought_in_window(tiny_run)
    assert banned.height > 100  # the filter had work to do
    assert shown.join(banned, on=["customer_id", "article_id"], how="semi").is_empty()


def test_same_answers_as_the_in_process_chain(written: pl.DataFrame, chain: InProcessChain, tiny_run: TinyRun) -> None:
    """Same ordering, scores within float tolerance: the chain rounds scores to 6 decimals for JSON, and the
    query tower runs on a batch of 512 here and of 1 there, so embeddings may differ in the last float bits."""
    ids = tiny_run.recent_buyers(3) + tiny_run.customers.get_column("customer_id").gather([0, 777, 1999]).to_list()
    answer = chain.recommend(
        {
            "instances": [
                {"customer_id": c, "top_k": TOP_K, "request_time": tiny_run.request_time.isoformat()} for c in ids
            ]
        }
    )
    rows = {row["customer_id"]: row for row in written.filter(pl.col("customer_id").is_in(ids)).iter_rows(named=True)}
    for prediction in answer["predictions"]:
        row = rows[prediction["customer_id"]]
        assert row["article_ids"] == prediction["article_ids"], prediction["customer_id"]
        np.testing.assert_allclose(row["scores"], prediction["scores"], atol=2e-6)


def test_short_model_lists_and_cold_start_are_filled_like_the_chain(project: Project, tiny_run: TinyRun) -> None:
    """With fewer candidates than top_k the popular tier fills the answer; an unknown customer gets only it."""
    options = dataclasses.replace(ServingOptions(), retrieve_k=8)
    ids = [*tiny_run.recent_buyers(2), "someone-new"]
    with InProcessChain(project, tiny_run.run_id, options) as chain:
        batch = BatchScorer(chain, tiny_run.request_time).score(pl.Series(ids), TOP_K)
        answer = chain.recommend(
            {"instances": [{"customer_id": c, "request_time": tiny_run.request_time.isoformat()} for c in ids]}
        )
    assert batch.get_column("source").to_list() == ["model", "model", "popularity"]
    for row, prediction in zip(batch.iter_rows(named=True), answer["predictions"], strict=True):
        assert prediction["source"] == row["source"]
        assert row["article_ids"] == prediction["article_ids"] and len(row["article_ids"]) == TOP_K
        np.testing.assert_allclose(row["scores"], prediction["scores"], atol=2e-6)
    assert any(a["source"] == "popularity" for a in answer["predictions"][0]["articles"])  # the fill happened


def test_a_customer_the_shop_created_gets_the_chain_s_personalised_answer(
    written: pl.DataFrame, chain: InProcessChain, tiny_run: TinyRun
) -> None:
    """The shop's new customer has a history online but no customers row: the batch job scores them as a request
    does (the query tower on the history alone, the bought article filtered out), not with the popular tier."""
    rows = written.filter(pl.col("customer_id") == SHOP_BUYER)
    assert rows.height == 1, "the shop's customer has no row"
    row = rows.row(0, named=True)
    bought = tiny_run.articles.get_column("article_id")[0]
    when = tiny_run.request_time.isoformat()
    prediction = chain.recommend({"instances": [{"customer_id": SHOP_BUYER, "top_k": TOP_K, "request_time": when}]})
    prediction = prediction["predictions"][0]
    assert row["source"] == prediction["source"] == "model"
    assert row["article_ids"] == prediction["article_ids"] and bought not in row["article_ids"]
    np.testing.assert_allclose(row["scores"], prediction["scores"], atol=2e-6)


def test_rerun_upserts_and_a_later_run_replaces_the_online_row(
    written: pl.DataFrame, project: Project, home: Path, tiny_run: TinyRun, served: set[str]
) -> None:
    group = RECOMMENDATIONS.get(project.feature_store)
    n = len(served)
    batch_recommend(project, tiny_run.run_id, top_k=TOP_K, request_time=tiny_run.request_time, log=lambda _: None)
    assert group.read().height == n and group.read(online=True).height == n  # same computed_at: no duplicate

    later = tiny_run.request_time + timedelta(days=1)
    result = CliRunner().invoke(
        app,
        ["batch", "--home", str(home), "--run", tiny_run.run_id, "--top-k", "5", "--batch-size", "700",
         "--request-time", later.isoformat()],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"{n:,} customers" in result.output and "recommendations" in result.output
    online = group.read(online=True)
    assert online.height == n and online.get_column("computed_at").unique().to_list() == [later.replace(microsecond=0)]
    assert (online.get_column("article_ids").list.len() == 5).all()
    assert group.read().height == 2 * n  # offline: one snapshot per computed_at


def test_bad_arguments_name_the_field(project: Project) -> None:
    with pytest.raises(BatchError, match="top_k"):
        batch_recommend(project, top_k=0)
    with pytest.raises(BatchError, match="batch_size"):
        batch_recommend(project, batch_size=0)
    with pytest.raises(BatchError, match="request_time 9999-01-01T00:00:00 is later than tomorrow"):
        batch_recommend(project, request_time=datetime(9999, 1, 1))


def test_request_times_up_to_the_end_of_tomorrow_are_taken() -> None:
    now = datetime(2020, 9, 22, 23, 30)
    assert check_request_time(datetime(2020, 9, 23, 23, 59), now=now) == datetime(2020, 9, 23, 23, 59)
    assert check_request_time(datetime(2020, 9, 23, 4, tzinfo=UTC), now=now) == datetime(2020, 9, 23, 4)
    with pytest.raises(BatchError, match="request_time 2020-09-24T00:00:00 is later than tomorrow"):
        check_request_time(datetime(2020, 9, 24), now=now)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0001-01-01T00:00:00+05:00", "--request-time: out of range once converted to UTC"),
        ("9999-01-01", "--request-time 9999-01-01T00:00:00 is later than tomorrow"),
    ],
)
def test_a_bad_request_time_is_one_line_and_writes_nothing(
    value: str,
    message: str,
    written: pl.DataFrame,
    project: Project,
    home: Path,
    tiny_run: TinyRun,
    capsys: pytest.CaptureFixture[str],
) -> None:
    group = RECOMMENDATIONS.get(project.feature_store)
    before = group.read(), group.read(online=True)
    with pytest.raises(SystemExit) as info:
        run_app(app, ["batch", "--home", str(home), "--run", tiny_run.run_id, "--request-time", value])
    err = capsys.readouterr().err
    assert info.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert message in err and "Traceback" not in err
    assert all(a.equals(b) for a, b in zip(before, (group.read(), group.read(online=True)), strict=True))


def test_an_earlier_run_warns_that_online_keeps_the_newer_rows(
    written: pl.DataFrame, project: Project, home: Path, tiny_run: TinyRun, served: set[str]
) -> None:
    """Online, the newest computed_at wins: a run for an earlier time is stored offline only, and says so. Last in
    the module: the snapshot it adds offline would change the counts of the tests above."""
    group = RECOMMENDATIONS.get(project.feature_store)
    online = group.read(online=True).sort("customer_id")
    earlier = (tiny_run.request_time - timedelta(days=3)).replace(microsecond=0)
    args = ["batch", "--home", str(home), "--run", tiny_run.run_id, "--request-time", earlier.isoformat()]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    message = " ".join(result.output.split())
    assert "warning: recommendations has rows computed at" in message and "keep them online" in message
    assert group.read(online=True).sort("customer_id").equals(online)
    assert group.read().filter(pl.col("computed_at") == earlier).height == len(served)
