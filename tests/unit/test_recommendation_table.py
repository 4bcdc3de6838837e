"""The CLI's recommendation tables keep every id, score and source whole at 80 columns (the demo's width), and
lose no word of the articles' descriptions."""

from __future__ import annotations

import itertools

from rich.console import Console

from inference_pipeline.serve_cli import recommendation_table

DETAILS = ("Underwear bottom", "Light Turquoise", "Ladieswear")
NAMES = ["A" * 45, "Winter top with a rather long description", "Slim top", "", "Liam t-shirt", "Juno top"]
ARTICLES = [
    {
        "article_id": 1114700010 + i,
        "score": -3.84091 - i,
        "prod_name": name,
        **dict(zip(("product_type_name", "colour_group_name", "index_group_name"), DETAILS, strict=True)),
        "source": ("model", "popularity", "repurchase")[i % 3],
    }
    for i, name in enumerate(NAMES)
]
PREDICTION = {"customer_id": "c" * 64, "source": "model", "run_id": "run-20261122T090811Z-294508", "articles": ARTICLES}


def _rows(width: int) -> list[list[str]]:
    console = Console(width=width, record=True)
    console.print(recommendation_table(PREDICTION))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= width
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines if line.startswith("│")]


def _items(rows: list[list[str]]) -> list[list[list[str]]]:
    """Each item's lines, from its rank's line to the next one's."""
    starts = [i for i, row in enumerate(rows) if row[0]] + [len(rows)]
    return [rows[i:j] for i, j in itertools.pairwise(starts)]


def test_ids_scores_and_sources_stay_whole_at_80_columns() -> None:
    items = _items(_rows(80))
    heads = [[str(rank), str(a["article_id"]), f"{a['score']:.4f}"] for rank, a in enumerate(ARTICLES, 1)]
    assert [item[0][:3] for item in items] == heads
    assert [item[0][-1] for item in items] == [a["source"] for a in ARTICLES]
    # the description wraps instead, and loses nothing: a word wider than its column folds, never shortens
    described = ["".join(line[3] for line in item).replace(" ", "") for item in items]
    assert described == [(name + " · ".join(DETAILS)).replace(" ", "") for name in NAMES]
    assert any(len(item) > 2 for item in items) and not any("…" in line[3] for item in items for line in item)


def test_a_wide_console_gives_the_name_over_its_details() -> None:
    items = _items(_rows(200))
    details = " · ".join(DETAILS)
    assert [[line[3] for line in item] for item in items] == [[name, details] if name else [details] for name in NAMES]
