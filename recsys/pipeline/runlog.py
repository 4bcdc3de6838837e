"""Progress and a summary for long jobs: one line per step as it finishes, bars for steps with parts.

A job records its steps here instead of printing, so that tests run it silently and the CLI shows rich output.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import psutil
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

T = TypeVar("T")


@dataclass
class Step:
    """One finished (or running) step: its name, rows it produced and seconds it took."""

    name: str
    rows: int | None = None
    seconds: float = 0.0
    note: str = ""
    rss_gib: float = 0.0  # resident memory of the process when the step ended
    peak_gib: float = 0.0  # the process's peak resident memory so far: the step that raises it made the peak


def peak_rss_gib() -> float:
    """The process's peak resident set since it started (Linux and macOS report it in different units)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**30 if sys.platform == "darwin" else 2**20)


@dataclass
class RunLog:
    """Collects steps; with a console it also shows a spinner per step and a bar for :meth:`track`."""

    console: Console | None = None
    steps: list[Step] = field(default_factory=list)

    @contextmanager
    def step(self, name: str) -> Iterator[Step]:
        record = Step(name)
        started = time.perf_counter()
        if self.console is None:
            yield record
        else:
            with self.console.status(f"{name}..."):
                yield record
        record.seconds = time.perf_counter() - started
        record.rss_gib = psutil.Process().memory_info().rss / 2**30
        record.peak_gib = max(peak_rss_gib(), record.rss_gib)  # the kernel's high-water mark can lag a little
        self.steps.append(record)
        if self.console is not None:
            rows = "" if record.rows is None else f" {record.rows:,} rows"
            note = f" ({record.note})" if record.note else ""
            memory = f", {record.rss_gib:.1f} GiB resident (peak so far {record.peak_gib:.1f})"
            self.console.print(f"[green]✓[/] {name}:{rows} in {record.seconds:.1f} s{note}{memory}")

    def track(self, items: Iterable[T], total: int, description: str) -> Iterator[T]:
        """Iterate ``items`` with a progress bar (nothing shown without a console)."""
        if self.console is None:
            yield from items
            return
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=self.console, transient=True) as progress:
            task = progress.add_task(description, total=total)
            for item in items:
                yield item
                progress.advance(task)

    @property
    def seconds(self) -> float:
        return sum(step.seconds for step in self.steps)


def summary_table(title: str, written: dict[str, int], log: RunLog) -> Table:
    """Rows written per feature group, then the rows, seconds and memory of every step."""
    table = Table(title=title, title_justify="left")
    table.add_column("feature group / step")
    table.add_column("rows", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("GiB resident after", justify="right")
    table.add_column("peak GiB so far", justify="right")
    for name, rows in written.items():
        table.add_row(f"[bold]{name}[/] (written)", f"{rows:,}", "", "", "")
    table.add_section()
    for step in log.steps:
        rows = "" if step.rows is None else f"{step.rows:,}"
        table.add_row(step.name, rows, f"{step.seconds:.1f}", f"{step.rss_gib:.1f}", f"{step.peak_gib:.1f}")
    table.add_row("[bold]total[/]", "", f"[bold]{log.seconds:.1f}[/]", "", "")
    return table
