"""``python -m feature_pipeline``: generate or describe raw data, and (later) turn it into feature groups."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from feature_pipeline.store_cli import store_app
from recsys.cli_support import HOME_HELP, SEED_HELP, console, make_app
from recsys.config import load_settings

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
