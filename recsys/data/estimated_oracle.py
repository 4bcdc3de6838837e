"""The oracle with each customer's tastes *estimated* from their purchases: what the data allows a model to reach.

The oracle ranks with every customer's true tastes, which no purchase history fully reveals: a customer with two
purchases has told us little. This module fits the generator's own choice model (:mod:`recsys.data.latent`) to
each customer's purchases before a day and ranks with the estimates instead. Everything global (articles, seasons,
what is on sale, the population's distribution of tastes by age) is taken as known, so the estimate is as good as
a model of exactly the right form could be, short of averaging over the posterior. Its recall is the yardstick a
model can be expected to approach; the oracle's is the one it cannot.

Per customer, each step of the choice story is a softmax whose log-likelihood is concave in the customer's tastes:

- index-group, product-type and colour tastes: the posterior mode under the population's Gaussian prior for the
  customer's age cohort (jointly, by L-BFGS over the customers, whose terms do not interact);
- the price segment: the most probable of the three, from which articles were chosen within their buckets;
- the repurchase propensity: the posterior mean under the generator's Beta(1, 14), counting purchases of an article
  bought on an earlier day as repurchases (a fresh choice rarely lands on one).

Purchases of an article bought on an earlier day are left out of the tastes: they came from the repurchase step.
"""

from __future__ import annotations

import dataclasses
import hashlib
import weakref
from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
import polars as pl
from scipy import sparse
from scipy.optimize import minimize

from recsys.data.latent import N_SEGMENTS, TYPE_MASK, LatentModel
from recsys.data.oracle import Oracle
from recsys.data.synthetic import COHORT_EDGES, REPURCHASE_BETA, SEGMENT_SHARES

SEGMENT_PRIOR = np.array(SEGMENT_SHARES)
MAX_EVENTS = 400_000  # purchases per optimisation: customers are fitted in chunks of about this many
MAX_ITERATIONS = 30  # L-BFGS iterations per chunk; on `small`, recall@100 is then within 0.001 of convergence


def estimated_oracle(
    oracle: Oracle,
    customer_ids: Sequence[Any] | pl.Series | np.ndarray,
    day: date | str,
    iterations: int = MAX_ITERATIONS,
) -> Oracle:
    """An oracle whose tastes of ``customer_ids`` are estimated from their purchases before ``day``.

    Every other customer gets the population's prior for their age: the estimate with no purchases. Rank with it
    from ``day`` on (e.g. ``recall_at_k`` of a window starting that day): it knows nothing later.
    """
    return _estimate(oracle, oracle.customer_rows(customer_ids), oracle.latent.day_of(day), iterations)


# per oracle, its latest estimate: a training run's retrieval and ranking evaluations ask for the same one
_FITTED: weakref.WeakKeyDictionary[Oracle, tuple[tuple[int, str], Oracle]] = weakref.WeakKeyDictionary()


def estimated_oracle_once(
    oracle: Oracle, customer_ids: Sequence[Any] | pl.Series | np.ndarray, day: date | str
) -> Oracle:
    """:func:`estimated_oracle` with the default iterations, fitted once for the same ``oracle`` object, customers
    and day (a fit takes ~12 s on ``small``); a call with other customers or another day fits anew."""
    rows = np.unique(oracle.customer_rows(customer_ids))
    key = (oracle.latent.day_of(day), hashlib.sha256(rows.tobytes()).hexdigest())
    fitted = _FITTED.get(oracle)
    if fitted is None or fitted[0] != key:
        fitted = _FITTED[oracle] = (key, _estimate(oracle, rows, key[0], MAX_ITERATIONS))
    return fitted[1]


def _estimate(oracle: Oracle, customers: np.ndarray, day: int, iterations: int) -> Oracle:
    lat = oracle.latent
    customers = np.unique(np.asarray(customers, dtype=np.int64))
    cohort = _cohorts(oracle.ages, lat.n_customers)
    prior = _Prior.of(lat, cohort)
    tastes = {
        "cust_index_group": prior.mu_g[cohort],
        "cust_type": prior.mu_t[cohort],
        "cust_colour": np.tile(prior.mu_l, (lat.n_customers, 1)),
    }
    events = _Events.before(oracle, customers, day)
    fresh = events.fresh()
    segment = np.full(lat.n_customers, int(SEGMENT_PRIOR.argmax()), dtype=np.int8)
    segment[customers] = _segments(lat, fresh, customers)
    repurchase = np.full(lat.n_customers, REPURCHASE_BETA[0] / sum(REPURCHASE_BETA), dtype=np.float32)
    repurchase[customers] = _repurchase(events, customers)
    for chunk in _chunks(customers, fresh.c, MAX_EVENTS):
        fitted = _fit_tastes(lat, fresh.of(chunk), chunk, cohort[chunk], prior, segment, iterations)
        for name, values in fitted.items():
            tastes[name][chunk] = values
    latent = dataclasses.replace(
        lat,
        **{k: v.astype(np.float32) for k, v in tastes.items()},
        cust_segment=segment,
        cust_repurchase=repurchase,
    )
    return oracle.with_latent(latent)


def _cohorts(ages: np.ndarray | None, n: int) -> np.ndarray:
    """Each customer's age cohort; the last cohort is "age unknown" (its prior is the whole population's)."""
    unknown = len(COHORT_EDGES) + 1
    if ages is None:
        return np.full(n, unknown)
    return np.where(np.isnan(ages), unknown, np.searchsorted(COHORT_EDGES, np.nan_to_num(ages), side="right"))


@dataclasses.dataclass(frozen=True)
class _Prior:
    """The population's distribution of tastes by age cohort: Gaussian, as the generator draws them."""

    mu_g: np.ndarray  # [K, G]
    precision_g: np.ndarray  # [K, G, G]: index groups are correlated (menswear against ladieswear)
    mu_t: np.ndarray  # [K, T]
    var_t: np.ndarray  # [K, T]
    mu_l: np.ndarray  # [L]
    var_l: np.ndarray  # [L]

    @classmethod
    def of(cls, lat: LatentModel, cohort: np.ndarray) -> _Prior:
        groups = [cohort == k for k in range(len(COHORT_EDGES) + 1)]
        groups.append(np.ones_like(cohort, dtype=bool))  # age unknown: the whole population
        ig, ty = lat.cust_index_group.astype(np.float64), lat.cust_type.astype(np.float64)
        # a cohort too small to describe (tiny data sets) borrows the population's figures
        groups = [m if m.sum() > ig.shape[1] * 4 else groups[-1] for m in groups]
        return cls(
            mu_g=np.stack([ig[m].mean(0) for m in groups]),
            precision_g=np.stack([np.linalg.inv(np.cov(ig[m].T)) for m in groups]),
            mu_t=np.stack([ty[m].mean(0) for m in groups]),
            var_t=np.stack([ty[m].var(0) for m in groups]),
            mu_l=lat.cust_colour.mean(0).astype(np.float64),
            var_l=lat.cust_colour.var(0).astype(np.float64),
        )


@dataclasses.dataclass(frozen=True)
class _Events:
    """Purchases of the customers before the day: customer row, article row, week, and whether a repurchase."""

    c: np.ndarray
    a: np.ndarray
    week: np.ndarray
    repeat: np.ndarray  # the article was bought by the customer on an earlier day
    after_first_day: np.ndarray  # the customer had bought on an earlier day (a repurchase was possible)

    @classmethod
    def before(cls, oracle: Oracle, customers: np.ndarray, day: int) -> _Events:
        index, a, d = oracle.history(customers, day)  # by customer, then day
        c = customers[index]
        starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]]) if len(c) else np.zeros(0, dtype=np.int64)
        first_of_customer = np.repeat(d[starts], np.diff(np.r_[starts, len(c)]))
        return cls(c=c, a=a, week=d // 7, repeat=d > _first_day(c, a, d), after_first_day=d > first_of_customer)

    def fresh(self) -> _Events:
        return self._take(~self.repeat)

    def of(self, customers: np.ndarray) -> _Events:
        return self._take(np.isin(self.c, customers))

    def _take(self, keep: np.ndarray) -> _Events:
        return _Events(*(getattr(self, f.name)[keep] for f in dataclasses.fields(self)))


def _first_day(c: np.ndarray, a: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Per purchase, the first day its customer bought its article."""
    order = np.lexsort((d, a, c))
    key_c, key_a, days = c[order], a[order], d[order]
    new = np.r_[True, (key_c[1:] != key_c[:-1]) | (key_a[1:] != key_a[:-1])] if len(c) else np.zeros(0, bool)
    first = days[np.flatnonzero(new)][np.cumsum(new) - 1]
    out = np.empty_like(d)
    out[order] = first
    return out


def _chunks(customers: np.ndarray, event_customers: np.ndarray, max_events: int) -> list[np.ndarray]:
    """The customers split into runs whose purchases number about ``max_events`` at most (one customer each)."""
    counts = np.bincount(np.searchsorted(customers, event_customers), minlength=len(customers))
    cuts = np.flatnonzero(np.diff(np.cumsum(counts) // max_events, prepend=0)) if len(customers) else []
    return [part for part in np.split(customers, cuts) if len(part)]


def _segments(lat: LatentModel, fresh: _Events, customers: np.ndarray) -> np.ndarray:
    """The most probable price segment of each customer, from which articles they chose within their buckets
    (``fresh``: their purchases that were not repurchases)."""
    a, w = fresh.a, fresh.week
    g, t, col = (lat.art_index_group[a].astype(np.int64), lat.art_type[a].astype(np.int64), lat.art_colour[a])
    row = np.searchsorted(customers, fresh.c)
    log_post = np.tile(np.log(SEGMENT_PRIOR), (len(customers), 1))
    for s in range(N_SEGMENTS):
        # log w_s(a) − log mass_s(bucket); the lifecycle is the same for every segment and cancels in the argmax
        chosen = float(lat.segment_price_coef[s]) * lat.art_zprice[a].astype(np.float64)
        log_post[:, s] += np.bincount(row, chosen - np.log(lat.bucket_mass[s][w, g, t, col]), len(customers))
    return log_post.argmax(axis=1).astype(np.int8)


def _repurchase(events: _Events, customers: np.ndarray) -> np.ndarray:
    """The posterior mean of each customer's repurchase propensity."""
    row = np.searchsorted(customers, events.c)
    possible = events.after_first_day
    repeats = np.bincount(row[possible], events.repeat[possible].astype(np.float64), len(customers))
    trials = np.bincount(row[possible], minlength=len(customers))
    a, b = REPURCHASE_BETA
    return ((a + repeats) / (a + b + trials)).astype(np.float32)


def _fit_tastes(
    lat: LatentModel,
    fresh: _Events,
    customers: np.ndarray,
    cohort: np.ndarray,
    prior: _Prior,
    segment: np.ndarray,
    iterations: int,
) -> dict[str, np.ndarray]:
    """The posterior mode of the index-group, type and colour tastes of ``customers`` (sorted rows)."""
    n, e = len(customers), len(fresh.c)
    row = np.searchsorted(customers, fresh.c)
    a, w = fresh.a, fresh.week
    g, t, col = (lat.art_index_group[a].astype(np.int64), lat.art_type[a].astype(np.int64), lat.art_colour[a])
    G, T, L = lat.cust_index_group.shape[1], lat.cust_type.shape[1], lat.cust_colour.shape[1]
    per_customer = sparse.csr_matrix((np.ones(e), (row, np.arange(e))), shape=(n, e))
    count_g, count_t, count_l = (
        np.asarray(sparse.csr_matrix((np.ones(e), (row, k)), shape=(n, size)).todense())
        for k, size in ((g, G), (t, T), (col, L))
    )
    n_bought = count_g.sum(axis=1)
    # per purchase: the offsets beside the customer's taste in the type and colour softmaxes
    type_offset = np.where(TYPE_MASK[g], lat.type_season[w].astype(np.float64), -np.inf)
    with np.errstate(divide="ignore"):  # colours with nothing on sale in the bucket: -inf, never chosen
        colour_offset = lat.colour_season[w].astype(np.float64) + np.log(lat.bucket_mass[segment[fresh.c], w, g, t])
    chosen_offsets = type_offset[np.arange(e), t].sum() + colour_offset[np.arange(e), col].sum()
    mu_g, precision_g = prior.mu_g[cohort], prior.precision_g[cohort]
    mu_t, var_t = prior.mu_t[cohort], prior.var_t[cohort]

    def softmax(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row's log-normaliser and softmax."""
        top = logits.max(axis=1, keepdims=True)
        exp = np.exp(logits - top)
        total = exp.sum(axis=1, keepdims=True)
        return (top + np.log(total))[:, 0], exp / total

    def negative_log_posterior(flat: np.ndarray) -> tuple[float, np.ndarray]:
        th_g, th_t, th_l = (part.reshape(n, -1) for part in np.split(flat, [n * G, n * (G + T)]))
        value = (count_g * th_g).sum() + (count_t * th_t).sum() + (count_l * th_l).sum() + chosen_offsets
        norm_g, p_g = softmax(th_g)  # one index-group softmax per customer, whatever the week
        norm_t, p_t = softmax(th_t[row] + type_offset)
        norm_l, p_l = softmax(th_l[row] + colour_offset)
        value -= (n_bought * norm_g).sum() + norm_t.sum() + norm_l.sum()
        d_g, d_t, d_l = th_g - mu_g, th_t - mu_t, th_l - prior.mu_l
        pd_g = np.einsum("cij,cj->ci", precision_g, d_g)
        value -= 0.5 * ((d_g * pd_g).sum() + (d_t**2 / var_t).sum() + (d_l**2 / prior.var_l).sum())
        grad_g = count_g - n_bought[:, None] * p_g - pd_g
        grad_t = count_t - per_customer @ p_t - d_t / var_t
        grad_l = count_l - per_customer @ p_l - d_l / prior.var_l
        return -value, -np.concatenate([grad_g.ravel(), grad_t.ravel(), grad_l.ravel()])

    start = np.concatenate([mu_g.ravel(), mu_t.ravel(), np.tile(prior.mu_l, n)])
    result = minimize(negative_log_posterior, start, jac=True, method="L-BFGS-B", options={"maxiter": iterations})
    th_g, th_t, th_l = (part.reshape(n, -1) for part in np.split(result.x, [n * G, n * (G + T)]))
    return {"cust_index_group": th_g, "cust_type": th_t, "cust_colour": th_l}
