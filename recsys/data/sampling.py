"""Drawing purchases from the latent model, vectorised over millions of events.

Visits come first (how many per customer, on which days), then baskets, then one choice per basket item. Choices
are made in chunks of events so that memory stays bounded at H&M scale; articles are drawn per (price segment,
week) group, where one cumulative-weight array serves every event of the group through ``searchsorted``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys.data.latent import N_BUCKETS, N_COLOURS, N_TYPES, LatentModel

CHUNK = 500_000
MEAN_EXTRA_ITEMS = 1.4  # basket size = 1 + Poisson(1.4)
NEW_CUSTOMER_SHARE = 0.25  # customers who sign up during the two years rather than before


@dataclass
class Events:
    """One row per purchased item, sorted by day then customer."""

    customer: np.ndarray  # int32 row in customers
    day: np.ndarray  # int16 day number
    article: np.ndarray  # int32 row in articles
    channel: np.ndarray  # int8 sales_channel_id (1 store, 2 online)
    repurchase: np.ndarray  # bool, the event copied an earlier purchase


def categorical(weights: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Row-wise inverse-CDF draw: index j of each row with probability weights[j] / row sum."""
    cum = np.cumsum(weights, axis=1)
    target = u * cum[:, -1]
    idx = (cum <= target[:, None]).sum(axis=1)
    return np.minimum(idx, weights.shape[1] - 1)


def _weights_from_logits(logits: np.ndarray) -> np.ndarray:
    top = np.max(logits, axis=1, keepdims=True)
    return np.exp(logits - top)


def sample_fresh(latent: LatentModel, customers: np.ndarray, days: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Articles chosen by the non-repurchase path (steps 2-5 of the latent model) for the given events."""
    n = len(customers)
    weeks = (days // 7).astype(np.int64)
    segments = latent.cust_segment[customers].astype(np.int64)
    group = np.empty(n, dtype=np.int64)
    ptype = np.empty(n, dtype=np.int64)
    colour = np.empty(n, dtype=np.int64)
    u = rng.random((3, n))
    mass = latent.bucket_mass  # [S, W, G, T, L]
    for lo in range(0, n, CHUNK):
        sl = slice(lo, lo + CHUNK)
        c, w = customers[sl], weeks[sl]
        group[sl] = categorical(_weights_from_logits(latent.cust_index_group[c]), u[0, sl])
        ptype[sl] = categorical(_weights_from_logits(latent.type_logits(c, w, group[sl])), u[1, sl])
        on_sale = mass[segments[sl], w, group[sl], ptype[sl]]  # [n, L]
        colour_w = _weights_from_logits(latent.colour_logits(c, w)) * on_sale
        colour[sl] = categorical(colour_w, u[2, sl])
    bucket = (group * N_TYPES + ptype) * N_COLOURS + colour
    return _sample_articles(latent, segments, weeks, bucket, rng)


def _sample_articles(
    latent: LatentModel, segments: np.ndarray, weeks: np.ndarray, bucket: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Step 5: an article within each event's bucket, weighted by popularity x price fit x lifecycle."""
    order = np.argsort(latent.art_bucket, kind="stable")
    sorted_bucket = latent.art_bucket[order]
    bucket_start = np.searchsorted(sorted_bucket, np.arange(N_BUCKETS), side="left")
    bucket_end = np.searchsorted(sorted_bucket, np.arange(N_BUCKETS), side="right")
    out = np.empty(len(bucket), dtype=np.int32)
    u = rng.random(len(bucket))
    key = segments * latent.n_weeks + weeks
    by_key = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[by_key])) + 1
    for group in np.split(by_key, bounds):
        if len(group) == 0:
            continue
        s, w = divmod(int(key[group[0]]), latent.n_weeks)
        cum = np.cumsum(latent.article_weight(s, w)[order])
        b = bucket[group]
        lo, hi = bucket_start[b], bucket_end[b]
        before = np.where(lo > 0, cum[np.maximum(lo - 1, 0)], 0.0)
        target = before + u[group] * (cum[hi - 1] - before)
        pos = np.clip(np.searchsorted(cum, target, side="right"), lo, hi - 1)
        out[group] = order[pos]
    return out


def _visits(
    latent: LatentModel, rate: np.ndarray, n_target: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Visits as (customer, day, basket size), sorted by customer then day."""
    n_cust, n_days = latent.n_customers, latent.n_days
    cdf = np.concatenate([[0.0], np.cumsum(latent.day_weight)])
    cdf /= cdf[-1]
    signup = np.where(rng.random(n_cust) < NEW_CUSTOMER_SHARE, rng.integers(0, n_days, n_cust), 0)
    open_share = 1.0 - cdf[signup]  # share of the calendar's traffic after sign-up
    # Everyone in the customers table has bought at least once (as in H&M); the rest follows the rate.
    extra_visits = max(0.0, n_target / (1.0 + MEAN_EXTRA_ITEMS) - n_cust)
    scale = extra_visits / float(np.sum(rate * open_share))
    n_visits = 1 + rng.poisson(scale * rate * open_share)
    customer = np.repeat(np.arange(n_cust, dtype=np.int32), n_visits)
    u = cdf[signup[customer]] + rng.random(len(customer)) * open_share[customer]
    day = np.clip(np.searchsorted(cdf, u, side="right") - 1, 0, n_days - 1).astype(np.int16)
    order = np.lexsort((day, customer))
    basket = 1 + rng.poisson(MEAN_EXTRA_ITEMS, len(customer))
    return customer[order], day[order], basket


def sample_transactions(latent: LatentModel, rate: np.ndarray, n_target: int, rng: np.random.Generator) -> Events:
    """Draw all purchases: visits, baskets, repurchases and fresh choices."""
    v_customer, v_day, basket = _visits(latent, rate, n_target, rng)
    online = rng.beta(3.0, 1.5, latent.n_customers)
    v_channel = np.where(rng.random(len(v_customer)) < online[v_customer], 2, 1).astype(np.int8)
    customer = np.repeat(v_customer, basket)
    day = np.repeat(v_day, basket)
    channel = np.repeat(v_channel, basket)
    n = len(customer)

    # Events are sorted by (customer, day): find each event's customer run and same-day run.
    idx = np.arange(n, dtype=np.int64)
    new_customer = np.r_[True, customer[1:] != customer[:-1]]
    new_day = new_customer | np.r_[True, day[1:] != day[:-1]]
    customer_start = np.maximum.accumulate(np.where(new_customer, idx, 0))
    day_start = np.maximum.accumulate(np.where(new_day, idx, 0))
    n_before = day_start - customer_start  # purchases on earlier days

    u = rng.random((2, n))
    repurchase = (n_before > 0) & (u[0] < latent.cust_repurchase[customer])
    pointer = np.where(repurchase, customer_start + (u[1] * n_before).astype(np.int64), idx)

    article = np.zeros(n, dtype=np.int32)
    fresh = ~repurchase
    article[fresh] = sample_fresh(latent, customer[fresh], day[fresh].astype(np.int64), rng)
    # A repurchase copies an earlier event, which may itself be a repurchase: jump pointers to a fresh one.
    while True:
        chained = repurchase[pointer] & repurchase
        if not chained.any():
            break
        pointer = np.where(chained, pointer[pointer], pointer)
    article[repurchase] = article[pointer[repurchase]]

    by_day = np.lexsort((customer, day))
    return Events(
        customer=customer[by_day],
        day=day[by_day],
        article=article[by_day],
        channel=channel[by_day],
        repurchase=repurchase[by_day],
    )
