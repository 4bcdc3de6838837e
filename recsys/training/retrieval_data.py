"""From feature-view frames to two-tower inputs: which column feeds which tower, as arrays and as tf.data.

The towers are built from the *schema* (design §1): :func:`tower_features` reads the spec's feature types and
picks every customer feature for the query tower and every article feature for the candidate tower by type,
never by an H&M column name. Only the canonical columns the feature pipeline always produces are known by name:
the ids, ``t_dat``, ``month_sin``/``month_cos``, the history (``last_article_ids``, its counts, ``last_purchase``,
``avg_price``, ``price_index``, and the affinity pairs ``<col>_values``/``<col>_shares``) and ``description``.

Inputs are raw values, so that a saved tower needs no Python preprocessing at serving time:

* categorical → the string itself (``""`` = unknown; the tower's lookup maps it to its out-of-vocabulary bucket);
* numeric → float32 with NaN for missing (the tower turns NaN into 0 plus a missing flag, the same information
  as the feature pipeline's ``<name>_missing`` columns, which are therefore not read);
* lists (history ids, multi-categoricals, affinities) → padded to a fixed length with :data:`PAD_STRING` /
  :data:`PAD_INT` (ids) or 0.0 (shares); the tower masks the padding, so an empty list pools to zeros.

Training rows never materialise the article features: a batch carries ``article_index``, the row of the
purchased article in the catalogue (the ``articles`` view), and the model gathers the candidate inputs from
the catalogue. String columns are held as small dictionaries plus integer codes and decoded per batch, which
keeps the ``small`` preset (1.5M rows, 20 ids and ~30 category strings per row) at a few hundred MB.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID, T_DAT, FeatureSpec
from recsys.features.articles import DESCRIPTION
from recsys.features.common import cutoff, feature_name
from recsys.features.customer_history import LAST_ARTICLES, LAST_GAPS, customer_history_as_of
from recsys.features.customers import AGE_GROUP
from recsys.features.transactions import MONTH_COS, MONTH_SIN, month_features

if TYPE_CHECKING:
    import tensorflow as tf

PAD_STRING = ""  # padding of string lists and the "unknown" string: never in a vocabulary
PAD_INT = np.iinfo(np.int64).min  # padding of integer id lists
ARTICLE_INDEX = "article_index"  # a training batch's key into the catalogue
LAST_PURCHASE = "last_purchase"
DAYS_SINCE = "days_since_last_purchase"  # recomputed at the row's (or the request's) time
HISTORY_NUMERIC = ("n_purchases", "n_units", "n_distinct_articles", "avg_price", "price_index")
VALUES, SHARES = "_values", "_shares"
CONTEXT = (MONTH_SIN, MONTH_COS)
EXAMPLE_AGE = "example_age_days"  # days from a training row to the end of training; 0 at serving (see TowerFeatures)


@dataclass(frozen=True)
class TowerFeatures:
    """The schema of both towers: which column is which kind of input, and the fixed list lengths.

    Saved beside the towers (``to_json``) so that serving builds the same inputs from online-store rows.
    """

    customer_id_kind: str  # "string" | "int": the dtype of customer ids
    article_id_kind: str
    customer_categorical: tuple[str, ...] = ()
    customer_multi: tuple[str, ...] = ()
    customer_numeric: tuple[str, ...] = ()
    context: tuple[str, ...] = CONTEXT  # request context, fed as is (already on the unit circle)
    history: bool = True  # last_article_ids, pooled with the candidate tower's article-id embedding
    history_numeric: tuple[str, ...] = ()
    affinities: tuple[str, ...] = ()  # X for each pair X_values / X_shares
    article_categorical: tuple[str, ...] = ()
    article_multi: tuple[str, ...] = ()
    article_numeric: tuple[str, ...] = ()
    text: str | None = DESCRIPTION
    list_lengths: dict[str, int] = field(default_factory=dict)  # padded length of every list input
    # The end of the training period (ISO date). When set, the query tower reads the *example age*: how many days
    # before it a training row was (0 for any time after it, hence at serving), so that the model can learn how
    # articles' sales rise and fade over time and is asked about "now" when serving (YouTube's example age).
    age_reference: str | None = None

    # -- the inputs of each tower: name -> (kind, padded length or None) -----------------------------------
    def query_inputs(self) -> dict[str, tuple[str, int | None]]:
        out: dict[str, tuple[str, int | None]] = {CUSTOMER_ID: (self.customer_id_kind, None)}
        out |= {c: ("string", None) for c in self.customer_categorical}
        out |= {c: ("string", self.list_lengths[c]) for c in self.customer_multi}
        out |= {c: ("float", None) for c in (*self.customer_numeric, *self.context, *self.history_numeric)}
        if self.age_reference is not None:
            out[EXAMPLE_AGE] = ("float", None)
        if self.history:
            out[LAST_ARTICLES] = (self.article_id_kind, self.list_lengths[LAST_ARTICLES])
        for a in self.affinities:
            out[a + VALUES] = ("string", self.list_lengths[a])
            out[a + SHARES] = ("float", self.list_lengths[a])
        return out

    def candidate_inputs(self) -> dict[str, tuple[str, int | None]]:
        out: dict[str, tuple[str, int | None]] = {ARTICLE_ID: (self.article_id_kind, None)}
        out |= {c: ("string", None) for c in self.article_categorical}
        out |= {c: ("string", self.list_lengths[c]) for c in self.article_multi}
        out |= {c: ("float", None) for c in self.article_numeric}
        if self.text:
            out[self.text] = ("string", None)
        return out

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TowerFeatures:
        raw = json.loads(text)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def _id_kind(dtype: pl.DataType) -> str:
    return "int" if dtype.is_integer() else "string"


def _list_length(frame: pl.DataFrame, col: str, cap: int) -> int:
    longest = frame.select(pl.col(col).list.len().max()).item() if frame.height else 0
    return max(1, min(cap, int(longest or 0)))


def tower_features(
    features: Mapping[str, Mapping[str, FeatureSpec]],
    train: pl.DataFrame,
    articles: pl.DataFrame,
    *,
    history_length: int = 20,
    max_list_length: int = 16,
    use_history_features: bool = True,
    age_reference: datetime | date | None = None,
) -> TowerFeatures:
    """Pick the tower inputs from the spec's feature types (``Dataset.features``) and the columns present.

    Customer features of the spec feed the query tower (categorical, multi-categorical, numeric; text and
    timestamps are left out), plus the pipeline's ``age_group`` when present. Article features feed the
    candidate tower the same way; article *text* reaches it through ``description``, which the pipeline builds
    from every text and categorical column. Transaction features (e.g. a sales channel) are not used: the
    query tower only reads what is known at request time. ``use_history_features`` adds the history counts
    and the category affinities (the history ids are always used when present). ``age_reference`` (the end of
    training) adds the example age (see :class:`TowerFeatures`).
    """

    def typed(table: str, frame: pl.DataFrame, kind: str) -> tuple[str, ...]:
        names = [feature_name(col) for col, spec in features.get(table, {}).items() if spec.type == kind]
        return tuple(n for n in names if n in frame.columns)

    cust_cat = typed("customers", train, "categorical")
    if AGE_GROUP in train.columns and AGE_GROUP not in cust_cat:
        cust_cat = (*cust_cat, AGE_GROUP)
    cust_multi = typed("customers", train, "multi_categorical")
    art_multi = typed("articles", articles, "multi_categorical")
    lengths = {c: _list_length(train, c, max_list_length) for c in cust_multi}
    lengths |= {c: _list_length(articles, c, max_list_length) for c in art_multi}
    history = LAST_ARTICLES in train.columns
    if history:
        lengths[LAST_ARTICLES] = history_length
    affinities: tuple[str, ...] = ()
    history_numeric: tuple[str, ...] = ()
    if use_history_features:
        history_numeric = tuple(c for c in HISTORY_NUMERIC if c in train.columns)
        if LAST_PURCHASE in train.columns:
            history_numeric = (*history_numeric, DAYS_SINCE)
        affinities = tuple(
            c[: -len(VALUES)] for c in train.columns if c.endswith(VALUES) and c[: -len(VALUES)] + SHARES in train
        )
        lengths |= {a: _list_length(train, a + VALUES, max_list_length) for a in affinities}
    return TowerFeatures(
        customer_id_kind=_id_kind(train.schema[CUSTOMER_ID]),
        article_id_kind=_id_kind(articles.schema[ARTICLE_ID]),
        customer_categorical=cust_cat,
        customer_multi=cust_multi,
        customer_numeric=typed("customers", train, "numeric"),
        context=tuple(c for c in CONTEXT if c in train.columns),
        history=history,
        history_numeric=history_numeric,
        affinities=affinities,
        article_categorical=typed("articles", articles, "categorical"),
        article_multi=art_multi,
        article_numeric=typed("articles", articles, "numeric"),
        text=DESCRIPTION if DESCRIPTION in articles.columns else None,
        list_lengths=lengths,
        age_reference=None if age_reference is None else cutoff(age_reference).date().isoformat(),
    )


# -- vocabularies and statistics (from the training split only) -----------------------------------------------


def vocabulary(values: pl.Series, *, max_size: int | None = None, min_count: int = 1) -> list[Any]:
    """The values seen at least ``min_count`` times, most frequent first (ties by value), at most ``max_size``.

    Lists are flattened; nulls and the padding are never part of a vocabulary (they map to the OOV bucket).
    """
    if isinstance(values.dtype, pl.List):
        values = values.explode()
    values = values.drop_nulls()
    if values.dtype == pl.String:
        values = values.filter(values != PAD_STRING)
    counts = values.value_counts(name="n").filter(pl.col("n") >= min_count)
    counts = counts.sort(["n", values.name], descending=[True, False])
    if max_size is not None:
        counts = counts.head(max_size)
    return counts.get_column(values.name).to_list()


def signed_log(x: np.ndarray) -> np.ndarray:
    """sign(x)·log(1 + |x|): counts, prices and ages on one compressed scale before standardising."""
    return np.sign(x) * np.log1p(np.abs(x))


def numeric_stats(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of ``signed_log(values)`` over the non-missing values (1.0 when constant)."""
    finite = signed_log(values[np.isfinite(values)].astype(np.float64))
    if finite.size == 0:
        return 0.0, 1.0
    std = float(finite.std())
    return float(finite.mean()), std if std > 1e-6 else 1.0


# -- frames to arrays -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoded:
    """A column as ``dictionary[codes]`` (strings) or as plain ``codes`` (numbers, when ``dictionary`` is None)."""

    codes: np.ndarray
    dictionary: np.ndarray | None = None

    def decode(self) -> np.ndarray:
        return self.codes if self.dictionary is None else self.dictionary[self.codes]


def _dictionary_encode(values: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    strings = values.cast(pl.String).fill_null(PAD_STRING)
    distinct = strings.unique()  # one call: two unique() calls need not agree on order
    dictionary = pl.concat([pl.Series([PAD_STRING]), distinct.filter(distinct != PAD_STRING).sort()])
    codes = strings.cast(pl.Enum(dictionary)).to_physical().to_numpy().astype(np.int32)
    return codes, dictionary.to_numpy().astype(object)


def _padded(values: pl.Series, length: int, kind: str) -> Encoded:
    """A list column as an [n, length] matrix: the first ``length`` items, then padding (code 0 for strings)."""
    arrow = values.list.head(length).to_arrow()
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(arrow), 0).to_numpy().astype(np.int64)
    flat = pl.Series(arrow.flatten())
    rows = np.repeat(np.arange(len(lengths)), lengths)
    cols = np.arange(len(rows)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    if kind == "string":
        flat_codes, dictionary = _dictionary_encode(flat)
        out = np.zeros((len(lengths), length), np.int32)
        out[rows, cols] = flat_codes
        return Encoded(out, dictionary)
    if kind == "int":
        out = np.full((len(lengths), length), PAD_INT, np.int64)
        out[rows, cols] = flat.to_numpy()
        return Encoded(out)
    out = np.zeros((len(lengths), length), np.float32)
    out[rows, cols] = flat.cast(pl.Float64).fill_null(0.0).to_numpy()
    return Encoded(out)


def _scalar(values: pl.Series, kind: str) -> Encoded:
    if kind == "string":
        return Encoded(*_dictionary_encode(values))
    if kind == "int":
        return Encoded(values.cast(pl.Int64).fill_null(PAD_INT).to_numpy())
    return Encoded(values.cast(pl.Float64).fill_null(np.nan).fill_nan(np.nan).to_numpy().astype(np.float32))


def _with_time_features(
    frame: pl.DataFrame, names: Sequence[str], at: datetime | date | None, age_reference: str | None = None
) -> pl.DataFrame:
    """Add the context, recency and example age the inputs need: from each row's ``t_dat``, or the request time."""
    when = pl.col(T_DAT) if at is None else pl.lit(cutoff(at))
    extra: list[pl.Expr] = []
    if any(c in names for c in CONTEXT) and (at is not None or not set(CONTEXT) <= set(frame.columns)):
        extra += [e for e in month_features(when) if e.meta.output_name() in names]
    if DAYS_SINCE in names:
        last = pl.col(LAST_PURCHASE) if LAST_PURCHASE in frame.columns else pl.lit(None, pl.Datetime("us"))
        days = (when.dt.truncate("1d") - last.dt.truncate("1d")).dt.total_days()
        extra.append(days.cast(pl.Float64).alias(DAYS_SINCE))
    if EXAMPLE_AGE in names:
        reference = pl.lit(datetime.fromisoformat(age_reference or "1970-01-01"))
        days = (reference - when.dt.truncate("1d")).dt.total_days().clip(lower_bound=0)
        extra.append(days.cast(pl.Float64).alias(EXAMPLE_AGE))
    return frame.with_columns(extra) if extra else frame


def encode(
    frame: pl.DataFrame,
    inputs: Mapping[str, tuple[str, int | None]],
    at: datetime | date | None = None,
    age_reference: str | None = None,
) -> dict[str, Encoded]:
    """Every input of a tower from ``frame`` (see :meth:`TowerFeatures.query_inputs`); absent columns are missing.

    Affinity inputs ``X_values``/``X_shares`` are cut to the same length, keeping the largest shares (the
    pipeline stores them largest first). ``age_reference``: see :attr:`TowerFeatures.age_reference`.
    """
    frame = _with_time_features(frame, list(inputs), at, age_reference)
    out: dict[str, Encoded] = {}
    for name, (kind, length) in inputs.items():
        if name in frame.columns:
            column = frame.get_column(name)
        elif length is not None:
            column = pl.Series(name, [None] * frame.height, pl.List(pl.Float64 if kind == "float" else pl.String))
        else:
            column = pl.Series(name, [None] * frame.height, pl.Float64 if kind == "float" else pl.String)
        out[name] = _scalar(column, kind) if length is None else _padded(column, length, kind)
    return out


def decode(encoded: Mapping[str, Encoded]) -> dict[str, np.ndarray]:
    """Raw input arrays (strings as object arrays) from :func:`encode`'s columns."""
    return {name: column.decode() for name, column in encoded.items()}


def query_inputs(
    frame: pl.DataFrame, schema: TowerFeatures, at: datetime | date | None = None
) -> dict[str, np.ndarray]:
    """Query-tower inputs for every row of ``frame``.

    Retrieval rows with ``at=None`` (each row's own month and recency), or customers at a request time ``at``
    (month context and recency as of ``at``'s day).
    """
    return decode(encode(frame, schema.query_inputs(), at, schema.age_reference))


def candidate_inputs(articles: pl.DataFrame, schema: TowerFeatures) -> dict[str, np.ndarray]:
    """Candidate-tower inputs for every article of ``articles`` (in row order)."""
    return decode(encode(articles, schema.candidate_inputs()))


def catalogue_rows(frame: pl.DataFrame, articles: pl.DataFrame) -> np.ndarray:
    """For each row of ``frame``: the row of its ``article_id`` in ``articles``, or -1 when it is not there."""
    rows = articles.select(ARTICLE_ID).with_row_index("_row")
    joined = frame.select(ARTICLE_ID).join(rows, on=ARTICLE_ID, how="left", maintain_order="left")
    return joined.get_column("_row").fill_null(-1).cast(pl.Int64).to_numpy()


def training_dataset(
    frame: pl.DataFrame,
    schema: TowerFeatures,
    articles: pl.DataFrame,
    *,
    batch_size: int,
    seed: int,
    shuffle: bool = True,
) -> tf.data.Dataset:
    """Batches of query inputs plus :data:`ARTICLE_INDEX` (the bought article's row in ``articles``).

    Shuffled afresh every epoch, deterministically from ``seed`` (the whole index range is shuffled, so that a
    batch mixes purchases of every period instead of one week's). Rows whose article is not in the catalogue
    are dropped. Strings travel as codes and are decoded per batch.
    """
    import tensorflow as tf  # only here: the rest of this module is plain polars and numpy

    index = catalogue_rows(frame, articles)
    keep = index >= 0
    if not keep.all():
        frame, index = frame.filter(pl.Series(keep)), index[keep]
    columns = encode(frame, schema.query_inputs(), age_reference=schema.age_reference)
    codes = {name: tf.constant(col.codes) for name, col in columns.items()}
    codes[ARTICLE_INDEX] = tf.constant(index.astype(np.int32))
    dictionaries = {
        name: tf.constant(col.dictionary.astype(str)) for name, col in columns.items() if col.dictionary is not None
    }

    def batch(rows: tf.Tensor) -> dict[str, tf.Tensor]:
        out = {name: tf.gather(values, rows) for name, values in codes.items()}
        for name, words in dictionaries.items():
            out[name] = tf.gather(words, out[name])
        return out

    ds = tf.data.Dataset.range(len(index))
    if shuffle:
        ds = ds.shuffle(len(index), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).map(batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(2)


def queries_as_of(
    customers: pl.DataFrame,
    transactions: pl.DataFrame,
    articles: pl.DataFrame,
    as_of: datetime | date,
    schema: TowerFeatures,
) -> pl.DataFrame:
    """The query state of ``customers`` at ``as_of``: their attributes + their history from days before it.

    ``customers`` holds one row per customer with (at least) the attribute columns, e.g. rows of the
    ``customers`` view; any history columns in it are replaced, because the view holds the *latest* history,
    which would leak the evaluation week. ``transactions`` (e.g. the retrieval rows) provides the purchases;
    only days before ``as_of`` are used, so passing everything is safe. Feed the result to
    :func:`query_inputs` with ``at=as_of``.
    """
    history_cols = {LAST_ARTICLES, LAST_GAPS, LAST_PURCHASE, DAYS_SINCE, *HISTORY_NUMERIC}
    history_cols |= {c for a in schema.affinities for c in (a + VALUES, a + SHARES)}
    attributes = customers.select([c for c in customers.columns if c not in history_cols])
    history = customer_history_as_of(
        transactions,
        articles,
        as_of,
        n_last=schema.list_lengths.get(LAST_ARTICLES, 20),
        affinity_columns=[a for a in schema.affinities if a in articles.columns],
    )
    keep = [c for c in history.columns if c in history_cols or c == CUSTOMER_ID]
    return attributes.join(history.select(keep), on=CUSTOMER_ID, how="left", maintain_order="left")


def customer_attributes(*frames: pl.DataFrame, schema: TowerFeatures) -> pl.DataFrame:
    """One row per customer with the attribute inputs of the query tower, from retrieval rows (latest first)."""
    cols = [CUSTOMER_ID, *schema.customer_categorical, *schema.customer_multi, *schema.customer_numeric]
    rows = pl.concat([f.select([c for c in cols if c in f.columns]) for f in frames], how="diagonal_relaxed")
    return rows.unique(CUSTOMER_ID, keep="last", maintain_order=True)
