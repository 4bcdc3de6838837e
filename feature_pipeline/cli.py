"""``python -m feature_pipeline``: generate or describe raw data, turn it into feature groups, inspect the store."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from feature_pipeline.store_cli import store_app
from recsys.cli_support import BACKEND_OPTION, DATASET_HELP, HOME_HELP, SEED_HELP, console, main_guard, make_app
from recsys.config import load_settings
from recsys.pipeline.history_length import N_LAST

app = make_app("feature_pipeline", "Program 1 of the recommender: raw data -> feature groups.")
app.add_typer(store_app, name="store")


@app.command()
def generate(
    preset: str = typer.Option("small", help="Size: tiny (tests), small (demo, ~1.5M purchases) or hm (H&M scale)."),
    seed: int | None = typer.Option(None, help=SEED_HELP),
    out: Path | None = typer.Option(None, help="Output folder (default RECSYS_HOME/data/synthetic-PRESET-seedN)."),
    home: Path | None = typer.Option(None, help=HOME_HELP),
) -> None:
    """Generate a synthetic H&M-shaped data set with known ground truth (Parquet + spec + latent model)."""
    from recsys.data.describe import describe, render_description
    from recsys.data.sources import synthetic_dir
    from recsys.data.spec import load_spec, read_dataset
    from recsys.data.synthetic import generate as generate_data
    from recsys.data.synthetic import get_preset

    settings = load_settings(home=home, seed=seed)
    get_preset(preset)
    folder = out or synthetic_dir(settings, preset)
    started = time.perf_counter()
    with console.status(f"generating preset {preset!r} with seed {settings.seed}..."):
        data = generate_data(preset, settings.seed)
        data.write(folder)
    elapsed = time.perf_counter() - started
    console.print(f"[green]generated[/] preset [bold]{preset}[/] (seed {settings.seed}) in {elapsed:.1f} s -> {folder}")
    render_description(describe(read_dataset(load_spec(folder / "dataset.yaml"))), console)


@app.command("describe")
def describe_command(
    dataset: str = typer.Option(
        ..., "--dataset", help="synthetic:PRESET, hm:FOLDER (the Kaggle CSVs), or a dataset spec YAML file."
    ),
    customers: int | None = typer.Option(None, help="H&M only: sample this many customers (seeded)."),
    seed: int | None = typer.Option(None, help=SEED_HELP),
    home: Path | None = typer.Option(None, help=HOME_HELP),
) -> None:
    """Summarise a data set: row counts, date range, sparsity, activity, repurchases, top categories."""
    from recsys.data.describe import describe, render_description
    from recsys.data.sources import load_dataset

    settings = load_settings(home=home, seed=seed)
    render_description(describe(load_dataset(dataset, settings, customers=customers)), console)


UNTIL_HELP = "Use transactions up to and including this day (ISO date); later days are left for incremental runs."
BAD_ROWS_HELP = (
    "fail: stop at the first rule a row breaks and write nothing. "
    "quarantine: write bad rows to <group>_quarantine and go on with the rest."
)


def _run_features(
    mode: str,
    dataset: str | None,
    until: str | None,
    n_last: int,
    on_bad_rows: str,
    customers: int | None,
    seed: int | None,
    home: Path | None,
    backend: str | None = None,
) -> None:
    from recsys.data.sources import load_dataset
    from recsys.pipeline import feature_job
    from recsys.pipeline.runlog import RunLog, summary_table
    from recsys.store import connect
    from recsys.store.timeparse import to_datetime

    if on_bad_rows not in ("fail", "quarantine"):
        raise typer.BadParameter(f"expected fail or quarantine, not {on_bad_rows!r}", param_hint="--on-bad-rows")
    if n_last < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--n-last")
    settings = load_settings(home=home, seed=seed, dataset=dataset, backend=backend)
    options = feature_job.FeatureOptions(
        n_last=n_last,
        on_bad_rows=on_bad_rows,  # type: ignore[arg-type]
        until=to_datetime(until) if until else None,
    )
    log = RunLog(console)
    with log.step(f"load {settings.dataset}") as step:
        loaded = [load_dataset(settings.dataset, settings, customers=customers)]
        step.rows = loaded[0].transactions.height
    project = connect(settings)
    job = feature_job.backfill if mode == "backfill" else feature_job.incremental
    run = job(project, loaded.pop(), options, log)  # not kept here: the job frees the raw rows when done with them
    span = "no new days" if run.first_day is None else f"{run.first_day:%Y-%m-%d} .. {run.last_day:%Y-%m-%d}"
    console.print(summary_table(f"{mode} of {run.dataset} ({span}) -> {settings.backend} store", run.written, log))
    for group, count in run.quarantined.items():
        console.print(f"[yellow]quarantined[/] {count:,} row(s) of {group} -> feature group {group}_quarantine")


@app.command()
def backfill(
    dataset: str | None = typer.Option(None, "--dataset", help=DATASET_HELP),
    until: str | None = typer.Option(None, help=UNTIL_HELP),
    n_last: int = typer.Option(N_LAST, help="Length of the last-purchases list in customer_history."),
    on_bad_rows: str = typer.Option("fail", help=BAD_ROWS_HELP),
    customers: int | None = typer.Option(None, help="H&M only: sample this many customers (seeded)."),
    seed: int | None = typer.Option(None, help=SEED_HELP),
    backend: str | None = BACKEND_OPTION,
    home: Path | None = typer.Option(None, help=HOME_HELP),
) -> None:
    """Compute every feature group from all history and overwrite its rows; create the feature views.

    A data set with other columns than the stored groups' (an edited spec) is refused, writing nothing.
    Write it into a fresh store: --home NEW_FOLDER.
    """
    _run_features("backfill", dataset, until, n_last, on_bad_rows, customers, seed, home, backend)


@app.command()
def incremental(
    dataset: str | None = typer.Option(None, "--dataset", help=DATASET_HELP),
    until: str | None = typer.Option(None, help=UNTIL_HELP),
    n_last: int = typer.Option(N_LAST, help="Length of the last-purchases list (must match the backfill)."),
    on_bad_rows: str = typer.Option("fail", help=BAD_ROWS_HELP),
    customers: int | None = typer.Option(None, help="H&M only: sample this many customers (seeded)."),
    seed: int | None = typer.Option(None, help=SEED_HELP),
    backend: str | None = BACKEND_OPTION,
    home: Path | None = typer.Option(None, help=HOME_HELP),
) -> None:
    """Add the days after the newest stored transaction (idempotent: a second run writes nothing)."""
    _run_features("incremental", dataset, until, n_last, on_bad_rows, customers, seed, home, backend)


def main() -> None:
    """Entry point of ``python -m`` and of the console script: bad input is one line and exit code 2."""
    main_guard(app)
