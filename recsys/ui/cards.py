"""The HTML of an article card and of a recent purchase: pure functions of the fields the endpoint returns.

Every value is escaped: names come from the data set, and a spec may bring any text. Fields a data set does not
have are left out rather than shown empty.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from recsys.ui.colours import swatch_hex

NAME, TYPE, COLOUR, INDEX_GROUP = "prod_name", "product_type_name", "colour_group_name", "index_group_name"
NO_COLOUR = "repeating-linear-gradient(45deg, #ddd 0 4px, #fff 4px 8px)"  # no colour word in the name

# Injected once per page: the swatch and the text lines of a card.
CSS = """
<style>
.rs-swatch {display:inline-block; width:1.1em; height:1.1em; border-radius:50%; border:1px solid #999;
            vertical-align:middle; margin-right:0.4em}
.rs-name {font-weight:600; font-size:1.02em; line-height:1.25; min-height:2.5em}
.rs-line {color:#555; font-size:0.86em; line-height:1.35}
.rs-score {font-variant-numeric:tabular-nums}
</style>
"""


def format_price(price: float | None) -> str:
    """Prices as the data set has them (H&M's are scaled to ~0.01-0.5): enough digits to tell them apart."""
    if price is None:
        return "price n/a"
    return f"price {price:.4f}" if abs(price) < 1 else f"price {price:,.2f}"


def swatch(colour: str | None) -> str:
    hex_colour = swatch_hex(colour)
    background = hex_colour or NO_COLOUR
    title = html.escape(colour or "no colour")
    return f'<span class="rs-swatch" style="background:{background}" title="{title}"></span>'


def card_html(item: Mapping[str, Any], price: float | None) -> str:
    """Name, product type, colour swatch and name, index group, price and score of one recommended article."""
    name = html.escape(str(item.get(NAME) or f"article {item['article_id']}"))
    kind = " · ".join(html.escape(str(item[k])) for k in (TYPE, INDEX_GROUP) if item.get(k))
    colour = item.get(COLOUR)
    lines = [
        f'<div class="rs-name">{name}</div>',
        f'<div class="rs-line">{kind}</div>' if kind else "",
        f'<div class="rs-line">{swatch(colour)}{html.escape(str(colour or "—"))}</div>',
        f'<div class="rs-line rs-score">{format_price(price)}</div>',
        f'<div class="rs-line rs-score">score {float(item.get("score", 0.0)):.4f}</div>',
        f'<div class="rs-line">article {html.escape(str(item["article_id"]))}</div>',
    ]
    return "".join(line for line in lines if line)


def purchase_html(item: Mapping[str, Any]) -> str:
    """One line of the recent purchases: swatch, name, type."""
    name = html.escape(str(item.get(NAME) or f"article {item['article_id']}"))
    kind = html.escape(str(item.get(TYPE) or ""))
    return (
        f'<div class="rs-line">{swatch(item.get(COLOUR))}<b>{name}</b>'
        f"{' · ' + kind if kind else ''} · {format_price(item.get('article_price'))}</div>"
    )
