"""``deploy``: the serving stack of one run on Kubernetes (KServe manifests) or on Hopsworks.

Registered on the ``inference_pipeline`` app by :func:`register`; all logic lives in :mod:`recsys.serving.deploy`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from recsys.cli_support import BACKEND_OPTION, HOME_HELP, console
from recsys.config import load_settings

RUN_HELP = "Training run id to deploy (default RECSYS_SERVING_RUN_ID, else the newest run with all three models)."


class Target(StrEnum):
    kserve = "kserve"
    hopsworks = "hopsworks"


def register(app: typer.Typer) -> None:
    """Add the ``deploy`` command to ``app``."""
    app.command("deploy")(deploy)


def deploy(
    target: Target = typer.Option(
        ..., "--target", help="kserve: render InferenceService manifests; hopsworks: deploy."
    ),
    run: str | None = typer.Option(None, "--run", help=RUN_HELP),
    image: str | None = typer.Option(None, help="kserve: the serving image (built from recsys/serving/manifests)."),
    namespace: str = typer.Option("recsys", help="kserve: the Kubernetes namespace."),
    storage_uri: str | None = typer.Option(
        None, help="kserve: the volume claim holding RECSYS_HOME, pvc://CLAIM[/PATH] (default pvc://recsys-home)."
    ),
    out: Path | None = typer.Option(None, help="kserve: folder for the rendered files (default deploy/<run id>)."),
    environment: str = typer.Option(
        "recsys-inference", help="hopsworks: the project Python environment that has recsys installed."
    ),
    replace: bool = typer.Option(False, "--replace", help="hopsworks: delete deployments of the same names first."),
    backend: str | None = BACKEND_OPTION,
    home: Path | None = typer.Option(None, help=HOME_HELP),
) -> None:
    """Render the KServe manifests of a run, or create its Hopsworks deployments."""
    from recsys.serving import deploy as logic
    from recsys.serving.model_set import check_model_set
    from recsys.store import connect
    from recsys.training.runs import MODEL_NAMES

    settings = load_settings(backend=backend, home=home)
    if target is Target.hopsworks and settings.backend != "hopsworks":
        # the run and model versions come from this backend's registry; Hopsworks serves its own registry's models
        raise typer.BadParameter(
            f"Hopsworks deploys the models of its own registry, but RECSYS_BACKEND is {settings.backend!r}: set "
            "RECSYS_BACKEND=hopsworks or --backend hopsworks (and HOPSWORKS_API_KEY) and train there, or render "
            "KServe manifests with --target kserve",
            param_hint="--target",
        )
    project = connect(settings)
    checked = check_model_set(project, run or settings.serving_run_id)  # complete before anything is created
    run_id = checked.run_id
    if target is Target.kserve:
        folder = out or Path("deploy") / run_id
        config = logic.KServeConfig(
            run_id=run_id,
            image=image or logic.DEFAULT_IMAGE,
            namespace=namespace,
            storage_uri=storage_uri or logic.DEFAULT_STORAGE_URI,
            backend=settings.backend,
        )
        written = logic.write_manifests(config, folder)
        console.print(f"[green]rendered[/] run [bold]{run_id}[/] into {folder}:")
        for path in written:
            console.print(f"  {path}", highlight=False)
        console.print("then:", style="bold")
        for line in logic.kubectl_commands(config, folder):
            console.print(f"  {line}", highlight=False, soft_wrap=True)
        return
    from recsys.serving.hopsworks_deploy import deploy_to_hopsworks, login

    versions = {name: int(checked.model(name).version or 0) for name in MODEL_NAMES}
    deployments = deploy_to_hopsworks(
        login(settings),
        run_id,
        versions,
        environment=environment,
        replace=replace,
        log=lambda line: console.print(line, highlight=False),
    )
    console.print(f"[green]deployed[/] run [bold]{run_id}[/] on Hopsworks: {', '.join(deployments)}")
