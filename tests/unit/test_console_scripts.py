"""The installed console scripts (``recsys-features`` ...) behave as ``python -m``: bad input is one line, exit 2."""

from __future__ import annotations

import importlib
import sys
import tomllib
from pathlib import Path

import pytest

SCRIPTS = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]["scripts"]


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_a_console_script_reports_bad_input_in_one_line(
    script: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module, function = SCRIPTS[script].split(":")
    monkeypatch.setattr(sys, "argv", [script, "settings", "--backend", "nope"])
    with pytest.raises(SystemExit) as info:
        getattr(importlib.import_module(module), function)()
    err = capsys.readouterr().err
    assert info.value.code == 2, err  # the Typer app alone raised the error: a traceback and exit 1
    assert err.strip().splitlines() == [
        "error: invalid settings (RECSYS_* environment, .env or flags): backend: Input should be 'local' or 'hopsworks'"
    ]
