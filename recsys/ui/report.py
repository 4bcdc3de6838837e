"""The training report of a run, as the Model page shows it.

The training pipeline writes ``report.md`` and its PNG plots into the ranker's registry folder (``report/``,
see :mod:`recsys.training.report`). Streamlit's Markdown cannot load images by a relative path, so the report is
split into Markdown blocks and image files, shown in their order. The registry's metrics of every model of the
run come with it: a run trained without the ranking step still shows what it has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from recsys.store.base import ModelRegistry
from recsys.training.report import REPORT_FILE
from recsys.training.runs import MODEL_NAMES, RANKER_MODEL, find_run

REPORT_FOLDER = "report"
IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<path>[^)\s]+)\)\s*$")


@dataclass(frozen=True)
class Figure:
    path: Path
    caption: str


@dataclass(frozen=True)
class RunReport:
    run_id: str
    parts: list[str | Figure] = field(default_factory=list)  # empty: the run has no report
    metrics: pl.DataFrame = field(default_factory=pl.DataFrame)  # model, version, metric, value


def split_report(text: str, folder: Path) -> list[str | Figure]:
    """Markdown blocks and the figures between them, in order; images that do not exist are left as text."""
    parts: list[str | Figure] = []
    block: list[str] = []
    for line in text.splitlines():
        match = IMAGE.match(line.strip())
        path = folder / match["path"] if match else None
        if match and path is not None and path.is_file():
            if "".join(block).strip():
                parts.append("\n".join(block).strip("\n"))
            block = []
            parts.append(Figure(path, match["alt"]))
        else:
            block.append(line)
    if "".join(block).strip():
        parts.append("\n".join(block).strip("\n"))
    return parts


def run_report(registry: ModelRegistry, run_id: str | None = None) -> RunReport:
    """The report of ``run_id``, or of the newest complete run (the one ``serve`` picks by default)."""
    run = find_run(registry, run_id)
    rows = [
        {"model": name, "version": model.version, "metric": metric, "value": float(value)}
        for name, model in run.models.items()
        for metric, value in sorted(model.metrics.items())
    ]
    schema = {"model": pl.String, "version": pl.Int64, "metric": pl.String, "value": pl.Float64}
    metrics = pl.DataFrame(rows, schema=schema).sort(
        pl.col("model").replace_strict({n: i for i, n in enumerate(MODEL_NAMES)}, default=len(MODEL_NAMES)),
        "metric",
    )
    folder = run.model(RANKER_MODEL).download() / REPORT_FOLDER
    report = folder / REPORT_FILE
    parts = split_report(report.read_text(), folder) if report.is_file() else []
    return RunReport(run.run_id, parts, metrics)
