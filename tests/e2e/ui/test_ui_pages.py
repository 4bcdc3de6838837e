"""The demo's pages run by Streamlit's AppTest against the real endpoint (four KServe servers on loopback).

Each test drives the page the way a visitor does (buttons, text inputs) and checks what it shows against the
endpoint's own answer and the feature store.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest
from tinyrun import TinyRun

import recsys.ui
from recsys.config import load_settings
from recsys.pipeline.groups import TRANSACTIONS
from recsys.pipeline.views import CUSTOMERS_VIEW
from recsys.serving.actions import PURCHASES
from recsys.serving.servers import ServingStack, free_port
from recsys.store import connect
from recsys.training.report import write_report
from recsys.training.runs import MODEL_NAMES, RANKER_MODEL, new_run_id

pytestmark = pytest.mark.slow
APP = Path(recsys.ui.__file__).with_name("app.py")


def open_app() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def card_ids(at: AppTest) -> list[int]:
    """The article ids of the cards on the page, in order (each card has a buy button keyed by the id)."""
    return [int(b.key.removeprefix("buy-")) for b in at.button if b.key and b.key.startswith("buy-")]


def show(at: AppTest, customer: str) -> AppTest:
    at.text_input(key="customer_id").set_value(customer).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def endpoint_ids(stack: ServingStack, customer: str, top_k: int = 12) -> list[int]:
    body = {"instances": [{"customer_id": customer, "top_k": top_k}]}
    return httpx.post(stack.url, json=body, timeout=30).json()["predictions"][0]["article_ids"]


def test_random_active_customer_shows_the_endpoint_answer(app_env: ServingStack, ui_run: TinyRun) -> None:
    at = open_app()
    assert not card_ids(at)  # nothing chosen yet: no cards
    at.button(key="random_customer").click().run()
    customer = at.text_input(key="customer_id").value
    assert customer in ui_run.customers.get_column("customer_id").to_list()
    assert card_ids(at) == endpoint_ids(app_env, customer)
    captions = " ".join(c.value for c in at.caption)
    assert ui_run.run_id in captions and "total" in captions and "query_tower" in captions
    # the recent purchases beside the grid are the customer's stored history, newest first
    history = ui_run.customers.filter(pl.col("customer_id") == customer).row(0, named=True)["last_article_ids"]
    names = ui_run.articles.filter(pl.col("article_id") == history[0]).get_column("prod_name")[0]
    assert "Recent purchases" in [s.value for s in at.subheader]
    assert any(names in m.value for m in at.markdown if "rs-line" in m.value and "rs-name" not in m.value)


def test_buy_writes_the_purchase_and_the_article_leaves_the_grid(app_env: ServingStack, ui_run: TinyRun) -> None:
    customer = ui_run.recent_buyers(1, skip=3)[0]
    at = show(open_app(), customer)
    before = card_ids(at)
    assert len(before) == 12
    bought = before[1]
    fs = connect(ui_run.settings).feature_store
    sold = TRANSACTIONS.get(fs).read().filter(pl.col("article_id") == bought, pl.col("price").is_not_null())
    paid = (sold["price"] * sold["quantity"]).sum() / sold["quantity"].sum()  # the price level, from the source
    at.button(key=f"buy-{bought}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(str(bought) in s.value for s in at.success)
    after = card_ids(at)
    assert bought not in after and len(after) == 12
    row = (
        connect(ui_run.settings)
        .feature_store.get_feature_view(*CUSTOMERS_VIEW)
        .get_feature_vector({"customer_id": customer})
    )
    assert row.get_column("last_article_ids")[0][0] == bought  # the online history has it first
    # the purchase is recorded at the article's price level, which the shop reads from the ranking view
    mine = PURCHASES.get(fs).read().filter(pl.col("customer_id") == customer)
    assert mine.select("article_id", "quantity").rows() == [(bought, 1)]
    assert TRANSACTIONS.get(fs).read().get_column("t_dat").max() == ui_run.last_day  # the source data's group
    assert mine["price"][0] == pytest.approx(paid)


def test_details_records_a_click(app_env: ServingStack, ui_run: TinyRun) -> None:
    customer = ui_run.recent_buyers(1, skip=7)[0]
    at = show(open_app(), customer)
    article = card_ids(at)[0]
    at.button(key=f"click-{article}").click().run()
    assert not at.exception
    clicks = connect(ui_run.settings).feature_store.get_feature_group("clicks", 1).read()
    assert (customer, article) in clicks.select("customer_id", "article_id").rows()
    description = ui_run.articles.filter(pl.col("article_id") == article).get_column("detail_desc")[0]
    assert description in [c.value for c in at.caption]  # the card opened


def test_unknown_customer_gets_the_cold_start_answer_with_a_note(app_env: ServingStack) -> None:
    at = show(open_app(), "typed-by-hand-nobody")
    assert any("not in the store" in w.value and "cold-start" in w.value for w in at.warning)
    assert card_ids(at) == endpoint_ids(app_env, "typed-by-hand-nobody")
    assert any("source: popularity" in c.value for c in at.caption)


def test_new_customer_with_age_and_index_groups(app_env: ServingStack, ui_run: TinyRun) -> None:
    at = open_app()
    at.radio(key="mode").set_value("New customer").run()
    plain = card_ids(at)
    assert len(plain) == 12 and any("source: popularity" in c.value for c in at.caption)
    groups = at.multiselect(key="new_index_groups")
    assert set(groups.options) == set(ui_run.articles.get_column("index_group_name").unique())
    at.number_input(key="new_age").set_value(24).run()
    groups.set_value([groups.options[0]]).run()
    assert not at.exception and not at.error
    assert len(card_ids(at)) == 12
    assert any("source: model" in c.value for c in at.caption)  # sent features: the query tower answers
    assert not any("not in the store" in w.value for w in at.warning)


def test_endpoint_down_shows_the_command_not_a_traceback(
    app_env: ServingStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECSYS_UI_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}/v1/models/recommender:predict")
    at = open_app()
    banner = " ".join(e.value for e in at.error)
    assert "not answering" in banner and "make serve" in banner and "python -m inference_pipeline serve" in banner
    assert not at.exception and not card_ids(at)


def test_empty_store_says_what_to_run(app_env: ServingStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RECSYS_HOME", str(tmp_path))
    at = open_app()
    assert any("make demo" in e.value for e in at.error)
    assert not at.exception


@pytest.fixture
def reported_home(tmp_path: Path) -> tuple[Path, str]:
    """A registry with one complete run whose ranker folder holds a report (hand-made numbers, real writer)."""
    registry = connect(load_settings(home=tmp_path)).model_registry
    run_id = new_run_id()
    retrieval = {
        "run_id": run_id,
        "rows": {"train": 100, "test": 10},
        "catalogue": 50,
        "metrics": [
            {"method": "two-tower", "recall@12": 0.25, "recall@100": 0.6},
            {"method": "popularity", "recall@12": 0.125, "recall@100": 0.5},
        ],
        "history": [
            {"epoch": 1, "loss": 4.0, "val_recall_at_100": 0.5},
            {"epoch": 2, "loss": 3.0, "val_recall_at_100": 0.6},
        ],
    }
    ranking = {
        "objective": "Logloss",
        "metrics": [{"method": "ranked", "map@12": 0.0625}, {"method": "popularity", "map@12": 0.03125}],
        "importance": [{"feature": "retrieval_score", "importance": 60.0}, {"feature": "age", "importance": 40.0}],
    }
    for name in MODEL_NAMES:
        folder = tmp_path / "artefacts" / name
        folder.mkdir(parents=True)
        (folder / "weights.bin").write_bytes(b"not a model")
        if name == RANKER_MODEL:
            write_report(folder / "report", retrieval, ranking)
        registry.create_model(name, run_id=run_id, metrics={"map@12": 0.0625}).save(folder)
    return tmp_path, run_id


def test_model_page_shows_the_report_tables_and_plots(
    app_env: ServingStack, monkeypatch: pytest.MonkeyPatch, reported_home: tuple[Path, str]
) -> None:
    home, run_id = reported_home
    monkeypatch.setenv("RECSYS_HOME", str(home))
    at = open_app()
    at.sidebar.radio(key="page").set_value("Model").run()
    assert not at.exception and not at.error
    assert any(run_id in c.value for c in at.caption)
    text = "\n".join(m.value for m in at.markdown)
    assert "| two-tower | 0.2500 | 0.6000 |" in text and "| popularity | 0.0312 |" in text  # model vs baseline
    captions = [caption for image in at.image for caption in image.captions]
    assert captions == ["training curves", "recall@K", "MAP@12", "importance"]  # every plot, in the report's order
    metrics = at.dataframe[0].value
    assert sorted(set(metrics["model"])) == sorted(MODEL_NAMES)
