"""Settings: env prefix, .env, unknown keys fail loudly, secrets never printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys.config import load_settings
from recsys.errors import RecsysError


def test_env_prefix_and_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECSYS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RECSYS_BACKEND", "local")
    settings = load_settings()
    assert settings.home == tmp_path / "home"
    assert settings.data_dir == tmp_path / "home" / "data"
    assert load_settings(home=tmp_path / "flag").home == tmp_path / "flag"  # flags win over the environment


def test_bad_backend_names_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECSYS_BACKEND", "cassandra")
    with pytest.raises(RecsysError, match="backend"):
        load_settings()


def test_unknown_key_in_dotenv_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("RECSYS_HOEM=/tmp/typo\n")
    with pytest.raises(RecsysError, match="recsys_hoem"):
        load_settings()


def test_hopsworks_key_is_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOPSWORKS_API_KEY", "super-secret-value")
    settings = load_settings()
    assert settings.hopsworks_api_key is not None
    assert settings.hopsworks_api_key.get_secret_value() == "super-secret-value"
    assert "super-secret-value" not in repr(settings)
    assert "super-secret-value" not in str(settings.public_dict())


def test_a_blank_run_id_means_the_newest_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECSYS_SERVING_RUN_ID", "")  # what a workflow passes for an undefined variable
    assert load_settings().serving_run_id is None
    monkeypatch.setenv("RECSYS_SERVING_RUN_ID", "run-1")
    assert load_settings().serving_run_id == "run-1"
