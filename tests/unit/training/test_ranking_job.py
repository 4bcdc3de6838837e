"""Which split the ranking step of a run uses: the one its towers recorded, or a clear refusal."""

from __future__ import annotations

from datetime import datetime

import pytest

from recsys.training.ranking_job import run_split
from recsys.training.runs import Run
from recsys.training.splits import Split, TrainingDataError

RUN = Run("run-x")
TIME = {"val_start": "2020-09-09T00:00:00", "test_start": "2020-09-16T00:00:00", "end": "2020-09-23T00:00:00"}


def test_a_run_ranks_on_its_recorded_time_split_even_one_saved_before_splits_had_a_kind() -> None:
    assert run_split(RUN, {"split": TIME}) == Split(datetime(2020, 9, 9), datetime(2020, 9, 16), datetime(2020, 9, 23))
    assert run_split(RUN, {"split": TIME | {"kind": "time"}}) == run_split(RUN, {"split": TIME})


def test_a_run_without_a_recorded_split_is_refused() -> None:
    with pytest.raises(TrainingDataError, match=r"run run-x recorded no split .* in sample: train a new run"):
        run_split(RUN, {"run_id": "run-x", "metrics": []})


@pytest.mark.parametrize(("kind", "share", "seed"), [("per-customer", 0.1, None), ("random", 0.2, 42)])
def test_a_run_split_by_rows_is_refused(kind: str, share: float, seed: int | None) -> None:
    saved = TIME | {"kind": kind, "share": share, "seed": seed}
    with pytest.raises(TrainingDataError, match=rf"run run-x: a {kind} split .* rank a run trained on the time split"):
        run_split(RUN, {"split": saved})
