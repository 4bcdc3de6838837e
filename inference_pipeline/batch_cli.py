"""``batch``: every customer's top-K into the ``recommendations`` group (logic: :mod:`recsys.inference.batch`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

from recsys.cli_support import BACKEND_OPTION, HOME_HELP, console
from recsys.config import load_settings
from recsys.errors import RecsysError

RUN_HELP = "Training run id (default RECSYS_SERVING_RUN_ID, else the newest run with all three models)."


def register(app: typer.Typer) -> None:
    """Add the ``batch`` command to ``app``."""
    app.command("batch")(batch)


def batch(
    run: str | None = typer.Option(None, "--run", help=RUN_HELP),
    top_k: int | None = typer.Option(
        None, "--top-k", help="Articles per customer (default RECSYS_SERVING_DEFAULT_TOP_K)."
    ),
    batch_size: int = typer.Option(8192, "--batch-size", min=1, help="Customers scored together (memory vs. speed)."),
    request_time: str | None = typer.Option(
        None, help="ISO-8601 time the answers are for and their computed_at (default now, UTC)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the whole group instead of upserting."),
    backend: str | None = BACKEND_OPTION,
    home: Path | None = typer.Option(None, help=HOME_HELP),
) -> None:
    """Score every customer with the serving models in bulk and write the recommendations group."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from recsys.cli_support import quiet_tensorflow
    from recsys.inference.batch import RECOMMENDATIONS, batch_recommend, check_request_time
    from recsys.serving.options import ServingOptions
    from recsys.store import connect

    settings = load_settings(backend=backend, home=home)
    when = _request_time(request_time)
    when = None if when is None else check_request_time(when, "--request-time")  # naive UTC, not after tomorrow
    quiet_tensorflow()
    columns = (TextColumn("scoring customers"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("batch", total=None)
        result = batch_recommend(
            connect(settings),
            run or settings.serving_run_id,
            top_k=settings.serving_default_top_k if top_k is None else top_k,
            batch_size=batch_size,
            request_time=when,
            options=ServingOptions.from_settings(settings),
            overwrite=overwrite,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            log=lambda line: console.print(line, highlight=False),
        )
    stages = "  ".join(f"{name} {seconds:.1f}" for name, seconds in result.stage_seconds.items())
    console.print(f"stages (s): {stages}", highlight=False)
    console.print(
        f"read them: feature group [bold]{RECOMMENDATIONS.name}[/] v{RECOMMENDATIONS.version} "
        f"(online: one row per customer), computed_at {result.computed_at.isoformat()}"
    )


def _request_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise RecsysError(f"--request-time: not an ISO-8601 time: {value!r}") from None
