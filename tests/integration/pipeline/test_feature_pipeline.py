"""Backfill and incremental runs on the tiny preset: equal results, idempotence, and the runs' own numbers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from feature_pipeline.cli import app
from recsys.cli_support import run_app
from recsys.config import load_settings
from recsys.data.dataset import Dataset
from recsys.data.sources import load_dataset
from recsys.errors import DataError
from recsys.features.article_popularity import ARTICLE_PRICE
from recsys.features.customer_history import LAST_GAPS
from recsys.pipeline.feature_job import FeatureOptions, backfill, incremental
from recsys.pipeline.groups import ARTICLE_POPULARITY, CUSTOMER_HISTORY, FEATURE_GROUPS, TRANSACTIONS, GroupDef
from recsys.pipeline.recorded import PURCHASES
from recsys.pipeline.views import CUSTOMERS_VIEW, RANKING_VIEW, RETRIEVAL_VIEW, VIEWS
from recsys.serving.actions import ActionError, record_purchase
from recsys.serving.model_set import ModelSetError, view
from recsys.store import Project, connect
from recsys.store.base import FeatureStore
from recsys.store.errors import NotFoundError
from recsys.training.retrieval_job import TrainingDataError, load_retrieval_data
from tests.integration.pipeline.conftest import hand_made


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return load_dataset("synthetic:tiny", load_settings(home=tmp_path_factory.mktemp("data")))


def fresh(tmp_path: Path, name: str) -> Project:
    return connect(load_settings(backend="local", home=tmp_path / name))


def sorted_rows(fs: FeatureStore, group: GroupDef) -> pl.DataFrame:
    frame = group.get(fs).read()
    keys = [*group.primary_key, *([group.event_time] if group.event_time else [])]
    return frame.sort(keys)


def commits(fs: FeatureStore) -> dict[str, int]:
    return {g.name: len(g.get(fs).commit_details()) for g in FEATURE_GROUPS}


def test_backfill_then_incremental_days_equals_one_backfill(tiny: Dataset, tmp_path: Path) -> None:
    last = tiny.transactions.get_column("t_dat").max()
    day = timedelta(days=1)
    stepwise, whole = fresh(tmp_path, "stepwise"), fresh(tmp_path, "whole")
    backfill(stepwise, tiny, FeatureOptions(until=last - 3 * day))
    runs = [incremental(stepwise, tiny, FeatureOptions(until=last - d * day)) for d in (2, 1)]
    runs.append(incremental(stepwise, tiny))
    assert [r.last_day for r in runs] == [last - 2 * day, last - day, last]
    assert all(r.written["transactions"] > 0 and r.written["customer_history"] > 0 for r in runs)
    backfill(whole, tiny)
    for group in FEATURE_GROUPS:
        assert_frame_equal(
            sorted_rows(stepwise.feature_store, group), sorted_rows(whole.feature_store, group), check_row_order=True
        )
        if group.online_enabled:
            online = [group.get(p.feature_store).read(online=True).sort(group.primary_key) for p in (stepwise, whole)]
            assert_frame_equal(*online)


def test_purchases_the_site_records_move_neither_the_watermark_nor_the_training_split(
    tiny: Dataset, tmp_path: Path
) -> None:
    """A purchase recorded after the source's newest day (the shop's Buy, dated today) stays beside the source data:
    the next incremental run still reads every source day after the backfill, training's test week still ends on
    the source's newest day, and once the source covers the purchase's day the source is its record."""
    last = tiny.transactions.get_column("t_dat").max()
    day = timedelta(days=1)
    project = fresh(tmp_path, "home")
    backfill(project, tiny, FeatureOptions(until=last - 3 * day))
    customer = tiny.transactions.filter(pl.col("t_dat") == last - 3 * day).get_column("customer_id")[0]
    bought = tiny.transactions.filter(pl.col("customer_id") == customer).get_column("article_id")
    article = tiny.articles.filter(~pl.col("article_id").is_in(bought.implode())).get_column("article_id")[0]
    record_purchase(project, customer, article, last - day)
    assert load_retrieval_data(project).test.get_column("t_dat").max() == last - 3 * day

    run = incremental(project, tiny)
    assert (run.first_day, run.last_day) == (last - 2 * day, last)  # no source day skipped

    later = record_purchase(project, customer, bought[0], last + day)
    daily = TRANSACTIONS.get(project.feature_store).read().filter(pl.col("customer_id") == customer)
    # the recorded purchase on a day the source now covers (and does not have) no longer counts; the new one does
    assert later.n_purchases == daily.height + 1


def test_feature_runs_keep_the_site_s_recorded_purchases_in_the_buyers_histories(tiny: Dataset, tmp_path: Path) -> None:
    """A purchase recorded today (after every source day) stays in its buyer's online history through the feature
    pipeline's runs: an incremental run's snapshot of the buyer's new source days counts it, and so does a
    backfill's, also for a customer the source data does not have."""
    last = tiny.transactions.get_column("t_dat").max()
    day = timedelta(days=1)
    project = fresh(tmp_path, "home")
    fs = project.feature_store
    backfill(project, tiny, FeatureOptions(until=last - 3 * day))
    late = tiny.transactions.filter(pl.col("t_dat") > last - 3 * day)
    customer = late.get_column("customer_id").sort()[0]  # buys again in the days the backfill left out
    bought = tiny.transactions.filter(pl.col("customer_id") == customer).get_column("article_id")
    article = tiny.articles.filter(~pl.col("article_id").is_in(bought.implode())).get_column("article_id")[0]
    record_purchase(project, customer, article)
    record_purchase(project, "shop-new", article)
    view = fs.get_feature_view(*CUSTOMERS_VIEW)

    def online(who: str) -> dict[str, Any]:
        return view.get_feature_vector({"customer_id": who}, allow_missing=True).row(0, named=True)

    for run in (incremental, backfill):
        run(project, tiny)
        daily = TRANSACTIONS.get(fs).read().filter(pl.col("customer_id") == customer)
        row = online(customer)
        assert row["n_purchases"] == daily.height + 1, run.__name__  # every source day and the recorded purchase
        assert row["last_article_ids"][0] == article
        assert online("shop-new")["last_article_ids"] == [article], run.__name__


def test_incremental_after_an_unfinished_backfill_says_to_run_it_again(
    tiny: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backfill to an earlier day stopped after its popularity snapshots: incremental would find no new day and
    leave popularity months behind, so it refuses."""
    from recsys.errors import DataError
    from recsys.pipeline import feature_job

    last = tiny.transactions.get_column("t_dat").max()
    project = fresh(tmp_path, "home")
    backfill(project, tiny)

    def stopped(*args: object) -> int:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(feature_job, "_write_whole_history", stopped)
        with pytest.raises(KeyboardInterrupt):
            backfill(project, tiny, FeatureOptions(until=last - timedelta(days=10)))
    with pytest.raises(DataError, match=r"a backfill did not finish .* run `python -m feature_pipeline backfill`"):
        incremental(project, tiny)
    backfill(project, tiny)
    assert set(incremental(project, tiny).written.values()) == {0}


def test_incremental_with_another_n_last_than_the_stored_history_s_stops_before_writing(
    tiny: Dataset, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The backfill cut the busiest customers' lists at n_last=5 (nothing records the value: the rows show it, as in
    a store written before the check). Any other --n-last would give the customers who buy again lists of another
    length than the rest: the run stops with one line naming both values and the fix, and writes nothing."""
    last = tiny.transactions.get_column("t_dat").max()
    home = tmp_path / "home"
    project = connect(load_settings(backend="local", home=home))
    fs = project.feature_store
    backfill(project, tiny, FeatureOptions(n_last=5, until=last - timedelta(days=1)))
    history = CUSTOMER_HISTORY.get(fs)

    def stored() -> tuple[dict[str, int], list[pl.DataFrame]]:
        rows = [sorted_rows(fs, g) for g in FEATURE_GROUPS]
        return commits(fs), [*rows, history.read(online=True).sort("customer_id")]

    before = stored()
    for n_last in (4, 20):
        message = rf"--n-last {n_last} differs from the stored customer_history v2's n_last, 5:"
        with pytest.raises(DataError, match=message):
            incremental(project, tiny, FeatureOptions(n_last=n_last))
    with pytest.raises(SystemExit) as info:
        run_app(app, ["incremental", "--dataset", "synthetic:tiny", "--home", str(home), "--n-last", "20"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "pass --n-last 5" in err and "`python -m feature_pipeline backfill --n-last 20` to change it" in err
    after = stored()
    assert after[0] == before[0]  # not even an empty commit
    assert all(a.equals(b) for a, b in zip(after[1], before[1], strict=True))

    run = incremental(project, tiny, FeatureOptions(n_last=5))  # the backfill's value goes on
    assert run.written[CUSTOMER_HISTORY.name] > 0
    assert history.read(online=True).get_column("last_article_ids").list.len().max() == 5


def test_the_shop_writes_its_buyers_histories_with_the_stored_n_last(tiny: Dataset, tmp_path: Path) -> None:
    """A store backfilled with n_last=5: a Buy writes the buyer's list with 5 articles, not the default 20, and an
    explicit other n_last is refused before anything is written."""
    project = fresh(tmp_path, "home")
    fs = project.feature_store
    backfill(project, tiny, FeatureOptions(n_last=5))
    busiest = tiny.transactions.get_column("customer_id").value_counts(sort=True).item(0, "customer_id")
    article = tiny.articles.get_column("article_id")[0]
    with pytest.raises(ActionError, match=r"n_last 20 is not the length the stored customer_history lists .*\(5\)"):
        record_purchase(project, busiest, article, n_last=20)
    with pytest.raises(NotFoundError):  # nothing written
        PURCHASES.get(fs)

    bought = record_purchase(project, busiest, article)
    row = CUSTOMER_HISTORY.get(fs).read(online=True).filter(pl.col("customer_id") == busiest).row(0, named=True)
    assert bought.n_purchases > 5 and len(row["last_article_ids"]) == 5 and row["last_article_ids"][0] == article


def test_a_history_that_cut_no_list_takes_any_n_last_as_long_as_its_longest(project: Project) -> None:
    """Backfilled to Jan 5, c1's three purchases fill no list of 20: an n_last of 2 would cut the lists of the
    customers who buy again, one of 3 writes what the backfill wrote. Once c1's four purchases are cut at 3, that is
    the stored value."""
    ds = hand_made()
    backfill(project, ds, FeatureOptions(until=datetime(2020, 1, 5)))
    shorter = r"--n-last 2 is shorter than the stored customer_history v2's longest list \(3 .*pass --n-last 3 or more"
    with pytest.raises(DataError, match=shorter):
        incremental(project, ds, FeatureOptions(n_last=2))
    assert incremental(project, ds, FeatureOptions(n_last=3)).written[CUSTOMER_HISTORY.name] == 1  # c1 on Jan 10
    with pytest.raises(DataError, match=r"--n-last 20 differs from the stored customer_history v2's n_last, 3"):
        incremental(project, ds)


def test_incremental_twice_writes_nothing_the_second_time(tiny: Dataset, tmp_path: Path) -> None:
    project = fresh(tmp_path, "home")
    fs = project.feature_store
    last = tiny.transactions.get_column("t_dat").max()
    backfill(project, tiny, FeatureOptions(until=last - timedelta(days=1)))
    first = incremental(project, tiny)
    assert first.written["transactions"] > 0
    before = commits(fs), {g.name: sorted_rows(fs, g) for g in FEATURE_GROUPS}
    second = incremental(project, tiny)
    assert set(second.written.values()) == {0} and second.first_day is None
    assert commits(fs) == before[0]  # not even an empty commit
    for group in FEATURE_GROUPS:
        assert_frame_equal(sorted_rows(fs, group), before[1][group.name])


def test_backfill_twice_gives_the_same_tables_and_keeps_the_old_version(tiny: Dataset, tmp_path: Path) -> None:
    project = fresh(tmp_path, "home")
    fs = project.feature_store
    backfill(project, tiny)
    once = {g.name: sorted_rows(fs, g) for g in FEATURE_GROUPS}
    backfill(project, tiny)
    for group in FEATURE_GROUPS:
        assert_frame_equal(sorted_rows(fs, group), once[group.name])
        fg = group.get(fs)
        assert len(fg.commit_details()) >= 2  # an overwrite is a new version; the first stays readable
        assert fg.read(as_of_version=0).height == once[group.name].height


def test_views_exist_and_the_serving_views_read_online(tiny: Dataset, tmp_path: Path) -> None:
    project = fresh(tmp_path, "home")
    fs = project.feature_store
    run = backfill(project, tiny)
    for name, version in VIEWS:
        assert fs.get_feature_view(name, version).version == version
    assert run.written["transactions"] == fs.get_feature_view(*RETRIEVAL_VIEW).training_data()[0].height
    buyer = tiny.transactions.sort("t_dat").get_column("customer_id")[-1]
    row = fs.get_feature_view(*CUSTOMERS_VIEW).get_feature_vector({"customer_id": buyer})
    newest = sorted_rows(fs, CUSTOMER_HISTORY).filter(pl.col("customer_id") == buyer).tail(1)
    assert row["last_article_ids"].to_list() == newest["last_article_ids"].to_list()  # the latest snapshot
    ranking = fs.get_feature_view(*RANKING_VIEW).get_feature_vectors([{"article_id": a} for a in (1, 2)], True)
    assert ranking.columns[:1] == ["article_id"]
    assert {"units_7d", "trend", ARTICLE_PRICE, "description"} <= set(ranking.columns)


def test_incremental_before_any_backfill_says_what_to_run(tiny: Dataset, tmp_path: Path) -> None:
    from recsys.errors import DataError

    with pytest.raises(DataError, match="run `python -m feature_pipeline backfill` first"):
        incremental(fresh(tmp_path, "home"), tiny)


def test_small_history_chunks_give_the_same_snapshots(tiny: Dataset, tmp_path: Path) -> None:
    one, many = fresh(tmp_path, "one"), fresh(tmp_path, "many")
    backfill(one, tiny)
    run = backfill(many, tiny, FeatureOptions(history_chunk_rows=5_000))  # ~8 chunks, one commit
    group = CUSTOMER_HISTORY
    assert len(group.get(many.feature_store).commit_details()) == 1
    assert run.written[group.name] == sorted_rows(one.feature_store, group).height
    # bit for bit: a model trained on them must not depend on how the customers were chunked
    assert_frame_equal(sorted_rows(many.feature_store, group), sorted_rows(one.feature_store, group), check_exact=True)


def test_now_rejects_future_days(tiny: Dataset, tmp_path: Path) -> None:
    from recsys.features import FeatureValidationError

    with pytest.raises(FeatureValidationError, match="t_dat_not_future"):
        backfill(fresh(tmp_path, "home"), tiny, FeatureOptions(now=datetime(2020, 1, 1)))


def _as_before(
    monkeypatch: pytest.MonkeyPatch, group: GroupDef, compute: str, drop: Callable[[Any], Any], queries: tuple[str, ...]
) -> None:
    """Make the pipeline write what it wrote before ``group``'s current version: v1, whose rows lack what ``drop``
    removes from the output of ``feature_job.<compute>``, and v1 of the views whose ``queries`` read it."""
    import recsys.pipeline.feature_job as job
    import recsys.pipeline.views as views

    v1 = replace(group, version=1)
    computed = getattr(job, compute)
    monkeypatch.setattr(job, compute, lambda *a, **k: drop(computed(*a, **k)))
    for module in (job, views):
        monkeypatch.setattr(module, group.name.upper(), v1)
    old = {getattr(views, name) for name in queries}
    old_views = {(name, 1 if query in old else version): query for (name, version), query in views._QUERIES.items()}
    monkeypatch.setattr(views, "_QUERIES", old_views)
    monkeypatch.setattr(views, "VIEWS", tuple(old_views))


def _backfilled_before(
    tiny: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_before: Callable[[pytest.MonkeyPatch], None]
) -> tuple[Project, Project, FeatureOptions]:
    """A store backfilled up to two days before the end by the pipeline ``as_before`` patches, an empty store, and
    the options of that backfill."""
    until = FeatureOptions(until=tiny.transactions.get_column("t_dat").max() - timedelta(days=2))
    old, whole = fresh(tmp_path, "old"), fresh(tmp_path, "whole")
    with monkeypatch.context() as patched:
        as_before(patched)
        backfill(old, tiny, until)
    return old, whole, until


def _as_before_gaps(monkeypatch: pytest.MonkeyPatch) -> None:
    """``customer_history`` v1 had no ``last_article_gaps``; ``retrieval`` and ``customers`` v1 read it."""
    drop = lambda chunks: (c.drop(LAST_GAPS) for c in chunks)  # noqa: E731
    _as_before(monkeypatch, CUSTOMER_HISTORY, "_history_chunks", drop, ("retrieval_query", "customers_query"))


def test_a_store_from_customer_history_v1_gets_v2_from_its_next_incremental_run(
    tiny: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, whole, until = _backfilled_before(tiny, tmp_path, monkeypatch, _as_before_gaps)
    fs = old.feature_store
    v1 = replace(CUSTOMER_HISTORY, version=1)
    stored_v1 = sorted_rows(fs, v1)
    assert LAST_GAPS not in stored_v1.columns and v1.version != CUSTOMER_HISTORY.version

    with pytest.raises(TrainingDataError, match=r"'retrieval' v2 not found.*'retrieval' v1.*incremental"):
        load_retrieval_data(old)  # training before that run says which run creates the view

    # No new day: the run only builds v2, from the stored transactions, as a backfill to that day would.
    rebuilt = incremental(old, tiny, until)
    backfill(whole, tiny, until)
    assert_frame_equal(sorted_rows(fs, CUSTOMER_HISTORY), sorted_rows(whole.feature_store, CUSTOMER_HISTORY))
    assert rebuilt.written[CUSTOMER_HISTORY.name] == sorted_rows(fs, CUSTOMER_HISTORY).height > 0
    assert rebuilt.first_day is None and rebuilt.written.get(TRANSACTIONS.name, 0) == 0
    # New days: v2 exists now, so only the buyers' snapshots are added, and every group equals one backfill.
    added = incremental(old, tiny)
    assert 0 < added.written[CUSTOMER_HISTORY.name] < rebuilt.written[CUSTOMER_HISTORY.name]
    backfill(whole, tiny)
    for group in FEATURE_GROUPS:
        assert_frame_equal(sorted_rows(fs, group), sorted_rows(whole.feature_store, group))
    online = [CUSTOMER_HISTORY.get(p.feature_store).read(online=True).sort("customer_id") for p in (old, whole)]
    assert_frame_equal(*online)
    buyer = tiny.transactions.sort("t_dat").get_column("customer_id")[-1]
    served = fs.get_feature_view(*CUSTOMERS_VIEW).get_feature_vector({"customer_id": buyer})
    newest = online[0].filter(pl.col("customer_id") == buyer)
    assert served[LAST_GAPS].to_list() == newest[LAST_GAPS].to_list() != [None]
    # The old version and the views over it are still there, as they were.
    assert_frame_equal(sorted_rows(fs, v1), stored_v1)
    old_buyer = stored_v1.get_column("customer_id")[-1]
    old_row = fs.get_feature_view("customers", 1).get_feature_vector({"customer_id": old_buyer})
    assert LAST_GAPS not in old_row.columns and old_row.height == 1


def _as_before_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    """``article_popularity`` v1 had no ``article_price``; ``ranking`` v1 reads it."""
    drop = lambda frame: frame.drop(ARTICLE_PRICE)  # noqa: E731
    _as_before(monkeypatch, ARTICLE_POPULARITY, "article_popularity_events", drop, ("ranking_query",))


def test_a_store_from_article_popularity_v1_gets_v2_from_its_next_incremental_run(
    tiny: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, whole, until = _backfilled_before(tiny, tmp_path, monkeypatch, _as_before_prices)
    fs = old.feature_store
    v1 = replace(ARTICLE_POPULARITY, version=1)
    stored_v1 = sorted_rows(fs, v1)
    assert ARTICLE_PRICE not in stored_v1.columns and stored_v1.height > 0

    with pytest.raises(ModelSetError, match=r"'ranking' v2 does not exist.*incremental"):
        view(old, RANKING_VIEW)  # serving before that run says which run creates the view

    # No new day: the run only builds v2, from the stored transactions, as a backfill to that day would.
    rebuilt = incremental(old, tiny, until)
    backfill(whole, tiny, until)
    assert_frame_equal(sorted_rows(fs, ARTICLE_POPULARITY), sorted_rows(whole.feature_store, ARTICLE_POPULARITY))
    assert rebuilt.written[ARTICLE_POPULARITY.name] == sorted_rows(fs, ARTICLE_POPULARITY).height > 0
    assert CUSTOMER_HISTORY.name not in rebuilt.written  # its version was there already
    # New days: v2 exists now, so only the new snapshots are added, and every group equals one backfill.
    added = incremental(old, tiny)
    assert 0 < added.written[ARTICLE_POPULARITY.name] < rebuilt.written[ARTICLE_POPULARITY.name]
    backfill(whole, tiny)
    for group in FEATURE_GROUPS:
        assert_frame_equal(sorted_rows(fs, group), sorted_rows(whole.feature_store, group))
    keys = [{"article_id": a} for a in tiny.transactions.sort("t_dat").get_column("article_id").tail(5)]
    served = [view(p, RANKING_VIEW).get_feature_vectors(keys) for p in (old, whole)]
    assert_frame_equal(*served)
    assert served[0][ARTICLE_PRICE].null_count() == 0  # articles sold with prices
    # The old version and the view over it are still there, as they were.
    assert_frame_equal(sorted_rows(fs, v1), stored_v1)
    old_row = fs.get_feature_view("ranking", 1).get_feature_vectors(keys[:1])
    assert ARTICLE_PRICE not in old_row.columns and old_row.height == 1
