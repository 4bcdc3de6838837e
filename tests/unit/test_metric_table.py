"""The CLI's metric tables fit an 80-column terminal without losing a name or a figure, and keep headers whole
where the console is wide enough."""

from __future__ import annotations

import polars as pl
from rich.console import Console

from training_pipeline.cli import metric_table

RETRIEVAL_METHODS = ["two_tower", "popularity", "repurchase+popularity", "oracle", "estimated_oracle"]
RETRIEVAL_METRICS = [f"top_{k}_accuracy" for k in (1, 10, 50, 100)] + [f"recall@{k}" for k in (12, 50, 100, 200)]


def _render(table: pl.DataFrame, width: int = 80) -> list[str]:
    console = Console(width=width, record=True)
    console.print(metric_table("test week", table))
    return console.export_text().splitlines()


def _retrieval_table() -> pl.DataFrame:
    return pl.DataFrame(
        {"method": RETRIEVAL_METHODS, **{m: [0.1 * i + 0.01234 for i in range(5)] for m in RETRIEVAL_METRICS}}
    )


def test_retrieval_table_keeps_every_name_and_figure_at_80_columns() -> None:
    lines = _render(_retrieval_table())
    text = "\n".join(lines)
    assert max(len(line) for line in lines) <= 80
    assert "…" not in text
    # metrics outnumber methods: one row per metric, named in full; a method's header may span lines
    assert all(any(line.startswith(f"│ {metric} ") for line in lines) for metric in RETRIEVAL_METRICS)
    headers = _headers(lines)
    assert {"".join(parts) for parts in headers} >= set(RETRIEVAL_METHODS)
    assert all(f"{0.1 * i + 0.01234:.4f}" in text for i in range(5))
    # too wide for 80 columns whole: long headers break after '+' or '_', never inside a word
    assert ("repurchase+", "popularity") in headers and ("estimated_", "oracle") in headers
    assert all(part[-1] in "+_" for parts in headers for part in parts[:-1])


def test_headers_stay_whole_when_the_console_is_wide_enough() -> None:
    lines = _render(_retrieval_table(), width=120)
    assert {(m,) for m in RETRIEVAL_METHODS} <= _headers(lines)
    assert sum(line.startswith("┃") for line in lines) == 1


def _headers(lines: list[str]) -> set[tuple[str, ...]]:
    """Each column's header as its non-blank lines, read down the column."""
    header = [line.split("┃")[1:-1] for line in lines if line.startswith("┃")]
    return {tuple(c.strip() for c in cells if c.strip()) for cells in zip(*header, strict=True)}


def test_ranking_table_has_one_row_per_method_when_methods_outnumber_metrics() -> None:
    methods = [f"retrieval + method_{i}" for i in range(8)]
    table = pl.DataFrame({"method": methods, **{m: [0.05] * 8 for m in ("map@12", "recall@12", "ndcg@12", "hit@12")}})
    lines = _render(table)
    assert max(len(line) for line in lines) <= 80
    assert all(any(line.startswith(f"│ {method} ") for line in lines) for method in methods)


def test_a_header_with_spaces_breaks_at_them_without_blank_lines() -> None:
    table = pl.DataFrame({"method": ["retrieval + estimated_oracle", "popularity"], **{m: [0.5, 0.25] for m in "abc"}})
    lines = _render(table, width=36)
    header = [line.split("┃")[2].strip() for line in lines if line.startswith("┃")]
    assert header[header.index("retrieval") :] == ["retrieval", "+", "estimated_", "oracle"]
