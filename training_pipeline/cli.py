"""``python -m training_pipeline``: program 2 of the recommender (feature views -> models in the registry)."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache, partial
from pathlib import Path
from typing import Any

import typer

from recsys.cli_support import (
    BACKEND_OPTION,
    DATASET_HELP,
    HOME_HELP,
    SEED_HELP,
    console,
    main_guard,
    make_app,
    quiet_tensorflow,
)
from recsys.config import Settings, load_settings

app = make_app("training_pipeline", "Program 2 of the recommender: feature views -> models in the registry.")

SPLIT_HELP = (
    "time: test = the last 7 days, validation = the 7 before (design §6). Only to compare with published numbers: "
    "per-customer: each customer's last --test-fraction of rows is test and as many before them validation "
    "(MovieLens protocol); random: a --test-fraction of all rows drawn with --seed is test, as many validation."
)
SET_HELP = "Override a two-tower setting, KEY=VALUE (repeatable), e.g. --set embedding_dim=32 --set temperature=0.1."


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs with JSON values where they parse (numbers, booleans, lists), else strings."""
    import json

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, not {pair!r}", param_hint="--set")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def oracle_for(settings: Settings) -> Any:
    """The generator's oracle when the data set is synthetic (generated first when the home lacks it, e.g. for
    another --seed than the store's: the oracle is the generator's, not the store's), else ``None``."""
    kind, _, preset = settings.dataset.partition(":")
    if kind != "synthetic":
        return None
    from recsys.data.oracle import Oracle
    from recsys.data.sources import ensure_synthetic

    return Oracle.from_dir(ensure_synthetic(settings, preset))


# Loads the oracle when a step needs it, after the step's own checks (an empty store is named before a missing oracle)
OracleLoader = Callable[[], Any]


def metric_table(title: str, table: Any) -> Any:
    """A polars metric table (one row per method) as a rich renderable whose columns are the shorter list, methods
    or metrics, so that it fits a terminal (the ranker's table has eight methods and four metrics). Row names and
    figures keep their width. Headers stay whole when the table fits the console; when it does not, the longest
    headers break after ``+``, ``_`` or a space, and only what still does not fit folds."""
    return _MetricTable(title, table)


class _MetricTable:
    """Built at render time, when the console's width is known (see :func:`metric_table`)."""

    def __init__(self, title: str, table: Any) -> None:
        self.title, self.table = title, table
        self.methods, self.metrics = table.get_column("method").to_list(), table.columns[1:]
        self.by_method = len(self.methods) > len(self.metrics)  # one row per method, a column per metric
        self.names = self.metrics if self.by_method else self.methods  # the column headers after the first

    def _rich(self, headers: dict[str, str]) -> Any:
        from rich.table import Column, Table

        def cells(values: list[Any]) -> list[str]:
            return ["—" if v is None else f"{v:.4f}" for v in values]

        columns = [
            Column("method" if self.by_method else "metric", no_wrap=True),
            *(Column(headers.get(n, n), overflow="fold", min_width=6) for n in self.names),
        ]
        out = Table(*columns, title=self.title)
        if self.by_method:
            for method, *values in self.table.iter_rows():
                out.add_row(method, *cells(values))
        else:
            for metric in self.metrics:
                out.add_row(metric, *cells(self.table.get_column(metric).to_list()))
        return out

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.measure import Measurement

        headers: dict[str, str] = {}
        rich = self._rich(headers)
        unbounded = options.update(max_width=10_000)  # a measurement is capped at the width it is given
        for name in sorted(self.names, key=len, reverse=True):  # break the longest headers first, only while too wide
            if Measurement.get(console, unbounded, rich).maximum <= options.max_width:
                break
            broken = re.sub(r"(?<=[+_])(?=[^ ])| (?=.)", "\n", name)  # a new line after + or _, or for a space
            if broken != name:
                headers[name] = broken
                rich = self._rich(headers)
        yield rich


SPLIT_OPTION = typer.Option("time", help=SPLIT_HELP)
EPOCHS_OPTION = typer.Option(
    None,
    min=1,
    help="Maximum two-tower epochs (early stopping may end sooner; default 6; 10 with --split per-customer).",
)
TEST_FRACTION_OPTION = typer.Option(
    None,
    "--test-fraction",
    "--holdout",
    help="per-customer and random splits: the share of rows for test, and as many for validation "
    "(default 0.1 per customer, 0.2 random).",
)


# With a per-customer split every test customer has training rows, so the customer id embedding carries their
# taste. MovieLens (80k training rows) also needs more, smaller steps than the 2048-row batches tuned on `small`:
# validation top-100 accuracy ~0.09-0.10 with these against ~0.085 with the defaults. A popularity correction of
# weight 1.5 (over-correcting: popular movies gain) raised validation top-100 accuracy over the movies each user
# had not rated from 0.175/0.172/0.180 (weight 1) to 0.184/0.175/0.186 (seeds 42/1/2). --set still overrides.
PER_CUSTOMER_DEFAULTS = {
    "use_customer_id": True,
    "popularity_weight": 1.5,
    "batch_size": 256,
    "learning_rate": 0.005,
    "patience": 4,
    "epochs": 10,
}


# A random split also leaves nearly every test customer with training rows; the rest of the defaults stay `small`'s.
SPLIT_DEFAULTS = {"per-customer": PER_CUSTOMER_DEFAULTS, "random": {"use_customer_id": True}}


def _two_tower_config(set_: list[str], epochs: int | None, seed: int, split: str = "time") -> Any:
    from recsys.training.two_tower import TwoTowerConfig

    defaults = SPLIT_DEFAULTS.get(split, {})
    overrides = defaults | parse_overrides(set_) | ({"epochs": epochs} if epochs else {}) | {"seed": seed}
    try:
        return TwoTowerConfig.from_dict(overrides)
    except (TypeError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--set") from None


def _retrieval(
    settings: Settings,
    config: Any,
    load_oracle: OracleLoader,
    split: str = "time",
    share: float | None = None,
    data: Any = None,
    project: Any = None,
) -> str:
    from recsys.data.sources import dataset_features
    from recsys.store import connect
    from recsys.training.retrieval_job import train_retrieval

    result = train_retrieval(
        project or connect(settings),
        dataset_features(settings.dataset, settings),
        config,
        data=data,
        load_oracle=load_oracle,
        split=split,
        share=share,
        dataset=settings.dataset,
        log=lambda line: console.print(line),
    )
    console.print(metric_table(f"retrieval on the test week, run {result.run_id}", result.metrics))
    versions = ", ".join(f"{name} v{version}" for name, version in result.model_versions.items())
    console.print(f"registered {versions} under run [bold]{result.run_id}[/] in {result.seconds:.0f} s")
    console.print(f"report: {result.report}")
    return result.run_id


def _ranker_config(seed: int, iterations: int | None, objective: str) -> Any:
    """The ranker's config from the flags, or a usage error naming ``--objective`` (before any work starts)."""
    from recsys.training.ranking import RankerConfig

    try:
        return RankerConfig(seed=seed, objective=objective, **({"iterations": iterations} if iterations else {}))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--objective") from None


def _ranking(
    settings: Settings,
    run: str | None,
    candidates: int,
    weeks: int,
    config: Any,
    load_oracle: OracleLoader,
    data: Any = None,
    project: Any = None,
) -> None:
    from recsys.data.sources import dataset_features
    from recsys.store import connect
    from recsys.training.ranking_job import train_ranking

    result = train_ranking(
        project or connect(settings),
        dataset_features(settings.dataset, settings),
        config,
        run_id=run,
        data=data,
        n_candidates=candidates,
        n_train_weeks=weeks,
        load_oracle=load_oracle,
        dataset=settings.dataset,
        log=lambda line: console.print(line),
    )
    console.print(metric_table(f"whole pipeline on the test week, run {result.run_id}", result.metrics))
    console.print(f"ranker ({result.objective}) registered as v{result.model_version} under run {result.run_id}")
    console.print(f"report: {result.report}")


@app.command()
def retrieval(
    dataset: str | None = typer.Option(None, "--dataset", help=DATASET_HELP),
    epochs: int | None = EPOCHS_OPTION,
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    split: str = SPLIT_OPTION,
    test_fraction: float | None = TEST_FRACTION_OPTION,
    seed: int | None = typer.Option(None, help=SEED_HELP),
    backend: str | None = BACKEND_OPTION,
    home: Path | None = typer.Option(None, help=HOME_HELP),
) -> None:
    """Train the two-tower model, evaluate it on the test week beside the baselines, register both towers."""
    from recsys.training.splits import SPLITS, TrainingDataError, check_share

    if split not in SPLITS:
        raise typer.BadParameter(f"expected one of {', '.join(SPLITS)}, not {split!r}", param_hint="--split")
    if test_fraction is not None and split == "time":
        raise typer.BadParameter("the time split holds out the last 7 days, not a share", param_hint="--test-fraction")
    if test_fraction is not None:
        try:
            check_share(split, test_fraction)
        except TrainingDataError as exc:
            raise typer.BadParameter(str(exc), param_hint="--test-fraction") from None
    settings = load_settings(backend=backend, home=home, seed=seed, dataset=dataset)
    config = _two_tower_config(set_, epochs, settings.seed, split)
    quiet_tensorflow()
    _retrieval(settings, config, partial(oracle_for, settings), split, test_fraction)


CANDIDATES_OPTION = typer.Option(100, min=1, help="Retrieval candidates per customer-week the ranker orders.")
WEEKS_OPTION = typer.Option(4, min=1, help="Training weeks before the validation week.")
OBJECTIVE_OPTION = typer.Option(
    "auto", help="auto: train YetiRank and Logloss, keep the better on validation MAP@12 (YetiRank is ~5x slower)."
)
ITERATIONS_OPTION = typer.Option(None, min=1, help="CatBoost's maximum iterations (default 1000; early stopping).")


@app.command()
def ranking(
    run: str | None = typer.Option(None, "--run", help="Training run id (default: the newest with both towers)."),
    dataset: str | None = typer.Option(None, "--dataset", help=DATASET_HELP),
    candidates: int = CANDIDATES_OPTION,
    weeks: int = WEEKS_OPTION,
    iterations: int | None = ITERATIONS_OPTION,
    objective: str = OBJECTIVE_OPTION,
    seed: int | None = typer.Option(None, help=SEED_HELP),
    backend: str | None = BACKEND_OPTION,
    home: Path | None = typer.Option(None, help=HOME_HELP),
) -> None:
    """Train the CatBoost ranker on the run's own candidates and weeks; evaluate the pipeline; write the report."""
    settings = load_settings(backend=backend, home=home, seed=seed, dataset=dataset)
    config = _ranker_config(settings.seed, iterations, objective)
    quiet_tensorflow()
    _ranking(settings, run, candidates, weeks, config, partial(oracle_for, settings))


@app.command("all")
def all_steps(
    dataset: str | None = typer.Option(None, "--dataset", help=DATASET_HELP),
    epochs: int | None = EPOCHS_OPTION,
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    candidates: int = CANDIDATES_OPTION,
    weeks: int = WEEKS_OPTION,
    iterations: int | None = ITERATIONS_OPTION,
    objective: str = OBJECTIVE_OPTION,
    seed: int | None = typer.Option(None, help=SEED_HELP),
    backend: str | None = BACKEND_OPTION,
    home: Path | None = typer.Option(None, help=HOME_HELP),
) -> None:
    """One run: retrieval -> embed (the inference pipeline's step) -> ranking, all under one run id."""
    from recsys.data.sources import dataset_features
    from recsys.inference.embed import embed_catalogue
    from recsys.store import connect
    from recsys.training.retrieval_job import check_store_features, load_retrieval_data

    settings = load_settings(backend=backend, home=home, seed=seed, dataset=dataset)
    config = _two_tower_config(set_, epochs, settings.seed)
    ranker_config = _ranker_config(settings.seed, iterations, objective)  # a bad flag stops before the towers train
    quiet_tensorflow()
    load_oracle = cache(partial(oracle_for, settings))  # one object: both evaluations share its estimated tastes
    project = connect(settings)  # one connection (on Hopsworks, one login) for every step
    check_store_features(project, dataset_features(settings.dataset, settings), settings.dataset)  # before any read
    data = load_retrieval_data(project)  # read once: both steps train on its time split
    run_id = _retrieval(settings, config, load_oracle, data=data, project=project)
    embed_catalogue(project, run_id, log=lambda line: console.print(line))
    _ranking(settings, run_id, candidates, weeks, ranker_config, load_oracle, data=data, project=project)


def main() -> None:
    """Entry point of ``python -m`` and of the console script: bad input is one line and exit code 2."""
    main_guard(app)
