"""``python -m inference_pipeline``: program 3 of the recommender."""

from __future__ import annotations

from pathlib import Path

import typer

from inference_pipeline.batch_cli import register as register_batch
from inference_pipeline.demo_cli import register as register_demo
from inference_pipeline.deploy_cli import register as register_deploy
from inference_pipeline.serve_cli import register as register_serving
from recsys.cli_support import BACKEND_OPTION, HOME_HELP, console, main_guard, make_app, quiet_tensorflow
from recsys.config import load_settings

app = make_app(
    "inference_pipeline",
    "Program 3 of the recommender: embeddings and index, KServe servers, batch scoring, deployment.",
)
RUN_HELP = "Training run id (default: the newest run that has what this step needs)."


@app.command()
def embed(
    run: str | None = typer.Option(None, "--run", help=RUN_HELP),
    backend: str | None = BACKEND_OPTION,
    home: Path | None = typer.Option(None, help=HOME_HELP),
) -> None:
    """Embed every article with the run's candidate tower into candidate_embeddings (with its vector index)."""
    from recsys.inference.embed import embed_catalogue
    from recsys.store import connect

    quiet_tensorflow()
    embed_catalogue(connect(load_settings(backend=backend, home=home)), run, log=lambda line: console.print(line))


register_serving(app)
register_batch(app)
register_deploy(app)
register_demo(app)


def main() -> None:
    """Entry point of ``python -m`` and of the console script: bad input is one line and exit code 2."""
    main_guard(app)
