"""The demo's pure parts: colour swatches, card HTML, the report split into text and figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys.ui.cards import card_html, format_price, purchase_html
from recsys.ui.colours import BASE, swatch_hex, swatch_rgb
from recsys.ui.report import Figure, split_report


@pytest.mark.parametrize(
    ("name", "rgb"),
    [
        ("Black", BASE["black"]),
        ("Dark Blue", (24, 48, 102)),  # blue (40, 80, 170) * 0.6
        ("Light Pink", (244, 181, 206)),  # pink (235, 120, 165) + 0.45 * (255 - pink), rounded
        ("Yellowish Brown", (156, 114, 40)),  # brown * 0.7 + yellow * 0.3
        ("Bronze/Copper", BASE["copper"]),  # the last colour word is the base
    ],
)
def test_swatch_from_colour_words(name: str, rgb: tuple[int, int, int]) -> None:
    assert swatch_rgb(name) == rgb


def test_no_colour_word_means_no_swatch_colour() -> None:
    assert swatch_rgb("Unknown") is None and swatch_rgb("Other") is None and swatch_rgb(None) is None
    assert swatch_hex("White") == "#fafafa"


def test_card_shows_every_field_and_escapes_them() -> None:
    item = {
        "article_id": 7,
        "score": 0.123456,
        "prod_name": "<b>Juno</b>",
        "product_type_name": "T-shirt",
        "index_group_name": "Divided",
        "colour_group_name": "Dark Blue",
    }
    html = card_html(item, 0.0254)
    assert "&lt;b&gt;Juno&lt;/b&gt;" in html and "<b>Juno" not in html
    assert "T-shirt · Divided" in html and "Dark Blue" in html and "#183066" in html
    assert "price 0.0254" in html and "score 0.1235" in html and "article 7" in html


def test_card_without_optional_fields() -> None:
    html = card_html({"article_id": "a1", "score": 1.0}, None)
    assert "article a1" in html and "price n/a" in html and "repeating-linear-gradient" in html
    assert format_price(12.5) == "price 12.50"
    assert "price 0.0100" in purchase_html({"article_id": 1, "prod_name": "Sock", "article_price": 0.01})


def test_report_split_into_markdown_and_existing_figures(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"png")
    text = "# Run\n\n| m | v |\n|---|---|\n| x | 1 |\n\n![curves](a.png)\n\n## More\n![gone](missing.png)\n"
    parts = split_report(text, tmp_path)
    assert parts == [
        "# Run\n\n| m | v |\n|---|---|\n| x | 1 |",
        Figure(tmp_path / "a.png", "curves"),
        "## More\n![gone](missing.png)",
    ]
