"""The oracle's closed form against brute force, and against the sampler itself."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from recsys.data import oracle as oracle_module
from recsys.data import taxonomy as tx
from recsys.data.latent import LatentModel
from recsys.data.oracle import Oracle
from recsys.data.sampling import sample_fresh
from recsys.data.synthetic import SyntheticData, generate
from recsys.training.metrics import recall_at_k


@pytest.fixture(scope="module")
def tiny() -> SyntheticData:
    return generate("tiny", seed=42)


@pytest.fixture(scope="module")
def oracle(tiny: SyntheticData) -> Oracle:
    return Oracle(tiny.latent, tiny.customers["customer_id"], tiny.articles["article_id"], tiny.transactions)


def brute_force_probabilities(lat: LatentModel, tiny: SyntheticData, c: int, day: int) -> list[float]:
    """The generative story of recsys.data.latent, written out with loops over plain Python numbers."""
    week = day // 7
    n_art = lat.n_articles
    seg = int(lat.cust_segment[c])

    def weight(a: int) -> float:
        age = week - int(lat.art_launch_week[a])
        if age < 0:
            return 0.0
        life = 1.0 if math.isinf(lat.art_lifetime[a]) else math.exp(-age / float(lat.art_lifetime[a]))
        return (
            math.exp(float(lat.art_popularity[a]) + float(lat.segment_price_coef[seg]) * float(lat.art_zprice[a]))
            * life
        )

    groups = [math.exp(float(x)) for x in lat.cust_index_group[c]]
    p_group = [x / sum(groups) for x in groups]
    fresh = []
    for a in range(n_art):
        if weight(a) == 0.0:  # not on sale this week
            fresh.append(0.0)
            continue
        g, t, col = int(lat.art_index_group[a]), int(lat.art_type[a]), int(lat.art_colour[a])
        allowed = [tt for tt, ptype in enumerate(tx.PRODUCT_TYPES) if tx.INDEX_GROUPS[g] in ptype.index_groups]
        type_e = {tt: math.exp(float(lat.cust_type[c, tt]) + float(lat.type_season[week, tt])) for tt in allowed}
        p_type = type_e[t] / sum(type_e.values())
        in_type = [b for b in range(n_art) if lat.art_index_group[b] == g and lat.art_type[b] == t]
        mass = {}
        for b in in_type:
            mass[int(lat.art_colour[b])] = mass.get(int(lat.art_colour[b]), 0.0) + weight(b)
        col_e = {
            k: math.exp(float(lat.cust_colour[c, k]) + float(lat.colour_season[week, k])) * m for k, m in mass.items()
        }
        p_colour = col_e[col] / sum(col_e.values())
        fresh.append(p_group[g] * p_type * p_colour * weight(a) / mass[col])

    # Repurchase: a uniform pick among the customer's purchases on earlier days.
    start = tiny.latent.start.astype(dt.date)
    cid = tiny.customers["customer_id"][c]
    row_of = {aid: i for i, aid in enumerate(tiny.articles["article_id"].to_list())}
    earlier = [
        row_of[aid]
        for t_dat, cust, aid in tiny.transactions.select("t_dat", "customer_id", "article_id").iter_rows()
        if cust == cid and (t_dat - start).days < day
    ]
    if not earlier:
        return fresh
    rho = float(lat.cust_repurchase[c])
    return [rho * earlier.count(a) / len(earlier) + (1 - rho) * fresh[a] for a in range(n_art)]


def test_closed_form_matches_brute_force(tiny: SyntheticData, oracle: Oracle) -> None:
    counts = tiny.transactions.group_by("customer_id").len()
    busy = counts.sort("len", descending=True)["customer_id"][0]
    customers = oracle.customer_rows([busy, tiny.customers["customer_id"][5]])
    for day in (30, 400, 733):
        fast = oracle.probabilities(customers, day)
        for row, c in enumerate(customers):
            slow = brute_force_probabilities(tiny.latent, tiny, int(c), day)
            np.testing.assert_allclose(fast[row], slow, rtol=1e-9, atol=1e-15)
    assert oracle.history_counts(customers[:1], 733).sum() > 0  # the busy customer exercises the repurchase term


def test_probabilities_are_distributions(oracle: Oracle) -> None:
    p = oracle.probabilities(np.arange(300), 500)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-9)
    assert (p >= 0).all()


def test_sampler_draws_from_the_oracle_distribution(tiny: SyntheticData, oracle: Oracle) -> None:
    n = 400_000
    c, day = 17, 300
    drawn = sample_fresh(tiny.latent, np.full(n, c), np.full(n, day), np.random.default_rng(3))
    empirical = np.bincount(drawn, minlength=tiny.latent.n_articles) / n
    expected = oracle.fresh_probabilities(np.array([c]), day // 7)[0]
    total_variation = 0.5 * np.abs(empirical - expected).sum()
    assert total_variation < 0.03
    assert empirical[expected == 0].sum() == 0  # never an article that is not on sale


def test_top_k_is_sorted_by_probability(tiny: SyntheticData, oracle: Oracle) -> None:
    ids = tiny.customers["customer_id"].head(20)
    top = oracle.oracle_top_k(ids, "2020-06-01", 12)
    assert top.shape == (20, 12)
    p = oracle.probabilities(oracle.customer_rows(ids), tiny.latent.day_of("2020-06-01"))
    row_of = {aid: i for i, aid in enumerate(tiny.articles["article_id"].to_list())}
    for r in range(20):
        probs = p[r, [row_of[a] for a in top[r]]]
        assert len(set(top[r].tolist())) == 12
        assert (np.diff(probs) <= 1e-15).all()
        assert probs[-1] >= np.sort(p[r])[-12] - 1e-15  # nothing outside the list is more probable


def test_pair_scores_are_the_window_scores_of_the_pairs(
    tiny: SyntheticData, oracle: Oracle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(oracle_module, "BATCH", 7)  # several batches of customers, pairs in shuffled order
    rng = np.random.default_rng(3)
    customers = rng.choice(tiny.latent.n_customers, 30, replace=False)
    at, a = rng.integers(0, len(customers), 500), rng.integers(0, tiny.latent.n_articles, 500)
    pairs = pl.DataFrame(
        {
            "customer_id": tiny.customers["customer_id"].gather(customers[at]),
            "article_id": tiny.articles["article_id"].gather(a),
        }
    )
    first = tiny.latent.day_of("2020-06-01")
    top, got = oracle.top_k_and_pair_scores(customers, first, 12, first + 6, pairs=pairs)
    whole = oracle.window_scores(customers, first, first + 6)  # one batch, whole catalogue
    np.testing.assert_allclose(got, whole[at, a], rtol=1e-12)
    assert got.std() > 0
    np.testing.assert_array_equal(top, oracle.top_k_rows(customers, first, 12, first + 6))
    with pytest.raises(ValueError, match="not being ranked"):
        oracle.top_k_and_pair_scores(customers[:10], first, 12, first + 6, pairs=pairs)


def test_oracle_beats_popularity_on_the_last_week(tiny: SyntheticData, oracle: Oracle) -> None:
    tx_ = tiny.transactions
    test_start = tx_["t_dat"].max() - dt.timedelta(days=6)
    held_out = tx_.filter(pl.col("t_dat") >= test_start)
    oracle_recall = oracle.recall_at_k(held_out, ks=(12, 100))

    popular = (
        tx_.filter((pl.col("t_dat") < test_start) & (pl.col("t_dat") >= test_start - dt.timedelta(days=7)))
        .group_by("article_id")
        .len()
        .sort(["len", "article_id"], descending=[True, False])["article_id"]
        .head(100)
        .to_numpy()
    )
    customers = held_out["customer_id"].unique().sort()
    rows = held_out.join(pl.DataFrame({"customer_id": customers, "r": np.arange(len(customers))}), on="customer_id")
    top = np.tile(popular, (len(customers), 1))
    pop_recall = {k: recall_at_k(top, rows["r"].to_numpy(), rows["article_id"].to_numpy(), k) for k in (12, 100)}
    assert oracle_recall[12] > 2 * pop_recall[12]
    assert oracle_recall[100] > 1.5 * pop_recall[100]


def test_ids_from_another_data_set_are_named_with_what_to_pass(oracle: Oracle) -> None:
    from recsys.errors import DataError

    with pytest.raises(DataError, match=r"customer_id not in this synthetic data set: \['elsewhere'\].*--dataset"):
        oracle.customer_rows(["elsewhere"])
