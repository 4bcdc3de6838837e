"""``python -m feature_pipeline store ...``: look inside the local feature store.

``ls`` lists every feature group version with its row counts; ``show`` prints one group's schema, a few rows and
its Delta commit history. Read-only: nothing here writes to the store. Mounted by the feature pipeline CLI as
``app.add_typer(store_app, name="store")``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from recsys.config import load_settings
from recsys.errors import RecsysError
from recsys.store.local import LocalFeatureStore
from recsys.store.local.feature_group import LocalFeatureGroup

store_app = typer.Typer(
    help="Inspect the local feature store: groups, versions, schemas, rows and commit history.",
    no_args_is_help=True,
)
console = Console()

HomeOption = typer.Option(None, "--home", help="RECSYS_HOME to inspect (default: the RECSYS_HOME setting).")


def _store(home: Path | None) -> LocalFeatureStore:
    settings = load_settings(home=home)
    if settings.backend != "local":
        raise RecsysError("`store` inspects the local backend; use the Hopsworks UI for RECSYS_BACKEND=hopsworks")
    return LocalFeatureStore(settings.home)


@store_app.command("ls")
def ls(home: Path | None = HomeOption) -> None:
    """List feature groups and views: versions, offline and online rows, keys."""
    store = _store(home)
    groups = store.get_feature_groups()
    table = Table(title=f"feature groups in {store.layout.home}")
    for column in ("name", "version", "rows", "online", "online rows", "primary key", "event time", "index"):
        table.add_column(column, justify="right" if "rows" in column or column == "version" else "left")
    for group in groups:
        table.add_row(
            group.name,
            str(group.version),
            f"{group.count():,}",
            "yes" if group.online_enabled else "no",
            f"{group.count(online=True):,}" if group.online_enabled else "-",
            ", ".join(group.primary_key),
            group.event_time or "-",
            _index_label(group),
        )
    console.print(table if groups else "no feature groups yet")
    views = store.get_feature_views()
    if views:
        vt = Table(title="feature views")
        for column in ("name", "version", "root group", "features", "labels"):
            vt.add_column(column)
        for view in views:
            root = view.query.group
            vt.add_row(
                view.name,
                str(view.version),
                f"{root.name} v{root.version}",
                str(len(view.features)),
                ", ".join(view.labels) or "-",
            )
        console.print(vt)


@store_app.command("show")
def show(
    name: str = typer.Argument(..., help="Feature group name."),
    version: int = typer.Option(..., "--version", "-v", help="Feature group version (always explicit)."),
    rows: int = typer.Option(5, "--rows", "-n", min=0, help="How many sample rows to print."),
    history: int = typer.Option(10, "--history", min=0, help="How many Delta commits to print."),
    home: Path | None = HomeOption,
) -> None:
    """Schema, sample rows and Delta history of one feature group version."""
    group = _store(home).get_feature_group(name, version)
    console.print(
        f"[bold]{group.name}[/] v{group.version}  {group.description or ''}\n"
        f"offline rows: {group.count():,}  online: "
        f"{f'yes ({group.count(online=True):,} rows)' if group.online_enabled else 'no'}  "
        f"index: {_index_label(group)}",
        highlight=False,
    )
    schema = Table(title="schema")
    schema.add_column("column")
    schema.add_column("dtype")
    schema.add_column("role")
    for column, dtype in (group.schema or {}).items():
        schema.add_row(column, str(dtype), _role(group, column))
    console.print(schema if group.schema is not None else "no schema yet (nothing inserted)")
    if rows and group.schema is not None:
        console.print(_frame_table(group.scan().head(rows).collect(), "sample rows"))
    commits = group.commit_details(history)
    if commits:
        ht = Table(title="Delta history (newest first)")
        for column in ("version", "time (UTC)", "operation", "rows in", "inserted", "updated"):
            ht.add_column(column, justify="right" if column != "operation" else "left")
        for commit in commits:
            metrics = commit.get("operationMetrics", {})
            when = datetime.fromtimestamp(commit["timestamp"] / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
            ht.add_row(
                str(commit.get("version")),
                when,
                str(commit.get("operation")),
                str(metrics.get("num_source_rows", metrics.get("num_added_rows", "-"))),
                str(metrics.get("num_target_rows_inserted", metrics.get("num_added_rows", "-"))),
                str(metrics.get("num_target_rows_updated", 0)),
            )
        console.print(ht)


def _role(group: LocalFeatureGroup, column: str) -> str:
    roles = []
    if column in group.primary_key:
        roles.append("primary key")
    if column == group.event_time:
        roles.append("event time")
    if group.embedding_index and column == group.embedding_index.column:
        roles.append(f"embedding ({group.embedding_index.metric}, {group.embedding_index.index_type})")
    return ", ".join(roles)


def _index_label(group: LocalFeatureGroup) -> str:
    config = group.embedding_index
    return "-" if config is None else f"{config.column}: {config.index_type}/{config.metric}"


def _frame_table(frame: pl.DataFrame, title: str) -> Table:
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(column, overflow="ellipsis", max_width=40)
    for row in frame.iter_rows():
        table.add_row(*[_cell(value) for value in row])
    return table


def _cell(value: object) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."
