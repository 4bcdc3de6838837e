"""One typed settings object for all three programs.

Values come, in order of precedence, from explicit arguments (the CLIs' flags), environment variables with the
``RECSYS_`` prefix, and a ``.env`` file in the working directory. Unknown ``RECSYS_`` keys in ``.env`` are errors,
so a typo fails loudly instead of silently using a default. Hopsworks' own variables (``HOPSWORKS_API_KEY``,
``HOPSWORKS_HOST``, ``HOPSWORKS_PROJECT``) are read under their standard names; the key is a ``SecretStr`` and is
never printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError
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
