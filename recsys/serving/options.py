"""The knobs of the serving stages, as one frozen value built from :class:`~recsys.config.Settings`.

The KServe models take this object rather than the settings, so the same code runs in a server process, in the
in-process chain and in tests with hand-picked values.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from recsys.config import Settings

# What an answer shows about each article, when the catalogue has these columns (H&M's words; a dataset spec
# without them simply shows fewer fields).
DISPLAY_COLUMNS = ("prod_name", "product_type_name", "colour_group_name", "index_group_name")


@dataclass(frozen=True)
class ServingOptions:
    """Request limits, the filter rules and the order rules (see the ``serving_*`` settings for each)."""

    default_top_k: int = 12
    max_top_k: int = 100
    max_instances: int = 64
    max_body_bytes: int = 65_536
    retrieve_k: int = 100
    filter_bought: bool = True
    bought_window_days: int = 30
    bought_last_n: int = 20
    inactive_column: str = "active"
    min_units_30d: int = 0
    group_column: str = "product_code"
    type_column: str = "product_type_name"
    max_per_type: int = 0
    popularity_refresh_s: float = 300.0
    display_columns: tuple[str, ...] = DISPLAY_COLUMNS

    def __post_init__(self) -> None:
        if self.default_top_k > self.max_top_k:
            raise ValueError(f"default top_k {self.default_top_k} is above the maximum {self.max_top_k}")

    @classmethod
    def from_settings(cls, settings: Settings) -> ServingOptions:
        """Every field from the setting ``serving_<field>``; fields without a setting keep their default."""
        values = {f.name: getattr(settings, f"serving_{f.name}") for f in fields(cls) if f.name != "display_columns"}
        return cls(**values)

    def to_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> ServingOptions:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})  # type: ignore[arg-type]
