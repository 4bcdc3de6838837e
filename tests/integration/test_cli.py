"""The pipeline programs as a user runs them: real subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsys.errors import RecsysError


def run(*args: str, home: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "RECSYS_HOME": str(home), "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=full_env, timeout=300)


def assert_clean_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    message = " ".join(proc.stderr.split())  # rich may wrap long lines
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("program", ["feature_pipeline", "training_pipeline", "inference_pipeline"])
def test_help(program: str, tmp_path: Path) -> None:
    proc = run(program, "--help", home=tmp_path)
    assert proc.returncode == 0
    assert "settings" in proc.stdout


def test_generate_then_describe(tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    proc = run("feature_pipeline", "generate", "--preset", "tiny", "--seed", "3", "--out", str(out), home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "generated" in proc.stdout and "2,000" in proc.stdout  # the summary lists the customers
    assert (out / "transactions_train.parquet").exists() and (out / "dataset.yaml").exists()

    proc = run("feature_pipeline", "describe", "--dataset", str(out / "dataset.yaml"), home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "2018-09-20" in proc.stdout and "repurchase" in proc.stdout


def test_describe_synthetic_reference_generates_into_home(tmp_path: Path) -> None:
    proc = run("feature_pipeline", "describe", "--dataset", "synthetic:tiny", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "data" / "synthetic-tiny-seed42" / "manifest.json").exists()


def test_describe_hm_sample(tmp_path: Path, shared_data: Path) -> None:
    proc = run("feature_pipeline", "describe", "--dataset", f"hm:{shared_data / 'hm-sample'}", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "5,000" in proc.stdout and "4,946" in proc.stdout


def test_unknown_preset(tmp_path: Path) -> None:
    proc = run("feature_pipeline", "generate", "--preset", "huge", home=tmp_path)
    assert_clean_error(proc, "unknown preset 'huge'", "tiny, small, hm")


def test_missing_spec_file(tmp_path: Path) -> None:
    proc = run("feature_pipeline", "describe", "--dataset", str(tmp_path / "nope.yaml"), home=tmp_path)
    assert_clean_error(proc, "nope.yaml", "not found")


def test_spec_with_unknown_key(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: x\ntransactions: {path: t.csv, customer_id: c, article_id: a, timestamp: t, colour: 1}\n")
    proc = run("feature_pipeline", "describe", "--dataset", str(spec), home=tmp_path)
    assert_clean_error(proc, "bad.yaml", "colour")


def test_unreadable_dataset_reference(tmp_path: Path) -> None:
    proc = run("feature_pipeline", "describe", "--dataset", "kaggle:somewhere", home=tmp_path)
    assert_clean_error(proc, "kaggle:somewhere", "synthetic:PRESET")


def test_bad_setting_in_environment(tmp_path: Path) -> None:
    proc = run("training_pipeline", "settings", home=tmp_path, env={"RECSYS_BACKEND": "cassandra"})
    assert_clean_error(proc, "backend")


def test_settings_masks_the_api_key(tmp_path: Path) -> None:
    proc = run("inference_pipeline", "settings", home=tmp_path, env={"HOPSWORKS_API_KEY": "abc-very-secret"})
    assert proc.returncode == 0, proc.stderr
    assert "abc-very-secret" not in proc.stdout and "****" in proc.stdout


@pytest.mark.parametrize("program", ["feature_pipeline", "training_pipeline", "inference_pipeline"])
def test_backend_flag_overrides_the_environment(program: str, tmp_path: Path) -> None:
    proc = run(program, "settings", "--backend", "hopsworks", home=tmp_path, env={"RECSYS_BACKEND": "local"})
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"backend\s*│\s*hopsworks", proc.stdout), proc.stdout
    proc = run(program, "settings", "--backend", "cassandra", home=tmp_path)
    assert_clean_error(proc, "backend", "'local' or 'hopsworks'")


@pytest.mark.parametrize(
    ("program", "args"),
    [
        ("feature_pipeline", ["backfill"]),
        ("feature_pipeline", ["incremental"]),
        ("training_pipeline", ["retrieval"]),
        ("training_pipeline", ["ranking"]),
        ("training_pipeline", ["all"]),
        ("inference_pipeline", ["embed"]),
        ("inference_pipeline", ["serve"]),
        ("inference_pipeline", ["recommend", "someone"]),
        ("inference_pipeline", ["batch"]),
        ("inference_pipeline", ["deploy", "--target", "kserve"]),
        ("inference_pipeline", ["demo"]),
    ],
)
def test_every_command_on_the_store_takes_the_backend_flag(program: str, args: list[str], tmp_path: Path) -> None:
    app = importlib.import_module(f"{program}.cli").app
    result = CliRunner().invoke(app, [*args, "--backend", "cassandra", "--home", str(tmp_path)])
    # the settings refuse the value before anything runs (the program's entry point turns this into exit code 2)
    assert isinstance(result.exception, RecsysError), result.output
    assert "backend" in str(result.exception) and "'local' or 'hopsworks'" in str(result.exception)
