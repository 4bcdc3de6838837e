"""The Recommendations page: choose a customer, see the endpoint's answer as cards, buy or click.

A buy writes the purchase into the feature store in the button's callback, which Streamlit runs before the page
is drawn again; the page then asks the endpoint anew, whose already-bought filter leaves the article out. No
answer is cached in the session, so the grid always shows what the endpoint says now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import streamlit as st

from recsys.data.dataset import ARTICLE_ID
from recsys.errors import RecsysError
from recsys.features.customers import AGE
from recsys.ui.cards import CSS, card_html, purchase_html
from recsys.ui.endpoint import Answer, EndpointClient, EndpointDown, EndpointError
from recsys.ui.shop import INDEX_GROUP, NewCustomerForm, Shop

EXISTING, NEW = "Existing customer", "New customer"
CARDS_PER_ROW = 4
MAX_TOP_K = 48  # a grid larger than this is no longer a shop page
MAIN_STAGES = ("validate", "customer_features", "query_tower", "ranking", "total")
DESCRIPTION = ("detail_desc", "description")

# session keys
CUSTOMER, MODE, TOP_K, AGE_KEY, GROUPS_KEY = "customer_id", "mode", "top_k", "new_age", "new_index_groups"
NEW_ID, FLASH, OPENED, SERVED_RUN = "new_customer_id", "flash", "opened", "served_run_id"


@dataclass(frozen=True)
class Chosen:
    customer_id: str | int
    new: bool  # made up on this page (a cold start by construction)
    features: dict[str, Any] = field(default_factory=dict)


def render(shop: Shop, client: EndpointClient, form: NewCustomerForm, default_top_k: int, max_top_k: int) -> None:
    st.title("Recommendations")
    st.markdown(CSS, unsafe_allow_html=True)
    if not client.ready():
        down_banner(EndpointDown(client.url, "no answer to the readiness check"))
        return
    _flash()
    chosen = _choose_customer(shop, form)
    limit = max(1, min(max_top_k, MAX_TOP_K))
    top_k = st.slider("How many articles", 1, limit, min(default_top_k, limit), key=TOP_K)
    if chosen is None:
        st.info("Type a customer id, pick a random active customer, or start as a new customer.")
        return
    try:
        answer = client.recommend(chosen.customer_id, top_k, chosen.features)
    except EndpointDown as exc:
        down_banner(exc)
        return
    except EndpointError as exc:
        st.error(str(exc))
        return
    st.session_state[SERVED_RUN] = answer.run_id
    row = shop.customer_row(chosen.customer_id)
    if row is None and not chosen.new:
        st.warning(
            f"Customer {chosen.customer_id!r} is not in the store: this is the cold-start answer "
            f"({'recent popularity' if answer.source == 'popularity' else 'the query tower without a history'})."
        )
    left, right = st.columns([3, 1], gap="medium")
    with left:
        _grid(shop, chosen.customer_id, answer)
    with right:
        _recent(shop, chosen.customer_id)
    _timings(answer)


def down_banner(exc: EndpointDown) -> None:
    st.error(str(exc), icon=":material/power_off:")


# -- choosing a customer ----------------------------------------------------------------------------------------


def _pick_random(shop: Shop) -> None:
    try:
        st.session_state[CUSTOMER] = str(shop.random_active_customer(np.random.default_rng()))
    except RecsysError as exc:
        st.session_state[FLASH] = ("error", str(exc))


def _another_new(shop: Shop) -> None:
    st.session_state[NEW_ID] = shop.new_customer_id(np.random.default_rng())


def _choose_customer(shop: Shop, form: NewCustomerForm) -> Chosen | None:
    mode = st.radio("Customer", (EXISTING, NEW), horizontal=True, key=MODE)
    if mode == EXISTING:
        typed, pick = st.columns([3, 1], vertical_alignment="bottom")
        typed.text_input("Customer id", key=CUSTOMER, placeholder="an id from the store")
        pick.button("Random active customer", key="random_customer", on_click=_pick_random, args=(shop,))
        text = str(st.session_state.get(CUSTOMER) or "").strip()
        if not text:
            return None
        try:
            return Chosen(shop.parse_customer_id(text), new=False)
        except RecsysError as exc:
            st.error(str(exc))
            return None
    if NEW_ID not in st.session_state:
        _another_new(shop)
    features: dict[str, Any] = {}
    age_col, groups_col, again = st.columns([1, 3, 1], vertical_alignment="bottom")
    if form.age:
        age = age_col.number_input("Age (optional)", min_value=10, max_value=110, value=None, step=1, key=AGE_KEY)
        if age is not None:
            features[AGE] = float(age)
    if form.index_groups:
        groups = groups_col.multiselect("Preferred index groups (optional)", form.index_groups, key=GROUPS_KEY)
        if groups:
            features[INDEX_GROUP] = list(groups)
    again.button("Another new customer", key="another_new", on_click=_another_new, args=(shop,))
    st.caption(f"New customer `{st.session_state[NEW_ID]}`: not in the store until they buy something.")
    return Chosen(st.session_state[NEW_ID], new=True, features=features)


# -- the answer -------------------------------------------------------------------------------------------------


def _buy(shop: Shop, customer_id: str | int, item: dict[str, Any]) -> None:
    name = item.get("prod_name") or item[ARTICLE_ID]
    try:
        shop.buy(customer_id, item[ARTICLE_ID])
    except RecsysError as exc:
        st.session_state[FLASH] = ("error", f"could not record the purchase: {exc}")
        return
    st.session_state[FLASH] = ("success", f"Bought {name} (article {item[ARTICLE_ID]}); recommendations refreshed.")


def _click(shop: Shop, customer_id: str | int, item: dict[str, Any]) -> None:
    try:
        shop.click(customer_id, item[ARTICLE_ID])
    except RecsysError as exc:
        st.session_state[FLASH] = ("error", f"could not record the click: {exc}")
        return
    opened: set[Any] = st.session_state.setdefault(OPENED, set())
    opened.add(item[ARTICLE_ID])


def _flash() -> None:
    kind, text = st.session_state.pop(FLASH, (None, None))
    if kind == "success":
        st.success(text, icon=":material/shopping_bag:")
    elif kind == "error":
        st.error(text)


def _grid(shop: Shop, customer_id: str | int, answer: Answer) -> None:
    st.subheader(f"Top {len(answer.articles)}")
    if not answer.articles:
        st.info("The endpoint had nothing to recommend.")
        return
    details = shop.articles(answer.article_ids)
    prices = details.get_column("article_price").to_list() if "article_price" in details.columns else []
    description = next((c for c in DESCRIPTION if c in details.columns), None)
    texts = details.get_column(description).to_list() if description else []
    opened: set[Any] = st.session_state.get(OPENED, set())
    for start in range(0, len(answer.articles), CARDS_PER_ROW):
        for offset, column in enumerate(st.columns(CARDS_PER_ROW)):
            i = start + offset
            if i >= len(answer.articles):
                break
            item = answer.articles[i]
            with column.container(border=True, key=f"card-{item[ARTICLE_ID]}"):
                st.markdown(card_html(item, prices[i] if prices else None), unsafe_allow_html=True)
                buy, look = st.columns(2)
                buy.button(
                    "Buy", key=f"buy-{item[ARTICLE_ID]}", type="primary", on_click=_buy, args=(shop, customer_id, item)
                )
                look.button("View", key=f"click-{item[ARTICLE_ID]}", on_click=_click, args=(shop, customer_id, item))
                if item[ARTICLE_ID] in opened and texts and texts[i]:
                    st.caption(texts[i])


def _recent(shop: Shop, customer_id: str | int) -> None:
    st.subheader("Recent purchases")
    bought = shop.recent_purchases(customer_id)
    if bought.is_empty():
        st.caption("none yet")
        return
    for item in bought.iter_rows(named=True):
        st.markdown(purchase_html(item), unsafe_allow_html=True)


def _timings(answer: Answer) -> None:
    shown = " · ".join(f"{k} {answer.timings_ms[k]:.1f} ms" for k in MAIN_STAGES if k in answer.timings_ms)
    st.caption(f"run `{answer.run_id}` · source: {answer.source} · {shown}")
    with st.expander("Timings of every stage (ms, measured by the servers)"):
        stages = pl.DataFrame(
            {"stage": list(answer.timings_ms), "ms": list(answer.timings_ms.values())},
            schema={"stage": pl.String, "ms": pl.Float64},
        )
        st.dataframe(stages, hide_index=True)
