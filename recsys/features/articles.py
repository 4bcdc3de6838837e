"""The ``articles`` feature group: cleaned article attributes and a ``description`` text, one row per article.

The description is what a text encoder in the candidate tower reads, so it should say in words what the article
is. It is built by one generic rule from the spec's feature types (no H&M names):

    <first text feature>. <distinct categorical values, comma separated>. <other text features, each a sentence>.

For H&M that reads ``Luna t-shirt. T-shirt, Garment Upper body, Solid, Black, ... Jersey Basic. T-shirt in
organic cotton with a round neckline.`` Categorical values repeated across columns (H&M's ``index_name`` and
``index_group_name`` are often both "Ladieswear") appear once; ``MISSING`` never appears; identifier-like
categoricals (names ending in ``_code``, ``_id``, ``_no``, ``_number``, such as H&M's ``product_code``) are left out
because their values are not words. ``description_columns`` overrides which columns are used (in that order).

Missing values: categoricals become ``"MISSING"`` (whitespace normalised, case kept: these values are shown to
people and fed to the text encoder), multi-categoricals stay lists (missing list = empty list), text stays null
when missing, numerics as in :mod:`recsys.features.customers` (nullable value + ``<name>_missing``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from recsys.data.dataset import ARTICLE_ID, FeatureSpec
from recsys.features.common import (
    MISSING,
    clean_categorical,
    clean_multi_categorical,
    clean_numeric,
    clean_text,
    feature_names,
)
from recsys.features.customers import MISSING_SUFFIX

DESCRIPTION = "description"
ID_LIKE_SUFFIXES = ("_code", "_id", "_no", "_number")


def description_sources(features: Mapping[str, FeatureSpec], columns: Sequence[str]) -> list[str]:
    """The default columns of the description: text, categorical and multi-categorical features, spec order."""
    usable = ("text", "categorical", "multi_categorical")
    return [
        col
        for col, spec in features.items()
        if col in columns
        and spec.type in usable
        and not (spec.type == "categorical" and col.lower().endswith(ID_LIKE_SUFFIXES))
    ]


def description(cleaned: Mapping[str, pl.Expr], kinds: Mapping[str, str], fallback: pl.Expr) -> pl.Expr:
    """The description expression over already cleaned columns (see the module docstring for the layout).

    ``cleaned`` maps each source column (in order) to its cleaned expression, ``kinds`` to its feature type;
    ``fallback`` is used where every part is missing, so that no article has an empty description.
    """
    texts = [expr for col, expr in cleaned.items() if kinds[col] == "text"]
    categories = [
        pl.when(expr != MISSING).then(expr) if kinds[col] == "categorical" else expr
        for col, expr in cleaned.items()
        if kinds[col] in ("categorical", "multi_categorical")
    ]

    def sentence(expr: pl.Expr) -> pl.Expr:
        text = expr.str.strip_chars_end(" .")
        return pl.when(text.str.len_chars() > 0).then(text)

    parts: list[pl.Expr] = []
    if texts:
        parts.append(sentence(texts[0]))
    if categories:
        values = pl.concat_list(categories).list.drop_nulls().list.unique(maintain_order=True)
        parts.append(sentence(values.list.join(", ")))
    parts += [sentence(expr) for expr in texts[1:]]
    if not parts:
        return fallback
    body = pl.concat_str(parts, separator=". ", ignore_nulls=True)
    return pl.when(body.str.len_chars() > 0).then(body + ".").otherwise(fallback)


def article_features(
    articles: pl.DataFrame,
    features: Mapping[str, FeatureSpec],
    *,
    description_columns: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Cleaned article attributes plus ``description`` (String, never null), one row per input row.

    Output: ``article_id``, every spec feature present in ``articles`` (storable name, cleaned by type; each
    numeric followed by ``<name>_missing`` Int8), then ``description``. The fallback description of an article
    with no words at all is ``"Article <id>"``.
    """
    present = [col for col in features if col in articles.columns]
    names = feature_names(present, "articles")
    cleaned: dict[str, pl.Expr] = {}
    exprs: list[pl.Expr] = [pl.col(ARTICLE_ID)]
    for col in present:
        kind, name = features[col].type, names[col]
        if kind == "categorical":
            cleaned[col] = clean_categorical(pl.col(col))
        elif kind == "multi_categorical":
            cleaned[col] = clean_multi_categorical(pl.col(col))
        elif kind == "text":
            cleaned[col] = clean_text(pl.col(col))
        elif kind == "numeric":
            value = clean_numeric(pl.col(col))
            exprs += [value.alias(name), value.is_null().cast(pl.Int8).alias(name + MISSING_SUFFIX)]
            continue
        else:  # timestamp
            exprs.append(pl.col(col).alias(name))
            continue
        exprs.append(cleaned[col].alias(name))

    if description_columns is None:
        sources = description_sources(features, present)
    else:
        unknown = [col for col in description_columns if col not in cleaned]
        if unknown:
            raise ValueError(
                f"description_columns {unknown} are not text or categorical features of the articles table; "
                f"usable: {sorted(cleaned)}"
            )
        sources = list(description_columns)
    kinds = {col: features[col].type for col in sources}
    fallback = pl.lit("Article ") + pl.col(ARTICLE_ID).cast(pl.String)
    # Built from the cleaned output columns, so that each column is cleaned once.
    text = description({col: pl.col(names[col]) for col in sources}, kinds, fallback)
    return articles.select(exprs).with_columns(text.alias(DESCRIPTION))
