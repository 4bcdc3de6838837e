"""The synthetic H&M-shaped data generator, with known ground truth.

``generate(preset, seed)`` draws a :class:`~recsys.data.latent.LatentModel` (customers' tastes, the catalogue and
its lifecycle) and then two years of daily purchases from it, fully vectorised: visits per customer from a
heavy-tailed activity rate, visit days from the calendar's traffic, baskets, and one choice per basket item by the
steps described in :mod:`recsys.data.latent`. The same seed gives byte-identical Parquet files.

Output layout (``write``): ``articles.parquet``, ``customers.parquet``, ``transactions_train.parquet`` with H&M's
columns and types, ``dataset.yaml`` (the spec that loads them) and ``latent.npz`` (what the oracle needs).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from recsys.data import taxonomy as tx
from recsys.data.latent import N_COLOURS, N_INDEX_GROUPS, N_SEGMENTS, N_TYPES, TYPE_MASK, LatentModel
from recsys.errors import RecsysError

START = np.datetime64("2018-09-20", "D")  # H&M's first transaction day
N_DAYS = 734  # 2018-09-20 .. 2020-09-22, as in H&M
SPEC_FILE = Path(__file__).parent / "specs" / "synthetic.yaml"
# Share of the catalogue (and, through the customers' base preferences, of sales) by index group and type.
GROUP_SIZE = np.array([0.32, 0.15, 0.25, 0.20, 0.08])
TYPE_WEIGHT = np.array([p.weight for p in tx.PRODUCT_TYPES])


@dataclass(frozen=True)
class Preset:
    name: str
    n_customers: int
    n_articles: int
    n_transactions: int  # expected; the realised count varies by a fraction of a percent


PRESETS = {
    "tiny": Preset("tiny", 2_000, 1_000, 40_000),
    "small": Preset("small", 50_000, 15_000, 1_500_000),
    "hm": Preset("hm", 1_371_980, 105_542, 31_788_324),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise RecsysError(f"unknown preset {name!r}: expected one of {', '.join(PRESETS)}") from None


@dataclass
class SyntheticData:
    """Generated tables plus the latent model that produced them."""

    preset: Preset
    seed: int
    articles: pl.DataFrame
    customers: pl.DataFrame
    transactions: pl.DataFrame
    latent: LatentModel

    def write(self, out: Path) -> Path:
        """Write the three Parquet tables, the spec and the latent model into ``out`` (replacing them)."""
        out.mkdir(parents=True, exist_ok=True)
        staging = out / ".staging"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
        # Write everything aside first, then move: a crash never leaves a half-written data set behind.
        self.articles.write_parquet(staging / "articles.parquet", compression="zstd")
        self.customers.write_parquet(staging / "customers.parquet", compression="zstd")
        self.transactions.write_parquet(staging / "transactions_train.parquet", compression="zstd")
        self.latent.save(staging / "latent.npz")
        shutil.copyfile(SPEC_FILE, staging / "dataset.yaml")
        manifest = {
            "generator": "recsys.data.synthetic",
            "preset": self.preset.name,
            "seed": self.seed,
            "rows": {
                "articles": self.articles.height,
                "customers": self.customers.height,
                "transactions": self.transactions.height,
            },
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        for item in staging.iterdir():
            item.replace(out / item.name)
        staging.rmdir()
        return out


# -- catalogue ---------------------------------------------------------------------------------------------
def hex_strings(rng: np.random.Generator, n: int, n_bytes: int = 32) -> pl.Series:
    """``n`` random lowercase hex strings (H&M's customer_id / postal_code look), vectorised."""
    raw = rng.bytes(n * n_bytes)
    hexed = np.frombuffer(raw, dtype=np.uint8).reshape(n, n_bytes)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    chars = np.empty((n, 2 * n_bytes), dtype=np.uint8)
    chars[:, 0::2] = digits[hexed >> 4]
    chars[:, 1::2] = digits[hexed & 15]
    return pl.Series(chars.view(f"S{2 * n_bytes}").ravel()).cast(pl.String)


def _catalogue(rng: np.random.Generator, n_articles: int, n_weeks: int) -> tuple[pl.DataFrame, dict]:
    """Products and their colour variants: attributes for articles.csv and the latent article parameters."""
    categories = np.argwhere(TYPE_MASK)  # (index group, type) pairs that exist
    cat_weight = GROUP_SIZE[categories[:, 0]] * TYPE_WEIGHT[categories[:, 1]]
    cat_weight = cat_weight / cat_weight.sum()

    n_products = max(len(categories), round(n_articles / 2.7))
    # One evergreen product per category first, so every category always has something on sale.
    product_cat = np.concatenate(
        [np.arange(len(categories)), rng.choice(len(categories), n_products - len(categories), p=cat_weight)]
    )
    evergreen = np.zeros(n_products, dtype=bool)
    evergreen[: len(categories)] = True
    evergreen |= rng.random(n_products) < 0.25

    # Colour variants: at least one per product; extra variants spread so the total hits n_articles.
    variants = np.ones(n_products, dtype=np.int64)
    extra = rng.integers(0, n_products, n_articles - n_products)
    np.add.at(variants, extra, 1)
    product_of_article = np.repeat(np.arange(n_products), variants)
    variant_no = np.arange(n_articles) - np.repeat(np.cumsum(variants) - variants, variants)

    colour_pop = np.array([c[6] for c in tx.COLOURS])
    colour_p = np.exp(colour_pop) / np.exp(colour_pop).sum()
    # Variants of one product get distinct colours: a popularity-weighted draw without replacement
    # (Gumbel top-k), variant j taking the product's j-th colour.
    keys = np.log(colour_p)[None, :] + rng.gumbel(size=(n_products, N_COLOURS))
    colour_rank = np.argsort(-keys, axis=1)
    art_colour = colour_rank[product_of_article, np.minimum(variant_no, N_COLOURS - 1)].astype(np.int8)

    cat = categories[product_cat[product_of_article]]
    art_group, art_type = cat[:, 0].astype(np.int8), cat[:, 1].astype(np.int8)

    # Popularity: a heavy-tailed product effect plus a smaller variant effect (long tail of sales).
    product_pop = rng.normal(0.0, 1.6, n_products)
    art_pop = (product_pop[product_of_article] + rng.normal(0.0, 0.45, n_articles)).astype(np.float32)

    base_price = np.array([p.price for p in tx.PRODUCT_TYPES])[art_type]
    product_price_noise = rng.normal(0.0, 0.35, n_products)[product_of_article]
    sek = np.maximum(np.round(base_price * 590 * np.exp(product_price_noise) / 10) * 10 - 0.01, 4.99)
    log_price = np.log(sek)
    type_mean = np.bincount(art_type, log_price, N_TYPES) / np.maximum(np.bincount(art_type, None, N_TYPES), 1)
    type_var = np.bincount(art_type, (log_price - type_mean[art_type]) ** 2, N_TYPES) / np.maximum(
        np.bincount(art_type, None, N_TYPES), 1
    )
    zprice = ((log_price - type_mean[art_type]) / np.sqrt(type_var[art_type] + 1e-6)).astype(np.float32)

    # Lifecycle: evergreen products sell all along; the rest launch over the two years (some before) and fade.
    launch = rng.integers(-26, n_weeks, n_products)
    launch[evergreen] = -52
    lifetime = rng.uniform(6.0, 40.0, n_products)
    lifetime[evergreen] = np.inf
    art_launch = launch[product_of_article].astype(np.int16)
    art_lifetime = lifetime[product_of_article].astype(np.float32)

    latent = {
        "art_index_group": art_group,
        "art_type": art_type,
        "art_colour": art_colour,
        "art_popularity": art_pop,
        "art_zprice": zprice,
        "art_launch_week": art_launch,
        "art_lifetime": art_lifetime,
    }
    attrs = _article_attributes(rng, product_of_article, variant_no, art_group, art_type, art_colour, n_products)
    attrs = attrs.with_columns(pl.Series("_sek", sek))
    return attrs, latent


def _article_attributes(
    rng: np.random.Generator,
    product_of_article: np.ndarray,
    variant_no: np.ndarray,
    art_group: np.ndarray,
    art_type: np.ndarray,
    art_colour: np.ndarray,
    n_products: int,
) -> pl.DataFrame:
    """H&M's 25 article columns, built from small vocabularies by index (no row loops)."""
    ptypes, colours = tx.PRODUCT_TYPES, tx.COLOURS
    appearance_p = np.array([g[2] for g in tx.GRAPHICAL_APPEARANCES])
    appearance = rng.choice(len(appearance_p), n_products, p=appearance_p / appearance_p.sum())[product_of_article]
    name_word = rng.integers(0, len(tx.NAME_WORDS), n_products)[product_of_article]
    material = rng.integers(0, len(tx.MATERIALS), n_products)[product_of_article]
    detail = rng.integers(0, len(tx.DETAILS), n_products)[product_of_article]
    product_code = 108_775 + product_of_article * 7  # H&M-like 6-digit codes, unique per product

    def pick(values: list | tuple, idx: np.ndarray, dtype: pl.DataType | None = None) -> pl.Series:
        return pl.Series(list(values), dtype=dtype).gather(idx)

    type_names = [p.name for p in ptypes]
    groups = np.asarray(art_group, dtype=np.int64)
    types = np.asarray(art_type, dtype=np.int64)
    cols = np.asarray(art_colour, dtype=np.int64)
    department = groups * N_TYPES + types
    frame = pl.DataFrame(
        {
            "article_id": pl.Series(product_code * 1000 + variant_no + 1, dtype=pl.Int64),
            "product_code": pl.Series(product_code, dtype=pl.Int64),
            "prod_name": pick(tx.NAME_WORDS, name_word),
            "product_type_no": pick([p.number for p in ptypes], types, pl.Int64),
            "product_type_name": pick(type_names, types),
            "product_group_name": pick([p.group for p in ptypes], types),
            "graphical_appearance_no": pick([g[0] for g in tx.GRAPHICAL_APPEARANCES], appearance, pl.Int64),
            "graphical_appearance_name": pick([g[1] for g in tx.GRAPHICAL_APPEARANCES], appearance),
            "colour_group_code": pick([c[0] for c in colours], cols, pl.Int64),
            "colour_group_name": pick([c[1] for c in colours], cols),
            "perceived_colour_value_id": pick([c[3] for c in colours], cols, pl.Int64),
            "perceived_colour_value_name": pick([c[2] for c in colours], cols),
            "perceived_colour_master_id": pick([c[5] for c in colours], cols, pl.Int64),
            "perceived_colour_master_name": pick([c[4] for c in colours], cols),
            "department_no": pl.Series(1000 + department, dtype=pl.Int64),
            "index_code": pick([i[0] for i in tx.INDEX_NAMES], groups),
            "index_name": pick([i[1] for i in tx.INDEX_NAMES], groups),
            "index_group_no": pick(tx.INDEX_GROUP_NO, groups, pl.Int64),
            "index_group_name": pick(tx.INDEX_GROUPS, groups),
            "section_no": pl.Series(10 + groups, dtype=pl.Int64),
            "section_name": pick([i[2] for i in tx.INDEX_NAMES], groups),
            "garment_group_no": pick([p.garment_group_no for p in ptypes], types, pl.Int64),
            "garment_group_name": pick([p.garment_group for p in ptypes], types),
            "_material": pick(tx.MATERIALS, material),
            "_detail": pick(tx.DETAILS, detail),
        }
    )
    return frame.with_columns(
        prod_name=pl.concat_str([pl.col("prod_name"), pl.col("product_type_name").str.to_lowercase()], separator=" "),
        department_name=pl.concat_str([pl.col("index_name"), pl.col("product_group_name")], separator=" "),
        detail_desc=pl.concat_str(
            [pl.col("product_type_name"), pl.lit(" in "), pl.col("_material"), pl.lit(" with "), pl.col("_detail")]
        )
        + pl.lit("."),
    ).select(
        "article_id", "product_code", "prod_name", "product_type_no", "product_type_name", "product_group_name",
        "graphical_appearance_no", "graphical_appearance_name", "colour_group_code", "colour_group_name",
        "perceived_colour_value_id", "perceived_colour_value_name", "perceived_colour_master_id",
        "perceived_colour_master_name", "department_no", "department_name", "index_code", "index_name",
        "index_group_no", "index_group_name", "section_no", "section_name", "garment_group_no",
        "garment_group_name", "detail_desc",
    )  # fmt: skip


# -- customers ---------------------------------------------------------------------------------------------
SEGMENT_SHARES = (0.35, 0.45, 0.20)  # price-sensitive, neutral, premium
REPURCHASE_BETA = (1.0, 14.0)  # each customer's repurchase propensity ~ Beta(a, b)
# Index-group log-odds by age cohort (16-24, 25-34, 35-44, 45-54, 55+): the young shop Divided, parents
# Baby/Children, older customers Ladieswear.
COHORT_EDGES = np.array([25, 35, 45, 55])
COHORT_INDEX_GROUP = np.array(
    [
        [0.6, -0.6, -1.2, 1.4, 0.1],
        [0.9, -0.5, 0.7, 0.2, 0.1],
        [1.0, -0.4, 0.9, -0.4, 0.0],
        [1.2, -0.3, 0.0, -0.8, -0.3],
        [1.3, -0.2, -0.3, -1.2, -0.7],
    ],
    dtype=np.float32,
)


def _customers(rng: np.random.Generator, n: int) -> tuple[pl.DataFrame, dict, np.ndarray]:
    """customers.csv columns, latent tastes, and each customer's activity rate."""
    # Age: H&M's two peaks (early twenties, around fifty).
    young = rng.random(n) < 0.55
    age = np.where(young, rng.normal(25, 4.5, n), rng.normal(50, 11, n))
    age = np.clip(np.round(age), 16, 99)
    cohort = np.searchsorted(COHORT_EDGES, age, side="right")
    male = rng.random(n) < 0.18

    base_ig = np.log(GROUP_SIZE / GROUP_SIZE.mean()).astype(np.float32)
    ig = base_ig + COHORT_INDEX_GROUP[cohort] + rng.normal(0.0, 1.0, (n, N_INDEX_GROUPS)).astype(np.float32)
    ig[:, 1] += np.where(male, 3.0, -1.5).astype(np.float32)
    ig[:, 0] -= np.where(male, 3.0, 0.0).astype(np.float32)
    cohort_type = np.random.default_rng(7).normal(0.0, 0.5, (len(COHORT_EDGES) + 1, N_TYPES))
    base_type = np.log(TYPE_WEIGHT / TYPE_WEIGHT.mean())
    taste = (base_type + cohort_type[cohort] + rng.normal(0.0, 1.0, (n, N_TYPES))).astype(np.float32)
    colour_pop = np.array([c[6] for c in tx.COLOURS], dtype=np.float32)
    colour = (colour_pop[None, :] + rng.normal(0.0, 1.0, (n, N_COLOURS))).astype(np.float32)
    segment = rng.choice(N_SEGMENTS, n, p=list(SEGMENT_SHARES)).astype(np.int8)
    repurchase = rng.beta(*REPURCHASE_BETA, n).astype(np.float32)

    # Activity: most customers buy a few times, a few buy very often (gamma with shape < 1).
    rate = rng.gamma(0.3, 1.0, n)
    engaged = 1.0 / (1.0 + np.exp(-(np.log(rate + 1e-9) + 0.6)))
    fn = rng.random(n) < engaged * 0.8
    active = fn & (rng.random(n) < 0.97)
    club = rng.choice(4, n, p=[0.93, 0.062, 0.004, 0.004])
    rate = rate * np.where(club == 2, 0.2, 1.0)  # LEFT CLUB buys little
    news = np.where(fn, rng.choice(3, n, p=[0.05, 0.93, 0.02]), rng.choice(3, n, p=[0.97, 0.025, 0.005]))
    news_null = rng.random(n) < 0.012
    age_null = rng.random(n) < 0.011
    n_postal = max(1, n // 4)
    postal_pool = hex_strings(rng, n_postal)
    postal = np.minimum((n_postal * rng.random(n) ** 2.5).astype(np.int64), n_postal - 1)

    frame = pl.DataFrame(
        {
            "customer_id": hex_strings(rng, n),
            "FN": pl.Series(np.where(fn, 1.0, np.nan)).fill_nan(None),
            "Active": pl.Series(np.where(active, 1.0, np.nan)).fill_nan(None),
            "club_member_status": pl.Series(["ACTIVE", "PRE-CREATE", "LEFT CLUB", None]).gather(club),
            "fashion_news_frequency": pl.Series(["NONE", "Regularly", "Monthly"])
            .gather(news)
            .scatter(np.flatnonzero(news_null), None),
            "age": pl.Series(np.where(age_null, np.nan, age)).fill_nan(None),
            "postal_code": postal_pool.gather(postal),
        }
    )
    latent = {
        "cust_index_group": ig,
        "cust_type": taste,
        "cust_colour": colour,
        "cust_segment": segment,
        "cust_repurchase": repurchase,
    }
    return frame, latent, rate


# -- calendar ----------------------------------------------------------------------------------------------
SUMMER_SALE, WINTER_SALE, BLACK_FRIDAY = (176, 200), (360, 6), (327, 333)  # day-of-year windows


def _day_of_year(start: np.datetime64, n_days: int) -> np.ndarray:
    days = start + np.arange(n_days).astype("timedelta64[D]")
    return (days - days.astype("datetime64[Y]")).astype(int) + 1


def _sale_days(start: np.datetime64, n_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the summer and the winter (around new year) sale days; prices are discounted on both."""
    doy = _day_of_year(start, n_days)
    summer = (doy >= SUMMER_SALE[0]) & (doy <= SUMMER_SALE[1])
    winter = (doy >= WINTER_SALE[0]) | (doy <= WINTER_SALE[1])
    return summer, winter


def _day_weights(start: np.datetime64, n_days: int) -> np.ndarray:
    """Relative shopping traffic per day: weekly rhythm, sale periods and Black Friday, slow growth."""
    dow = (start.astype(np.int64) + np.arange(n_days) + 3) % 7  # 0 = Monday
    rhythm = np.array([0.92, 0.90, 0.95, 1.00, 1.10, 1.22, 0.91])[dow]
    doy = _day_of_year(start, n_days)
    summer, winter = _sale_days(start, n_days)
    sale = 1.0 + 0.35 * summer + 0.5 * ((doy >= BLACK_FRIDAY[0]) & (doy <= BLACK_FRIDAY[1]))
    sale += 0.3 * winter
    growth = 1.0 + 0.12 * np.arange(n_days) / n_days
    return (rhythm * sale * growth).astype(np.float64)


# -- generation --------------------------------------------------------------------------------------------
def generate(preset: str | Preset, seed: int = 42) -> SyntheticData:
    """Draw a complete synthetic data set (deterministic in ``seed``)."""
    from recsys.data.sampling import sample_transactions

    p = get_preset(preset) if isinstance(preset, str) else preset
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)]
    n_weeks = (N_DAYS + 6) // 7

    articles, art_latent = _catalogue(streams[0], p.n_articles, n_weeks)
    customers, cust_latent, rate = _customers(streams[1], p.n_customers)
    latent = LatentModel(
        start=START,
        n_days=N_DAYS,
        day_weight=_day_weights(START, N_DAYS),
        segment_price_coef=np.array([-1.0, 0.0, 0.8], dtype=np.float32),
        **art_latent,
        **cust_latent,
    )
    events = sample_transactions(latent, rate, p.n_transactions, streams[2])

    sek = articles["_sek"].to_numpy()
    on_sale = np.logical_or(*_sale_days(START, N_DAYS))
    discount = np.where(on_sale[events.day] & (streams[3].random(len(events.day)) < 0.5), 0.7, 1.0)
    t_dat = (START + events.day.astype("timedelta64[D]")).astype("datetime64[D]")
    transactions = pl.DataFrame(
        {
            "t_dat": pl.Series(t_dat, dtype=pl.Date),
            "customer_id": customers["customer_id"].gather(events.customer),
            "article_id": articles["article_id"].gather(events.article),
            "price": np.round(sek[events.article] * discount, 2) / 590.0,
            "sales_channel_id": pl.Series(events.channel, dtype=pl.Int64),
        }
    )
    return SyntheticData(p, seed, articles.drop("_sek"), customers, transactions, latent)
