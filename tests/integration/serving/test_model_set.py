"""An incomplete model set is refused before any server starts, with a message that says what is missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_servers import CLI, server_processes
from tinyrun import TinyRun

from recsys.config import load_settings
from recsys.pipeline.views import CUSTOMERS_VIEW, RANKING_VIEW
from recsys.serving.model_set import ModelSetError, check_model_set, check_ranker_inputs, ranker_schema, view
from recsys.serving.options import ServingOptions
from recsys.serving.servers import Ports, ServingError, ServingStack
from recsys.store import Model, Project, connect
from recsys.training.ranking_features import RankerSchema
from recsys.training.runs import CANDIDATE_MODEL, QUERY_MODEL, RANKER_MODEL, Run, RunNotFoundError


@pytest.fixture(scope="module")
def home(tiny_run: TinyRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny store, so that the broken runs registered here stay out of the other tests."""
    return tiny_run.copy_home(tmp_path_factory.mktemp("broken"))


@pytest.fixture(scope="module")
def project(home: Path) -> Project:
    return connect(load_settings(backend="local", home=home))


def model_of(project: Project, name: str, run_id: str) -> Model:
    return next(m for m in project.model_registry.get_models(name) if m.run_id == run_id)


def artefacts(model: Model, to: Path) -> Path:
    """A registered model's artefacts, without the registry's own ``model.json``."""
    shutil.copytree(model.download(), to, ignore=shutil.ignore_patterns("model.json"))
    return to


def register(project: Project, run_id: str, source_run: str, names: tuple[str, ...], tmp: Path) -> None:
    for name in names:
        folder = artefacts(model_of(project, name, source_run), tmp / run_id / name)
        project.model_registry.create_model(name, run_id=run_id, metrics={}).save(folder)


def test_incomplete_runs_are_refused(project: Project, tiny_run: TinyRun, tmp_path: Path) -> None:
    register(project, "run-no-ranker", tiny_run.run_id, (QUERY_MODEL, CANDIDATE_MODEL), tmp_path)
    with pytest.raises(RunNotFoundError, match="run-no-ranker lacks ranker"):
        check_model_set(project, "run-no-ranker")
    # a new candidate tower version has no embeddings until `embed` has run
    register(project, "run-no-embeddings", tiny_run.run_id, (QUERY_MODEL, CANDIDATE_MODEL, RANKER_MODEL), tmp_path)
    with pytest.raises(ModelSetError, match=r"no candidate embeddings .* inference_pipeline embed --run run-no-emb"):
        check_model_set(project, "run-no-embeddings")
    with pytest.raises(RunNotFoundError, match="no training run 'run-typo'"):
        check_model_set(project, "run-typo")


def test_a_ranker_that_reads_columns_the_views_lack_is_refused(
    project: Project, tiny_run: TinyRun, tmp_path: Path
) -> None:
    ranker = model_of(project, RANKER_MODEL, tiny_run.run_id)
    edited = artefacts(ranker, tmp_path / "ranker")
    meta = json.loads((edited / "ranker.json").read_text())
    schema = RankerSchema.from_dict(meta["schema"])
    meta["schema"] = RankerSchema(**{**schema.__dict__, "customer_numeric": ("shoe_size",)}).to_dict()
    (edited / "ranker.json").write_text(json.dumps(meta))
    odd = project.model_registry.create_model(RANKER_MODEL, run_id="run-odd", metrics={}).save(edited)
    run = Run("run-odd", {**check_model_set(project, tiny_run.run_id).models, RANKER_MODEL: odd})
    customers, ranking = view(project, CUSTOMERS_VIEW), view(project, RANKING_VIEW)
    with pytest.raises(ModelSetError, match=r"run-odd: the ranker reads customers\.shoe_size"):
        check_ranker_inputs(run, ranker_schema(run), customers, ranking)


def test_serve_refuses_an_incomplete_run_before_starting_anything(
    home: Path, tiny_run: TinyRun, tmp_path: Path
) -> None:
    project = connect(load_settings(backend="local", home=home))
    register(project, "run-towers-only", tiny_run.run_id, (QUERY_MODEL, CANDIDATE_MODEL), tmp_path)
    env = {**os.environ, "RECSYS_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", CLI, "serve", "--run", "run-towers-only", "--port", "0"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "run-towers-only lacks ranker" in done.stderr and "Traceback" not in done.stderr
    assert not server_processes(home)


def test_a_server_that_fails_while_loading_stops_the_others(home: Path, tmp_path: Path) -> None:
    """The launcher's own check is skipped here (a stack built by hand), so the servers themselves refuse."""
    settings = load_settings(backend="local", home=home)
    stack = ServingStack(settings, "run-gone", Ports(0, 0, 0, 0).resolved(), tmp_path / "logs", ServingOptions())
    with pytest.raises(ServingError, match=r"server exited with code 2 while loading(.|\n)*no training run 'run-gone'"):
        stack.start(timeout_s=120)
    assert not server_processes(home) and not stack.servers
