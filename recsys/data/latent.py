"""The latent behaviour model behind the synthetic data, with its exact purchase probabilities.

Every synthetic purchase is drawn in four steps, each a softmax over a handful of choices, so that the true
probability of any article is a product of four cheap factors (this is what makes the oracle cheap):

1. **repurchase**: with the customer's propensity ``rho`` (once they have bought on an earlier day), copy one of
   their earlier purchases, chosen uniformly;
2. otherwise the **index group** (Ladieswear, Menswear, ...) from the customer's index-group preferences;
3. the **product type** within that index group, from the customer's type taste plus the type's season;
4. the **colour** from the customer's colour taste plus the colour's season, weighted by how much of that
   (index group, type, colour) bucket is on sale this week;
5. the **article** within the bucket, by popularity x price fit for the customer's price segment x lifecycle
   (new articles launch during the two years and fade out).

Season, lifecycle and bucket masses change weekly (week ``w`` covers days ``7w .. 7w+6`` from the start), so all
time-dependent tables are indexed by week.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path

import numpy as np

from recsys.data import taxonomy as tx

N_INDEX_GROUPS = len(tx.INDEX_GROUPS)
N_TYPES = len(tx.PRODUCT_TYPES)
N_COLOURS = len(tx.COLOURS)
N_SEGMENTS = 3  # price-sensitive, neutral, premium
N_BUCKETS = N_INDEX_GROUPS * N_TYPES * N_COLOURS
TYPE_MASK = tx.index_group_mask()  # [index group, type]


def _seasonal(amplitude: np.ndarray, peak_day: np.ndarray, day_of_year: np.ndarray) -> np.ndarray:
    """Log-odds season effect [len(day_of_year), len(amplitude)]: +amplitude at the peak, -amplitude opposite."""
    phase = 2.0 * np.pi * (day_of_year[:, None] - peak_day[None, :]) / 365.25
    return (amplitude[None, :] * np.cos(phase)).astype(np.float32)


@dataclass
class LatentModel:
    """All parameters of the behaviour model; arrays are indexed by article / customer row number."""

    start: np.datetime64  # first day of data
    n_days: int
    day_weight: np.ndarray  # [D] relative shopping traffic per day (weekly rhythm, sales, growth)
    # articles
    art_index_group: np.ndarray  # [A] int8
    art_type: np.ndarray  # [A] int8
    art_colour: np.ndarray  # [A] int8
    art_popularity: np.ndarray  # [A] float32, log-odds
    art_zprice: np.ndarray  # [A] float32, log price z-scored within type
    art_launch_week: np.ndarray  # [A] int16, may be negative (launched before the data starts)
    art_lifetime: np.ndarray  # [A] float32, weeks of exponential fade; inf = evergreen
    # customers
    cust_index_group: np.ndarray  # [C, G] float32 log-odds
    cust_type: np.ndarray  # [C, T] float32 log-odds
    cust_colour: np.ndarray  # [C, L] float32 log-odds
    cust_segment: np.ndarray  # [C] int8
    cust_repurchase: np.ndarray  # [C] float32 probability
    segment_price_coef: np.ndarray  # [S] float32

    # -- persistence ---------------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        arrays = {f.name: np.asarray(getattr(self, f.name)) for f in fields(self)}
        arrays["start"] = np.asarray(str(self.start))
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: Path) -> LatentModel:
        with np.load(path) as data:
            values = {f.name: data[f.name] for f in fields(cls)}
        values["start"] = np.datetime64(str(values["start"]), "D")
        values["n_days"] = int(values["n_days"])
        return cls(**values)

    # -- calendar ------------------------------------------------------------------------------------------
    @property
    def n_weeks(self) -> int:
        return (self.n_days + 6) // 7

    @property
    def n_articles(self) -> int:
        return len(self.art_type)

    @property
    def n_customers(self) -> int:
        return len(self.cust_segment)

    def day_of(self, date: dt.date | str | np.datetime64) -> int:
        """Day number (0 = first day of data) of a calendar date."""
        return int((np.datetime64(date, "D") - self.start).astype(int))

    @cached_property
    def _week_day_of_year(self) -> np.ndarray:
        mid_days = self.start + (np.arange(self.n_weeks) * 7 + 3).astype("timedelta64[D]")
        years = mid_days.astype("datetime64[Y]")
        return (mid_days - years).astype(int).astype(np.float64) + 1.0

    # -- week tables ---------------------------------------------------------------------------------------
    @cached_property
    def type_season(self) -> np.ndarray:
        """[W, T] season log-odds of each product type."""
        amp = np.array([p.season_amplitude for p in tx.PRODUCT_TYPES])
        peak = np.array([p.peak_day for p in tx.PRODUCT_TYPES], dtype=np.float64)
        return _seasonal(amp, peak, self._week_day_of_year)

    @cached_property
    def colour_season(self) -> np.ndarray:
        """[W, L] season log-odds of each colour (by perceived colour value)."""
        amp = np.array([tx.COLOUR_SEASON.get(c[2], (0.0, 0))[0] for c in tx.COLOURS])
        peak = np.array([tx.COLOUR_SEASON.get(c[2], (0.0, 0))[1] for c in tx.COLOURS], dtype=np.float64)
        return _seasonal(amp, peak, self._week_day_of_year)

    @cached_property
    def art_bucket(self) -> np.ndarray:
        """[A] bucket id = (index group, type, colour) flattened."""
        g = self.art_index_group.astype(np.int64)
        t = self.art_type.astype(np.int64)
        return (g * N_TYPES + t) * N_COLOURS + self.art_colour.astype(np.int64)

    def lifecycle(self, week: int) -> np.ndarray:
        """[A] sales multiplier of each article in ``week``: 0 before launch, then an exponential fade."""
        age = week - self.art_launch_week.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            fade = np.exp(-np.maximum(age, 0.0) / self.art_lifetime.astype(np.float64))
        return np.where(age >= 0, fade, 0.0)

    def article_weight(self, segment: int, week: int) -> np.ndarray:
        """[A] unnormalised choice weight of each article within its bucket, for one segment and week."""
        base = np.exp(
            self.art_popularity.astype(np.float64)
            + float(self.segment_price_coef[segment]) * self.art_zprice.astype(np.float64)
        )
        return base * self.lifecycle(week)

    @cached_property
    def bucket_mass(self) -> np.ndarray:
        """[S, W, G, T, L] total article weight on sale per bucket (0 = nothing to buy there)."""
        out = np.zeros((N_SEGMENTS, self.n_weeks, N_BUCKETS), dtype=np.float64)
        for s in range(N_SEGMENTS):
            for w in range(self.n_weeks):
                out[s, w] = np.bincount(self.art_bucket, self.article_weight(s, w), minlength=N_BUCKETS)
        return out.reshape(N_SEGMENTS, self.n_weeks, N_INDEX_GROUPS, N_TYPES, N_COLOURS)

    # -- the choice steps (shared by the sampler and the oracle) -------------------------------------------
    # The sampler works in float32 (millions of events); the oracle asks for float64 to be exact.
    def type_taste(self, customers: np.ndarray, weeks: np.ndarray, dtype: type = np.float32) -> np.ndarray:
        """[n, T] log-odds of each product type for (customer, week), before restricting to an index group."""
        return self.cust_type[customers].astype(dtype) + self.type_season[weeks]

    def type_logits(self, customers: np.ndarray, weeks: np.ndarray, index_groups: np.ndarray) -> np.ndarray:
        """[n, T] log-odds of each type for events (customer, week, chosen index group); -inf where not sold."""
        return np.where(TYPE_MASK[index_groups], self.type_taste(customers, weeks), -np.inf)

    def colour_logits(self, customers: np.ndarray, weeks: np.ndarray, dtype: type = np.float32) -> np.ndarray:
        """[n, L] colour log-odds before weighting by what is on sale."""
        return self.cust_colour[customers].astype(dtype) + self.colour_season[weeks]


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically safe softmax that tolerates rows with some -inf entries."""
    top = np.max(logits, axis=axis, keepdims=True)
    e = np.exp(logits - top)
    return e / e.sum(axis=axis, keepdims=True)
