"""The four serving objects chained in process on a real tiny model set: answers, cold start, timings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tinyrun import TinyRun

from recsys.serving.chain import InProcessChain
from recsys.serving.requests import BadRequest

STAGES = {
    "validate", "customer_features", "query_tower", "query_tower.model", "ranking", "ranking.retrieve",
    "ranking.filter", "ranking.features", "ranking.rank", "ranking.rank.model", "ranking.order", "total",
}  # fmt: skip


@pytest.fixture(scope="module")
def chain(tiny_run: TinyRun) -> Iterator[InProcessChain]:
    with InProcessChain(tiny_run.project, tiny_run.run_id) as chain:
        yield chain


def test_known_customers_get_top_k_fresh_distinct_products(chain: InProcessChain, tiny_run: TinyRun) -> None:
    when = tiny_run.request_time.isoformat()
    customers = tiny_run.recent_buyers(3)
    assert all(tiny_run.recently_bought(c) for c in customers)  # the filter has something to remove
    answer = chain.recommend(
        {
            "instances": [
                {"customer_id": c, "top_k": k, "request_time": when}
                for c, k in zip(customers, (12, 5, 30), strict=True)
            ]
        }
    )
    assert answer["run_id"] == tiny_run.run_id
    assert [p["customer_id"] for p in answer["predictions"]] == customers
    for prediction, k in zip(answer["predictions"], (12, 5, 30), strict=True):
        assert prediction["source"] == "model"
        tiny_run.check_answer(prediction, k)
    assert set(answer["timings_ms"]) >= STAGES


def test_without_the_filter_bought_articles_may_come_back(chain: InProcessChain, tiny_run: TinyRun) -> None:
    """The filter is what removes them: a customer's recent purchases rank high without it (repurchases)."""
    import dataclasses

    customer = tiny_run.recent_buyers(1)[0]
    body = {"instances": [{"customer_id": customer, "top_k": 50, "request_time": tiny_run.request_time.isoformat()}]}
    options = chain.ranking_transformer.options
    try:
        chain.ranking_transformer.options = dataclasses.replace(options, filter_bought=False)
        unfiltered = chain.recommend(body)["predictions"][0]["article_ids"]
    finally:
        chain.ranking_transformer.options = options
    assert set(unfiltered) & tiny_run.recently_bought(customer)


def test_cold_start(chain: InProcessChain, tiny_run: TinyRun) -> None:
    answer = chain.recommend(
        {
            "instances": [
                {"customer_id": "someone-new"},
                {"customer_id": "someone-else", "top_k": 4, "features": {"age": 24, "index_group_name": ["Divided"]}},
            ]
        }
    )
    nobody, described = answer["predictions"]
    assert nobody["source"] == "popularity" and len(nobody["article_ids"]) == 12
    tiny_run.check_answer(nobody, 12, bought=set())
    assert described["source"] == "model"  # the out-of-vocabulary id plus what the request told
    tiny_run.check_answer(described, 4, bought=set())


def test_bad_request_raises_and_the_chain_keeps_working(chain: InProcessChain, tiny_run: TinyRun) -> None:
    with pytest.raises(BadRequest, match="top_k"):
        chain.recommend({"instances": [{"customer_id": "x", "top_k": 0}]})
    assert len(chain.recommend({"instances": [{"customer_id": "x", "top_k": 2}]})["predictions"][0]["article_ids"]) == 2


def test_the_row_path_and_the_frame_path_give_the_same_answers(
    chain: InProcessChain, tiny_run: TinyRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ranker's inputs come from the customer rows and the catalogue's arrays; a catalogue without them (a
    dtype the row path does not read) takes the frame path, to the same answers."""
    import dataclasses

    from recsys.serving.request_columns import ServingFeatures

    when = tiny_run.request_time.isoformat()
    body = {
        "instances": [
            *({"customer_id": c, "top_k": 20, "request_time": when} for c in tiny_run.recent_buyers(3)),
            {"customer_id": "someone-new", "top_k": 20, "request_time": when, "features": {"age": 24}},
        ]
    }
    answered: list[bool] = []
    columns = ServingFeatures.columns

    def spy(self: ServingFeatures, *args: object) -> object:
        got = columns(self, *args)  # type: ignore[arg-type]
        answered.append(got is not None)
        return got

    monkeypatch.setattr(ServingFeatures, "columns", spy)
    rows = chain.recommend(body)["predictions"]
    assert answered == [True]
    refreshing = chain.ranking_transformer.catalogue
    snapshot = refreshing.get()
    monkeypatch.setattr(refreshing, "_value", dataclasses.replace(snapshot, features=None))
    frames = chain.recommend(body)["predictions"]
    assert answered == [True]  # not asked again
    assert [(p["article_ids"], p["scores"]) for p in rows] == [(p["article_ids"], p["scores"]) for p in frames]
    assert all(p["source"] == "model" and len(p["article_ids"]) == 20 for p in rows)
