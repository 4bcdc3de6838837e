"""One typed settings object for all three programs.

Values come, in order of precedence, from explicit arguments (the CLIs' flags), environment variables with the
``RECSYS_`` prefix, and a ``.env`` file in the working directory. Unknown keys in ``.env`` are errors,
so a typo fails loudly instead of silently using a default. Hopsworks' own variables (``HOPSWORKS_API_KEY``,
``HOPSWORKS_HOST``, ``HOPSWORKS_PROJECT``) are read under their standard names; the key is a ``SecretStr`` and is
never printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from recsys.errors import RecsysError

Backend = Literal["local", "hopsworks"]


class Settings(BaseSettings):
    """Configuration shared by the feature, training and inference pipelines."""

    model_config = SettingsConfigDict(
        env_prefix="RECSYS_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        validate_default=True,
    )

    backend: Backend = Field("local", description="Where features, models and indexes live: local | hopsworks.")
    home: Path = Field(
        Path(".recsys"),
        description="Root folder of the embedded backend (Delta tables, SQLite, FAISS, registry) and caches.",
    )
    dataset: str = Field(
        "synthetic:small",
        description="Data source: synthetic:PRESET, hm:FOLDER (the Kaggle CSVs) or a dataset spec YAML path.",
    )
    seed: int = Field(42, ge=0, description="Seed for every random choice (generation, sampling, training).")

    hopsworks_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("HOPSWORKS_API_KEY", "RECSYS_HOPSWORKS_API_KEY"),
        description="Hopsworks API key (secret; never logged).",
    )
    hopsworks_host: str | None = Field(
        None,
        validation_alias=AliasChoices("HOPSWORKS_HOST", "RECSYS_HOPSWORKS_HOST"),
        description="Hopsworks host name; the SDK's default (app.hopsworks.ai) when unset.",
    )
    hopsworks_project: str | None = Field(
        None,
        validation_alias=AliasChoices("HOPSWORKS_PROJECT", "RECSYS_HOPSWORKS_PROJECT"),
        description="Hopsworks project name; the key's default project when unset.",
    )

    # -- serving (recsys.serving): the four KServe servers, request limits, filter and order rules -------------
    serving_run_id: str | None = Field(
        None, description="Training run to serve (default: the newest run with both towers and the ranker)."
    )
    serving_port: int = Field(8080, ge=0, le=65535, description="Public endpoint (query transformer); 0 = free.")
    serving_query_predictor_port: int = Field(8081, ge=0, le=65535, description="Query predictor port; 0 = free.")
    serving_ranking_port: int = Field(8082, ge=0, le=65535, description="Ranking transformer port; 0 = free.")
    serving_ranking_predictor_port: int = Field(8083, ge=0, le=65535, description="Ranking predictor; 0 = free.")
    serving_default_top_k: int = Field(12, ge=1, description="top_k of a request that does not say.")
    serving_max_top_k: int = Field(100, ge=1, description="Largest top_k a request may ask for.")
    serving_max_instances: int = Field(64, ge=1, description="Most instances (customers) in one request.")
    serving_max_body_bytes: int = Field(65_536, ge=256, description="Largest request body the endpoint reads.")
    serving_retrieve_k: int = Field(100, ge=1, description="Candidates retrieved from the vector index.")
    serving_filter_bought: bool = Field(True, description="Never recommend what the customer bought recently.")
    serving_bought_window_days: int = Field(
        30, ge=0, description="Recently = the last purchases (see bought_last_n) if the latest is this recent."
    )
    serving_bought_last_n: int = Field(20, ge=0, description="How many of the last purchases count as recent.")
    serving_inactive_column: str = Field(
        "active", description="Article column that marks an article off sale when false/0 (ignored if absent)."
    )
    serving_min_units_30d: int = Field(
        0, ge=0, description="Articles that sold fewer units in the last 30 days are not shown (0: no rule)."
    )
    serving_group_column: str = Field(
        "product_code", description="Show one article per value of this column (colour variants; '' = off)."
    )
    serving_type_column: str = Field("product_type_name", description="Column the per-type cap counts.")
    serving_max_per_type: int = Field(0, ge=0, description="Most articles of one type in an answer (0: no cap).")
    serving_popularity_refresh_s: float = Field(
        300.0,
        ge=0,
        description="How old the ranking server's in-memory catalogue (article features, popularity list) may get "
        "before it is re-read in the background (seconds).",
    )

    # -- demo UI (recsys.ui): the Streamlit shop started by `make ui` ----------------------------------------------
    ui_endpoint_url: str | None = Field(
        None,
        description="Endpoint the demo UI asks (default: the public endpoint on 127.0.0.1:serving_port).",
    )
    ui_timeout_s: float = Field(10.0, gt=0, description="How long the demo UI waits for an answer (seconds).")

    @field_validator("serving_run_id", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # a workflow's `${{ vars.RECSYS_SERVING_RUN_ID }}` is "" when the variable is not defined: serve the newest
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def data_dir(self) -> Path:
        """Where generated and cached raw data sets are written."""
        return self.home / "data"

    def public_dict(self) -> dict[str, object]:
        """The settings as plain values, secrets masked, for printing."""
        out: dict[str, object] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                value = "**********"
            out[name] = str(value) if isinstance(value, Path) else value
        return out


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning validation errors into one readable :class:`RecsysError`.

    ``None`` overrides are dropped so that CLI flags left unset fall back to the environment.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise RecsysError(f"invalid settings (RECSYS_* environment, .env or flags): {problems}") from None
