"""Pure feature transformations, one module per feature group (design §3), plus the validation rules.

Every function takes polars frames (and the spec's feature types where the schema matters) and returns a new
frame; none reads or writes files, so the feature pipeline, tests and notebooks call the same code.
"""

from __future__ import annotations

from recsys.features.article_popularity import article_popularity_as_of, article_popularity_events
from recsys.features.articles import article_features
from recsys.features.common import MISSING, feature_name
from recsys.features.customer_history import (
    customer_history_as_of,
    customer_history_event_chunks,
    customer_history_events,
    days_since_last_purchase,
    market_prices,
)
from recsys.features.customers import age_group, customer_features
from recsys.features.transactions import month_features, transaction_features, with_month_features
from recsys.features.validation import (
    PRIMARY_KEYS,
    FeatureValidationError,
    Rule,
    month_rules,
    rules_for,
    split_valid,
    validate,
)

__all__ = [
    "MISSING",
    "PRIMARY_KEYS",
    "FeatureValidationError",
    "Rule",
    "age_group",
    "article_features",
    "article_popularity_as_of",
    "article_popularity_events",
    "customer_features",
    "customer_history_as_of",
    "customer_history_event_chunks",
    "customer_history_events",
    "days_since_last_purchase",
    "feature_name",
    "market_prices",
    "month_features",
    "month_rules",
    "rules_for",
    "split_valid",
    "transaction_features",
    "validate",
    "with_month_features",
]
