"""Runs in the local registry: a run is the set of models that carry its id; serving takes the newest usable one."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from recsys.store.local import LocalModelRegistry
from recsys.training.runs import (
    CANDIDATE_MODEL,
    QUERY_MODEL,
    RANKER_MODEL,
    RETRIEVAL_MODELS,
    RunNotFoundError,
    find_run,
    list_runs,
    new_run_id,
)


def _register(registry: LocalModelRegistry, name: str, run_id: str, tmp_path: Path) -> None:
    folder = tmp_path / f"{name}-{run_id}"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"x")
    registry.create_model(name, run_id=run_id).save(folder)


def test_run_ids_sort_by_creation_time_and_differ() -> None:
    early = new_run_id(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    late = new_run_id(datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC))
    assert early.startswith("run-20260102T030405Z-") and early < late
    assert new_run_id() != new_run_id()


def test_find_run_picks_the_newest_run_that_has_what_is_needed(tmp_path: Path) -> None:
    registry = LocalModelRegistry(tmp_path / "models")
    for name in (QUERY_MODEL, CANDIDATE_MODEL, RANKER_MODEL):
        _register(registry, name, "run-1", tmp_path)
    for name in RETRIEVAL_MODELS:
        _register(registry, name, "run-2", tmp_path)  # a newer run without its ranker yet
    assert [run.run_id for run in list_runs(registry)] == ["run-1", "run-2"]
    assert find_run(registry).run_id == "run-1"  # complete runs only by default
    assert find_run(registry, need=RETRIEVAL_MODELS).run_id == "run-2"
    assert find_run(registry, need=RETRIEVAL_MODELS).embeddings_version == 2
    with pytest.raises(RunNotFoundError, match="run-2 lacks ranker"):
        find_run(registry, "run-2")
    with pytest.raises(RunNotFoundError, match=r"no training run 'run-3'; runs: run-1 \(candidate_tower"):
        find_run(registry, "run-3")


def test_an_empty_registry_says_how_to_train(tmp_path: Path) -> None:
    with pytest.raises(RunNotFoundError, match=r"none yet.*training_pipeline all"):
        find_run(LocalModelRegistry(tmp_path / "models"))
