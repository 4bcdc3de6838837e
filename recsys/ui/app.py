"""The demo shop: ``make ui`` (``streamlit run recsys/ui/app.py``) after ``make serve``.

Settings come from the project's usual places (``RECSYS_*`` environment, ``.env``): ``RECSYS_HOME`` for the
feature store and registry, ``RECSYS_UI_ENDPOINT_URL`` (default: the public endpoint on ``serving_port``).
Streamlit runs this file top to bottom on every interaction; objects that are slow to build (the store
connection, the served tower's inputs) are cached for the process.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # should anything below import TensorFlow, it must see this first

import streamlit as st

from recsys.config import Settings, load_settings
from recsys.errors import RecsysError
from recsys.store import connect
from recsys.ui import model_page, recommend_page
from recsys.ui.endpoint import EndpointClient, endpoint_url
from recsys.ui.shop import NewCustomerForm, Shop

RECOMMENDATIONS, MODEL = "Recommendations", "Model"
MAKE_DEMO = "Fill the store and train a run first: `make demo` (or the three pipelines' commands in the README)."


@st.cache_resource(show_spinner=False)
def _shop(key: str, _settings: Settings) -> Shop:
    return Shop(connect(_settings))


@st.cache_resource(show_spinner=False)
def _form(key: str, run_id: str | None, _shop: Shop) -> NewCustomerForm:
    """The cold-start inputs the served run's query tower reads."""
    from recsys.serving.customers import feature_kinds
    from recsys.serving.model_set import query_schema
    from recsys.training.runs import find_run

    run = find_run(_shop.project.model_registry, run_id)
    return _shop.new_customer_form(dict(feature_kinds(query_schema(run))))


def main() -> None:
    st.set_page_config(page_title="recsys demo shop", page_icon=":material/storefront:", layout="wide")
    try:
        settings = load_settings()
    except RecsysError as exc:
        st.error(str(exc))
        return
    key = f"{settings.backend}:{settings.home.resolve()}"
    client = EndpointClient(endpoint_url(settings), settings.ui_timeout_s)
    page = st.sidebar.radio("Page", (RECOMMENDATIONS, MODEL), key="page")
    st.sidebar.caption(f"endpoint `{client.url}`")
    st.sidebar.caption(f"store `{settings.backend}` at `{settings.home}`")
    try:
        shop = _shop(key, settings)
        served = st.session_state.get(recommend_page.SERVED_RUN) or settings.serving_run_id
        if page == RECOMMENDATIONS:
            form = _form(key, served, shop)
            recommend_page.render(shop, client, form, settings.serving_default_top_k, settings.serving_max_top_k)
        else:
            model_page.render(shop.project.model_registry, served)
    except RecsysError as exc:  # an empty store, a missing run: say what to do, not a traceback
        st.error(f"{exc}\n\n{MAKE_DEMO}")


main()
