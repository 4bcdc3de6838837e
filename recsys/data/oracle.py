"""The oracle: the true purchase probabilities of the synthetic data, hence the best achievable ranking.

For a customer and a day, the probability that their next purchase is article ``a`` is (see
:mod:`recsys.data.latent`)::

    p(a) = rho * n(a) / n  +  (1 - rho) * P(group) * P(type | group) * exp(colour taste) * w(a) / Z(group, type)

where ``n(a)/n`` is the share of ``a`` in the customer's purchases on earlier days (the repurchase term, used only
when there are any), ``w(a)`` the article's weight for the customer's price segment that week, and ``Z`` sums the
colour-weighted weights of the (group, type) bucket. Every factor is a small table lookup, so whole-catalogue
probabilities for hundreds of customers cost a few array operations.

Ranking articles by the expected number of purchases over a window is the best any model can do with the
information available at the window's start; its recall@K is the ceiling models are compared with.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import polars as pl

from recsys.data.latent import TYPE_MASK, LatentModel, softmax
from recsys.errors import DataError
from recsys.training.metrics import recall_at_k

BATCH = 256


class Oracle:
    """Exact purchase probabilities for the customers and articles of one synthetic data set."""

    def __init__(
        self,
        latent: LatentModel,
        customer_ids: pl.Series,
        article_ids: pl.Series,
        transactions: pl.DataFrame,
        ages: np.ndarray | None = None,
    ) -> None:
        self.latent = latent
        self.ages = ages  # [C] float, NaN where unknown: the customers' ages, for estimating their tastes
        self.customer_ids = customer_ids
        self.article_ids = article_ids.to_numpy()
        self._customer_row = pl.DataFrame({"customer_id": customer_ids, "_c": np.arange(len(customer_ids))})
        self._article_row = pl.DataFrame({"article_id": article_ids, "_a": np.arange(len(article_ids))})
        history = (
            self._rows(transactions)
            .with_columns(_d=(pl.col("t_dat").cast(pl.Date) - pl.lit(latent.start.astype("O"))).dt.total_days())
            .sort("_c", "_d")
        )
        self._hist_c = history["_c"].to_numpy()
        self._hist_a = history["_a"].to_numpy()
        self._hist_d = history["_d"].to_numpy()

    @classmethod
    def from_dir(cls, folder: Path) -> Oracle:
        """The oracle of a data set written by ``SyntheticData.write``."""
        path = Path(folder) / "latent.npz"
        if not path.exists():
            raise DataError(f"{path}: not found; the oracle exists only for synthetic data sets")
        customers = pl.read_parquet(Path(folder) / "customers.parquet", columns=["customer_id", "age"])
        return cls(
            LatentModel.load(path),
            customers["customer_id"],
            pl.read_parquet(Path(folder) / "articles.parquet", columns=["article_id"])["article_id"],
            pl.read_parquet(
                Path(folder) / "transactions_train.parquet", columns=["t_dat", "customer_id", "article_id"]
            ),
            customers["age"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
        )

    def with_latent(self, latent: LatentModel) -> Oracle:
        """The same customers, articles and histories ranked with another latent model (e.g. estimated tastes)."""
        other = copy.copy(self)
        other.latent = latent
        return other

    # -- id mapping ----------------------------------------------------------------------------------------
    def _rows(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Add row numbers _c (customer) and _a (article, when present); unknown ids are an error."""
        out = frame.join(self._customer_row, on="customer_id", how="left")
        if "article_id" in frame.columns:
            out = out.join(self._article_row, on="article_id", how="left")
        for col, what in (("_c", "customer_id"), ("_a", "article_id")):
            if col in out.columns and out[col].null_count():
                bad = out.filter(pl.col(col).is_null())[what].head(3).to_list()
                raise DataError(
                    f"oracle: {what} not in this synthetic data set: {bad}; if the feature store was built from "
                    "another data set, pass the same --dataset (or RECSYS_DATASET) as its feature pipeline run"
                )
        return out

    def customer_rows(self, customer_ids: list | pl.Series | np.ndarray) -> np.ndarray:
        ids = pl.DataFrame({"customer_id": pl.Series(customer_ids, dtype=self.customer_ids.dtype)})
        return self._rows(ids)["_c"].to_numpy()

    # -- probabilities -------------------------------------------------------------------------------------
    def history_counts(self, customers: np.ndarray, before_day: int) -> np.ndarray:
        """[B, A] how often each customer bought each article on days before ``before_day``."""
        counts = np.zeros((len(customers), self.latent.n_articles), dtype=np.float64)
        rows, articles, _ = self.history(customers, before_day)
        np.add.at(counts, (rows, articles), 1.0)
        return counts

    def history(self, customers: np.ndarray, before_day: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The purchases of ``customers`` on days before ``before_day``: (index into ``customers``, article row,
        day), by customer then day."""
        lo = np.searchsorted(self._hist_c, customers, side="left")
        hi = np.searchsorted(self._hist_c, customers, side="right")
        lengths = hi - lo
        rows = np.repeat(np.arange(len(customers)), lengths)
        idx = np.repeat(lo - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        keep = self._hist_d[idx] < before_day
        return rows[keep], self._hist_a[idx[keep]], self._hist_d[idx[keep]]

    def fresh_probabilities(self, customers: np.ndarray, week: int) -> np.ndarray:
        """[B, A] probability of each article on the non-repurchase path, in ``week``."""
        lat = self.latent
        p_group = softmax(lat.cust_index_group[customers].astype(np.float64))  # [B, G]
        weeks = np.full(len(customers), week)
        type_taste = lat.type_taste(customers, weeks, np.float64)  # [B, T]
        masked = np.where(TYPE_MASK[None, :, :], type_taste[:, None, :], -np.inf)  # [B, G, T]
        p_type = softmax(masked, axis=2)
        colour_logits = lat.colour_logits(customers, weeks, np.float64)  # [B, L]
        colour_w = np.exp(colour_logits - colour_logits.max(axis=1, keepdims=True))  # [B, L]
        segments = lat.cust_segment[customers].astype(np.int64)
        mass = lat.bucket_mass[segments, week]  # [B, G, T, L]
        z = np.einsum("bl,bgtl->bgt", colour_w, mass)
        g, t, col = (lat.art_index_group.astype(np.int64), lat.art_type.astype(np.int64), lat.art_colour)
        bucket_p = p_group[:, g] * p_type[:, g, t] / z[:, g, t]  # [B, A]
        weights = np.stack([lat.article_weight(s, week) for s in range(len(lat.segment_price_coef))])
        return bucket_p * colour_w[:, col] * weights[segments]

    def probabilities(self, customers: np.ndarray, day: int) -> np.ndarray:
        """[B, A] probability that each customer's next purchase on ``day`` is each article."""
        return self._mix(customers, day, self.fresh_probabilities(customers, day // 7))

    def _mix(self, customers: np.ndarray, day: int, fresh: np.ndarray) -> np.ndarray:
        counts = self.history_counts(customers, day)
        n = counts.sum(axis=1, keepdims=True)
        rho = np.where(n > 0, self.latent.cust_repurchase[customers][:, None].astype(np.float64), 0.0)
        return rho * counts / np.maximum(n, 1.0) + (1.0 - rho) * fresh

    def window_scores(self, customers: np.ndarray, first_day: int, last_day: int) -> np.ndarray:
        """[B, A] expected-purchase scores over days first..last, from what is known at ``first_day``.

        Days are weighted by the calendar's traffic; the history is the one before ``first_day``.
        """
        days = np.arange(first_day, last_day + 1)
        weeks = days // 7
        day_w = self.latent.day_weight[np.minimum(days, self.latent.n_days - 1)]
        fresh = np.zeros((len(customers), self.latent.n_articles))
        for week in np.unique(weeks):
            fresh += day_w[weeks == week].sum() * self.fresh_probabilities(customers, int(week))
        return self._mix(customers, first_day, fresh / day_w.sum())

    # -- rankings ------------------------------------------------------------------------------------------
    def top_k_rows(self, customers: np.ndarray, first_day: int, k: int, last_day: int | None = None) -> np.ndarray:
        """[n, k] article row numbers with the highest scores, best first, computed in batches."""
        return self.top_k_and_pair_scores(customers, first_day, k, last_day)[0]

    def top_k_and_pair_scores(
        self,
        customers: np.ndarray,
        first_day: int,
        k: int,
        last_day: int | None = None,
        pairs: pl.DataFrame | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`top_k_rows`, and from the same scoring pass the window scores of ``pairs`` (``customer_id``,
        ``article_id`` rows of these customers), in their order: how the oracle orders a fixed candidate set (e.g. a
        retriever's) beside the whole catalogue."""
        last_day = first_day if last_day is None else last_day
        k = min(k, self.latent.n_articles)
        out = np.empty((len(customers), k), dtype=np.int64)
        position, article = self._pair_rows(customers, pairs)
        by_position = np.argsort(position, kind="stable")
        bounds = np.searchsorted(position[by_position], np.arange(0, len(customers) + BATCH, BATCH))
        pair_scores = np.empty(len(position), dtype=np.float64)
        for batch, lo in enumerate(range(0, len(customers), BATCH)):
            scores = self.window_scores(customers[lo : lo + BATCH], first_day, last_day)
            part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
            out[lo : lo + BATCH] = np.take_along_axis(part, order, axis=1)
            take = by_position[bounds[batch] : bounds[batch + 1]]
            pair_scores[take] = scores[position[take] - lo, article[take]]
        return out, pair_scores

    def _pair_rows(self, customers: np.ndarray, pairs: pl.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
        """Each pair's position in ``customers`` and its article row."""
        if pairs is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        rows = self._rows(pairs.select("customer_id", "article_id"))
        c = rows["_c"].to_numpy()
        if not np.isin(c, customers).all():
            raise ValueError("oracle: pairs of customers that are not being ranked")
        by_row = np.argsort(customers)
        return by_row[np.searchsorted(customers[by_row], c)], rows["_a"].to_numpy()

    def oracle_top_k(self, customer_ids: list | pl.Series | np.ndarray, day: str | np.datetime64, k: int) -> np.ndarray:
        """[n, k] the ``k`` most probable article ids for each customer on ``day``."""
        rows = self.top_k_rows(self.customer_rows(customer_ids), self.latent.day_of(day), k)
        return self.article_ids[rows]

    def recall_at_k(self, held_out: pl.DataFrame, ks: tuple[int, ...] = (12, 50, 100, 200)) -> dict[int, float]:
        """Oracle recall@K per customer over held-out transactions (customer_id, article_id, t_dat).

        The ranking is made at the first held-out day with the history before it, scored over the held-out days.
        """
        held = self._rows(held_out.select("customer_id", "article_id", "t_dat"))
        dates = held["t_dat"].cast(pl.Date)
        first, last = self.latent.day_of(dates.min()), self.latent.day_of(dates.max())
        customers = np.unique(held["_c"].to_numpy())
        top = self.top_k_rows(customers, first, max(ks), last)
        row_of = np.searchsorted(customers, held["_c"].to_numpy())
        return {k: recall_at_k(top, row_of, held["_a"].to_numpy(), k) for k in ks}
