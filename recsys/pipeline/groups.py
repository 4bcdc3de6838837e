"""The feature groups of design §3: names, versions, keys and which of them are served online.

One definition used by all three programs, so the feature pipeline writes exactly what training and serving read.
"""

from __future__ import annotations

from dataclasses import dataclass

from recsys.store.base import FeatureGroup, FeatureStore


@dataclass(frozen=True)
class GroupDef:
    """How a feature group is created: ``get_or_create_feature_group`` arguments."""

    name: str
    version: int
    primary_key: tuple[str, ...]
    event_time: str | None
    online_enabled: bool
    description: str

    def get_or_create(self, fs: FeatureStore) -> FeatureGroup:
        return fs.get_or_create_feature_group(
            self.name,
            self.version,
            list(self.primary_key),
            event_time=self.event_time,
            online_enabled=self.online_enabled,
            description=self.description,
        )

    def get(self, fs: FeatureStore) -> FeatureGroup:
        return fs.get_feature_group(self.name, self.version)


CUSTOMERS = GroupDef(
    "customers", 1, ("customer_id",), None, True, "Cleaned customer attributes and age group, one row per customer."
)
ARTICLES = GroupDef(
    "articles", 1, ("article_id",), None, True, "Cleaned article attributes and a description text for the catalogue."
)
TRANSACTIONS = GroupDef(
    "transactions",
    1,
    ("customer_id", "article_id", "t_dat"),
    "t_dat",
    False,
    "Daily purchases: quantity, mean price, month sin/cos.",
)
# v2 added last_article_gaps. A store written before it keeps v1 (and the views over it) readable; its next
# incremental run builds v2 from the stored transactions (feature_job.incremental).
CUSTOMER_HISTORY = GroupDef(
    "customer_history",
    2,
    ("customer_id",),
    "as_of",
    True,
    "What a customer bought before as_of: last-N article ids, counts, recency, affinities, price level. "
    "A snapshot per purchase day, valid from the next day.",
)
# v2 added article_price (serving read the whole transactions group for it). Upgraded like customer_history.
ARTICLE_POPULARITY = GroupDef(
    "article_popularity",
    2,
    ("article_id",),
    "as_of",
    True,
    "Units sold in the 7 and 30 days before as_of, the week-on-week trend and the mean price paid before as_of; "
    "a snapshot on each day they change.",
)

# What the feature pipeline writes.
FEATURE_GROUPS = (CUSTOMERS, ARTICLES, TRANSACTIONS, CUSTOMER_HISTORY, ARTICLE_POPULARITY)


def quarantine_group(group: GroupDef) -> GroupDef:
    """Where ``--on-bad-rows quarantine`` keeps the rows of ``group`` that broke a rule, with the reason."""
    return GroupDef(
        f"{group.name}_quarantine",
        group.version,
        ("quarantine_id",),
        "quarantined_at",
        False,
        f"Rows rejected by the validation rules of {group.name!r} v{group.version}, with the rules they broke.",
    )
