"""The CLI's metric tables fit an 80-column terminal without losing a name or a figure."""

from __future__ import annotations

import polars as pl
from rich.console import Console

from training_pipeline.cli import metric_table

RETRIEVAL_METHODS = ["two_tower", "popularity", "repurchase + popularity", "oracle", "estimated_oracle"]
RETRIEVAL_METRICS = [f"top_{k}_accuracy" for k in (1, 10, 50, 100)] + [f"recall@{k}" for k in (12, 50, 100, 200)]


def _render(table: pl.DataFrame) -> list[str]:
    console = Console(width=80, record=True)
    console.print(metric_table("test week", table))
    return console.export_text().splitlines()


def test_retrieval_table_keeps_every_name_and_figure_at_80_columns() -> None:
    table = pl.DataFrame(
        {"method": RETRIEVAL_METHODS, **{m: [0.1 * i + 0.01234 for i in range(5)] for m in RETRIEVAL_METRICS}}
    )
    lines = _render(table)
    text = "\n".join(lines)
    assert max(len(line) for line in lines) <= 80
    assert "…" not in text
    # metrics outnumber methods: one row per metric, named in full; a method's header may fold over lines
    assert all(any(line.startswith(f"│ {metric} ") for line in lines) for metric in RETRIEVAL_METRICS)
    assert {m.replace(" ", "") for m in RETRIEVAL_METHODS} <= _headers(lines)
    assert all(f"{0.1 * i + 0.01234:.4f}" in text for i in range(5))


def _headers(lines: list[str]) -> set[str]:
    """Each column's header read down its lines (a folded header spans several), spaces removed."""
    header = [line.split("┃")[1:-1] for line in lines if line.startswith("┃")]
    return {"".join(cells).replace(" ", "") for cells in zip(*header, strict=True)}


def test_ranking_table_has_one_row_per_method_when_methods_outnumber_metrics() -> None:
    methods = [f"retrieval + method_{i}" for i in range(8)]
    table = pl.DataFrame({"method": methods, **{m: [0.05] * 8 for m in ("map@12", "recall@12", "ndcg@12", "hit@12")}})
    lines = _render(table)
    assert max(len(line) for line in lines) <= 80
    assert all(any(line.startswith(f"│ {method} ") for line in lines) for method in methods)
