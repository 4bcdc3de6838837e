"""Queries over local feature groups: select, join, and the point-in-time (as-of) join.

Point-in-time rule (design §3): when the root group and a joined group both have an event time, each root row at
time t is joined with the joined group's newest row for the same key whose event time is *at or before* t — the
same rule as Hopsworks' as-of joins, so both backends give the same training data. A feature row's event time is
therefore the moment its value becomes valid: a history snapshot that summarises purchases up to the end of day d
carries event time d + 1 day, so that a purchase on day d never sees itself (the feature functions in
``recsys.features`` write them that way, and their tests prove it). When only the joined group has an event time,
its latest row per key is used (a snapshot "as of now", which is what serving sees).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from recsys.store.base import JoinType, Query, TimeLike
from recsys.store.errors import SchemaError
from recsys.store.local.online import newest_per_key
from recsys.store.timeparse import between

if TYPE_CHECKING:
    from recsys.store.local.feature_group import LocalFeatureGroup

_ROW = "__row"
_RIGHT_ROW = "__right_row"


@dataclass(frozen=True)
class Join:
    """One join step: the right-hand query, the key columns on each side, the join type and the name prefix."""

    query: LocalQuery
    left_on: tuple[str, ...]
    right_on: tuple[str, ...]
    join_type: JoinType
    prefix: str | None

    def output_names(self) -> list[str]:
        return [f"{self.prefix or ''}{name}" for name in self.query.features]


class LocalQuery(Query):
    """An immutable selection of ``features`` from ``group`` plus joins; :meth:`join` returns a new query."""

    def __init__(self, group: LocalFeatureGroup, features: Sequence[str], joins: Sequence[Join] = ()) -> None:
        schema = group.require_schema()
        unknown = [name for name in features if name not in schema]
        if unknown:
            raise SchemaError(
                f"feature group {group.label}: unknown feature(s) {unknown}; it has {list(schema.names())}",
                column=unknown[0],
            )
        self.group = group
        self._features = list(dict.fromkeys(features))
        self.joins = list(joins)
        names = self.features
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise SchemaError(f"query has duplicate output column(s) {duplicated}; pass prefix= to join()")

    @property
    def features(self) -> list[str]:
        names = list(self._features)
        for join in self.joins:
            names.extend(join.output_names())
        return names

    @property
    def own_features(self) -> list[str]:
        """The features selected from the root group only."""
        return list(self._features)

    def join(
        self,
        sub_query: Query,
        on: Sequence[str] | None = None,
        left_on: Sequence[str] | None = None,
        right_on: Sequence[str] | None = None,
        join_type: JoinType = "left",
        prefix: str | None = None,
    ) -> LocalQuery:
        if not isinstance(sub_query, LocalQuery):
            raise SchemaError("a local query can only join another local query")
        if join_type not in ("left", "inner"):
            raise SchemaError(f"join_type must be 'left' or 'inner', not {join_type!r}")
        if on is not None:
            left_keys, right_keys = tuple(on), tuple(on)
        elif left_on is not None and right_on is not None:
            left_keys, right_keys = tuple(left_on), tuple(right_on)
        else:
            left_keys = right_keys = tuple(sub_query.group.primary_key)
        if len(left_keys) != len(right_keys) or not left_keys:
            raise SchemaError(f"join keys do not pair up: left {list(left_keys)}, right {list(right_keys)}")
        for side, group, keys in (("left", self.group, left_keys), ("right", sub_query.group, right_keys)):
            missing = [key for key in keys if key not in group.require_schema()]
            if missing:
                raise SchemaError(f"join key(s) {missing} not in {side} feature group {group.label}")
        step = Join(sub_query, left_keys, right_keys, join_type, prefix)
        return LocalQuery(self.group, self._features, [*self.joins, step])

    def read(self, online: bool = False) -> pl.DataFrame:
        if not online:
            return self.collect()
        if self.joins:
            raise SchemaError(f"an online read selects from one group; this query joins {self.group.label} with others")
        return self.group.read_online(self._features)

    def collect(
        self, start: TimeLike | None = None, end: TimeLike | None = None, extra: Sequence[str] = ()
    ) -> pl.DataFrame:
        """Execute: root rows with event time in ``[start, end)``, joined; ``extra`` root columns kept too."""
        group = self.group
        schema = group.require_schema()
        as_of = group.event_time is not None
        hidden = [key for join in self.joins for key in join.left_on]
        if as_of and self.joins:
            hidden.append(group.event_time)
        wanted = list(dict.fromkeys([*self._features, *extra, *hidden]))
        lazy = group.scan().select(wanted)
        if start is not None or end is not None:
            if group.event_time is None:
                raise SchemaError(f"feature group {group.label} has no event time; cannot filter by time")
            lazy = lazy.filter(between(group.event_time, schema[group.event_time], start, end))
        frame = lazy.collect()
        for join in self.joins:
            frame = _apply(frame, join, group.event_time)
        keep = [*self.features, *[name for name in extra if name not in self.features]]
        return frame.select(keep)

    def to_dict(self) -> dict[str, Any]:
        """Plain values for a feature view's JSON (groups by name and version)."""
        return {
            "group": self.group.name,
            "version": self.group.version,
            "features": self._features,
            "joins": [
                {
                    "query": join.query.to_dict(),
                    "left_on": list(join.left_on),
                    "right_on": list(join.right_on),
                    "join_type": join.join_type,
                    "prefix": join.prefix,
                }
                for join in self.joins
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], resolve: Callable[[str, int], LocalFeatureGroup]) -> LocalQuery:
        """Inverse of :meth:`to_dict`; ``resolve`` finds a group by name and version."""
        joins = [
            Join(
                cls.from_dict(item["query"], resolve),
                tuple(item["left_on"]),
                tuple(item["right_on"]),
                item["join_type"],
                item["prefix"],
            )
            for item in data["joins"]
        ]
        return cls(resolve(data["group"], data["version"]), data["features"], joins)

    def nodes(self) -> list[tuple[LocalQuery, Join | None]]:
        """The root and every joined query (depth first), each with the join that brought it in."""
        out: list[tuple[LocalQuery, Join | None]] = [(self, None)]
        for join in self.joins:
            sub = join.query.nodes()
            out.append((sub[0][0], join))
            out.extend(sub[1:])
        return out


def _apply(frame: pl.DataFrame, join: Join, left_time: str | None) -> pl.DataFrame:
    """Join one right-hand query onto ``frame`` (which has the left keys and, if needed, the left event time).

    The rows keep ``frame``'s order. Only the keys, event times and row numbers are joined and sorted; the
    features (wide: lists, text) are then gathered once, by the matched row numbers, instead of sorted.
    """
    right_group = join.query.group
    right_time = right_group.event_time
    key_names = [f"__rk{i}" for i in range(len(join.right_on))]
    extra = [*join.right_on, *([right_time] if right_time else [])]
    right = join.query.collect(extra=extra)
    renames = {name: f"{join.prefix or ''}{name}" for name in join.query.features}
    clash = [name for name in renames.values() if name in frame.columns]
    if clash:
        raise SchemaError(f"joining {right_group.label} repeats column(s) {clash}; pass prefix= to join()")
    keys = right.select(
        *[
            pl.col(key).cast(frame.schema[left]).alias(alias)
            for key, left, alias in zip(join.right_on, join.left_on, key_names, strict=True)
        ],
        *([pl.col(right_time).alias("__rt")] if right_time else []),
    ).with_row_index(_RIGHT_ROW)
    as_of = left_time is not None and right_time is not None
    left = frame.select(list(dict.fromkeys([*join.left_on, *([left_time] if as_of else [])]))).with_row_index(_ROW)
    if as_of:
        keys = keys.with_columns(pl.col("__rt").cast(frame.schema[left_time])).sort("__rt")
        matched = left.sort(left_time).join_asof(
            keys,
            left_on=left_time,
            right_on="__rt",
            by_left=list(join.left_on),
            by_right=key_names,
            strategy="backward",
            allow_exact_matches=True,
            check_sortedness=False,
        )
    else:
        if right_time is not None:
            keys = newest_per_key(keys, key_names, "__rt")
        matched = left.join(keys, left_on=list(join.left_on), right_on=key_names, how="left")
    matched = matched.select(_ROW, _RIGHT_ROW).sort(_ROW, _RIGHT_ROW, nulls_last=True)
    if join.join_type == "inner":
        matched = matched.filter(pl.col(_RIGHT_ROW).is_not_null())
    rows = matched.get_column(_ROW)
    if rows.len() != frame.height or not rows.equals(pl.int_range(frame.height, dtype=rows.dtype, eager=True)):
        frame = frame[rows]  # an inner join dropped rows, or a key matched several right rows
    if not renames:  # a join that only filters (inner) or keeps rows: no columns to add
        return frame
    features = right.select([pl.col(name).alias(renamed) for name, renamed in renames.items()])
    return frame.hstack(features[matched.get_column(_RIGHT_ROW)].get_columns())
