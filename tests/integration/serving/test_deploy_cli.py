"""``inference_pipeline deploy`` as a user runs it on the embedded backend's run (``tiny``)."""

from __future__ import annotations

from pathlib import Path

import yaml
from tinyrun import TinyRun
from typer.testing import CliRunner

from inference_pipeline.cli import app


def test_kserve_target_renders_the_runs_manifests(tiny_run: TinyRun, tmp_path: Path) -> None:
    home = str(tiny_run.settings.home)
    result = CliRunner().invoke(app, ["deploy", "--target", "kserve", "--out", str(tmp_path), "--home", home])
    assert result.exit_code == 0, result.output
    assert tiny_run.run_id in result.output and "kubectl apply" in result.output
    documents = [doc for path in tmp_path.glob("*.yaml") for doc in yaml.safe_load_all(path.read_text()) if doc]
    services = [doc for doc in documents if doc.get("kind") == "InferenceService"]
    assert len(services) == 2 and all(tiny_run.run_id in yaml.safe_dump(doc) for doc in services)


def test_hopsworks_target_refuses_the_embedded_backends_run(tiny_run: TinyRun) -> None:
    # its run id and model versions are this registry's, not Hopsworks': deploying them there would be wrong models
    home = str(tiny_run.settings.home)
    args = ["deploy", "--target", "hopsworks", "--home", home]
    result = CliRunner().invoke(app, args, env={"RECSYS_BACKEND": "local"})
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "RECSYS_BACKEND is 'local'" in message and "RECSYS_BACKEND=hopsworks" in message
