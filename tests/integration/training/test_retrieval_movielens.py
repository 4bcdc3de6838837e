"""``--split per-customer`` end to end on real data: MovieLens latest-small through the feature pipeline and the
retrieval CLI, the published protocol (each user's last 10% of ratings are test, the 10% before validation)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys.config import load_settings
from recsys.store import connect
from recsys.training.runs import QUERY_MODEL, find_run
from tests.integration.test_cli import run
from tests.integration.test_spec_movielens import SPEC

N_MOVIES = 9_742


@pytest.mark.slow
def test_per_customer_retrieval_on_movielens(shared_data: Path, tmp_path: Path) -> None:
    ml = (shared_data / "ml-latest-small").resolve()
    spec = tmp_path / "ml.yaml"
    spec.write_text(SPEC.replace("ratings.csv", str(ml / "ratings.csv")).replace("movies.csv", str(ml / "movies.csv")))
    home = tmp_path / "home"
    backfill = run("feature_pipeline", "backfill", "--dataset", str(spec), home=home)
    assert backfill.returncode == 0, backfill.stderr
    proc = run("training_pipeline", "retrieval", "--dataset", str(spec), "--split", "per-customer", home=home)
    assert proc.returncode == 0, proc.stderr
    # early stopping watches each validation row's own accuracy, not recall as of one (1996) day
    assert "val top_100_accuracy" in proc.stdout and "val recall@100" not in proc.stdout
    assert "per-customer split" in proc.stdout
    metrics = find_run(connect(load_settings(home=home)).model_registry, need=(QUERY_MODEL,)).model(QUERY_MODEL).metrics
    print(metrics)
    # A random ranking puts the rated movie in the top 100 for 100 / 9,742 ~ 1% of rows.
    assert metrics["top_100_accuracy"] >= 4 * 100 / N_MOVIES
    assert metrics["popularity/top_100_accuracy"] > 0
    assert metrics["top_1_accuracy"] <= metrics["top_10_accuracy"] <= metrics["top_100_accuracy"]
    # Over the movies each user had not rated yet (a rated movie is never shown again), measured over three seeds
    # (42/1/2): the towers 0.146/0.150/0.158 against popularity's 0.119 (1.23-1.32x); over the whole catalogue
    # 0.083/0.079/0.087 against 0.0675 (1.17-1.29x). The 1.2x is asserted with a margin as 1.1x.
    assert metrics["top_100_accuracy_unseen"] > metrics["top_100_accuracy"]
    assert metrics["top_100_accuracy_unseen"] >= 1.1 * metrics["popularity/top_100_accuracy_unseen"]
