"""How the retrieval rows are split into training, validation and test (design §6).

The time split is the honest one: the last days are the test period, as serving would meet them. The per-customer
and random splits hold out rows instead, only to compare with published numbers of those protocols.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID, T_DAT
from recsys.errors import RecsysError
from recsys.store.timeparse import between


class TrainingDataError(RecsysError):
    """The feature store does not hold what training needs (no view, too few days, an empty week)."""


SPLITS = ("time", "per-customer", "random")


@dataclass(frozen=True)
class Split:
    """How the rows were split. ``time`` (design §6) by day boundaries (midnights): train < ``val_start`` ≤
    validation < ``test_start`` ≤ test < ``end``. The others, only for comparison with published protocols, hold
    out rows instead: ``per-customer`` each customer's last ``share`` of rows (and as many before them for
    validation), ``random`` a ``share`` of all rows drawn with ``seed`` (and as many more for validation); their
    days then only bound the periods' first rows."""

    val_start: datetime
    test_start: datetime
    end: datetime
    kind: str = "time"
    share: float | None = None
    seed: int | None = None

    @classmethod
    def before(cls, end: datetime, test_days: int = 7, val_days: int = 7) -> Split:
        test_start = end - timedelta(days=test_days)
        return cls(test_start - timedelta(days=val_days), test_start, end)

    @property
    def per_row(self) -> bool:
        """Held-out rows, not days: no single as-of day, so each row is evaluated from its own features."""
        return self.kind != "time"

    def describe(self) -> str:
        if self.kind == "per-customer":
            return f"per-customer split (last {self.share:.0%} of each customer's rows)"
        if self.kind == "random":
            return f"random split ({self.share:.0%} of rows for test, as many for validation, seed {self.seed})"
        return (
            f"train < {self.val_start:%Y-%m-%d} ≤ validation < {self.test_start:%Y-%m-%d} ≤ test < {self.end:%Y-%m-%d}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, saved: Mapping[str, Any]) -> Split:
        """The inverse of :meth:`to_dict`; a split saved before ``kind`` existed is a time split."""
        days = {key: datetime.fromisoformat(str(saved[key])) for key in ("val_start", "test_start", "end")}
        return cls(**days, kind=saved.get("kind", "time"), share=saved.get("share"), seed=saved.get("seed"))


def check_share(kind: str, share: float) -> None:
    """A row split's test share: validation takes as many rows again, so training keeps more than none."""
    if not 0 < share < 0.5:
        raise TrainingDataError(f"the {kind} split's test share must be in (0, 0.5), not {share}")


# The least a training period must hold. A whole week, as long as the validation and test weeks, so that training
# has seen every weekday's shopping; and at least as many rows as validation, since a model learnt from fewer
# purchases than it is stopped on fits noise (two weeks of data kept 1 training row against 355 in validation).
# Every shipped data set clears both by far: tiny and hm-sample hold ~720 training days, ml-latest-small's
# per-customer split 80% of its rows.
MIN_TRAIN_DAYS = 7


def check_training_period(train: pl.DataFrame, val: pl.DataFrame, test: pl.DataFrame, periods: Split) -> None:
    """Refuse, before any training, a split whose training period is too small to learn from."""
    sizes = f"validation {val.height:,} rows, test {test.height:,} rows"
    if periods.per_row:
        if train.height < max(val.height, 1):
            raise TrainingDataError(
                f"the {periods.describe()} leaves {train.height:,} training rows ({sizes}): training needs at least "
                "as many rows as validation; use more data per customer, a smaller --test-fraction or the time split"
            )
        return
    first = train.get_column(T_DAT).min() if train.height else None
    days = (periods.val_start - datetime(first.year, first.month, first.day)).days if first is not None else 0
    if days < MIN_TRAIN_DAYS or train.height < val.height:
        held = f"{first:%Y-%m-%d}..{periods.val_start - timedelta(days=1):%Y-%m-%d}" if first is not None else "none"
        raise TrainingDataError(
            f"too little training data: the training period before {periods.val_start:%Y-%m-%d} holds "
            f"{train.height:,} row(s) on {days} day(s) ({held}), against {sizes}; training needs at least "
            f"{MIN_TRAIN_DAYS} days and as many rows as validation: add older purchases to the data set"
        )


def split_by_time(rows: pl.DataFrame, periods: Split) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Train, validation and test rows of ``periods`` by ``t_dat``, each period's start inclusive (design §6)."""
    dtype = rows.schema[T_DAT]
    bounds = ((None, periods.val_start), (periods.val_start, periods.test_start), (periods.test_start, periods.end))
    train, val, test = (rows.filter(between(T_DAT, dtype, start, end)) for start, end in bounds)
    return train, val, test


def split_per_customer(rows: pl.DataFrame, share: float) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Each customer's rows by time: the last ``ceil(share·n)`` are test, as many before them validation."""
    check_share("per-customer", share)
    ordered = rows.sort(CUSTOMER_ID, T_DAT, ARTICLE_ID)
    n = pl.len().over(CUSTOMER_ID)
    held = (pl.lit(share) * n).ceil().cast(pl.Int64)
    position = pl.int_range(pl.len()).over(CUSTOMER_ID)
    part = ordered.select(
        pl.when(position >= n - held).then(2).when(position >= n - 2 * held).then(1).otherwise(0).alias("_part")
    ).to_series()
    return tuple(ordered.filter(part == i) for i in range(3))  # type: ignore[return-value]


def split_random(rows: pl.DataFrame, share: float, seed: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """A random ``round(share·n)`` rows are test and as many others validation, drawn from ``seed``; the rest train.

    The draw depends only on the rows (ordered by their keys first) and the seed, not on how the store returned them.
    """
    check_share("random", share)
    ordered = rows.sort(CUSTOMER_ID, T_DAT, ARTICLE_ID)
    held = round(share * ordered.height)
    order = np.random.default_rng(seed).permutation(ordered.height)
    part = np.zeros(ordered.height, dtype=np.int8)
    part[order[:held]], part[order[held : 2 * held]] = 2, 1
    return tuple(ordered.filter(pl.Series(part == i)) for i in range(3))  # type: ignore[return-value]
