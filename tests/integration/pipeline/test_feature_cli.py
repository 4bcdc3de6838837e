"""``python -m feature_pipeline backfill | incremental`` as a user runs them, on real H&M rows and synthetic data."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from recsys.config import load_settings
from recsys.pipeline.groups import CUSTOMER_HISTORY, FEATURE_GROUPS, TRANSACTIONS
from recsys.pipeline.views import RETRIEVAL_VIEW
from recsys.store import connect
from tests.integration.test_cli import assert_clean_error, run


def test_hm_sample_backfill_end_to_end(shared_data: Path, tmp_path: Path) -> None:
    proc = run("feature_pipeline", "backfill", "--dataset", f"hm:{shared_data / 'hm-sample'}", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "backfill of hm" in proc.stdout and "customer_history (written)" in proc.stdout
    fs = connect(load_settings(home=tmp_path)).feature_store
    counts = {g.name: g.get(fs).read().height for g in FEATURE_GROUPS}
    assert all(n > 0 for n in counts.values()), counts
    raw = pl.read_csv(shared_data / "hm-sample" / "transactions_train.csv")
    daily = raw.select("customer_id", "article_id", "t_dat").unique().height
    assert counts[TRANSACTIONS.name] == daily  # one row per customer/article/day, none lost
    retrieval = fs.get_feature_view(*RETRIEVAL_VIEW).training_data()[0]
    assert retrieval.height == daily and retrieval["description"].null_count() == 0
    assert retrieval["sales_channel_id"].null_count() == 0  # the H&M transaction feature came through
    # Every history snapshot is valid from the day after the purchases it summarises.
    history = CUSTOMER_HISTORY.get(fs).read()
    assert (history["last_purchase"] < history["as_of"]).all()

    again = run("feature_pipeline", "incremental", "--dataset", f"hm:{shared_data / 'hm-sample'}", home=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "no new days" in " ".join(again.stdout.split())


def test_incremental_on_an_empty_store_is_a_one_line_error(tmp_path: Path) -> None:
    proc = run("feature_pipeline", "incremental", "--dataset", "synthetic:tiny", home=tmp_path)
    assert_clean_error(proc, "no transactions yet", "backfill")


def test_bad_option_values_are_named(tmp_path: Path) -> None:
    proc = run("feature_pipeline", "backfill", "--dataset", "synthetic:tiny", "--on-bad-rows", "skip", home=tmp_path)
    assert proc.returncode == 2 and "--on-bad-rows" in proc.stderr
    proc = run("feature_pipeline", "backfill", "--dataset", "synthetic:tiny", "--until", "soon", home=tmp_path)
    assert_clean_error(proc, "'soon'", "ISO-8601")
