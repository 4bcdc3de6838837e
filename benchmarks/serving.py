"""Benchmark: recommendation latency, in process (the four models chained directly) and over HTTP (the four
KServe servers on loopback), with the median of every stage.

Needs a store with a complete model set (features, both towers, embeddings, ranker), e.g. after ``make demo``:

    python benchmarks/serving.py [--home .recsys] [--run RUN_ID] [--requests 500] [--top-k 12]

Requests are sequential, one customer each, cycling through customers who bought recently, at the day after the
newest purchase in the store. The servers get a warm-up before timing starts. Targets (issue F): over HTTP
p50 <= 15 ms and p99 <= 40 ms; in process p50 <= 5 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("POLARS_MAX_THREADS", "1")  # what the servers use: small requests, shared cores

import httpx
import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_result

from recsys.config import load_settings
from recsys.errors import RecsysError
from recsys.pipeline.views import CUSTOMERS_VIEW
from recsys.serving.chain import InProcessChain
from recsys.serving.model_set import check_model_set
from recsys.serving.options import ServingOptions
from recsys.serving.servers import Ports, start_servers
from recsys.store import connect

TARGETS = {"http_p50_ms": 15.0, "http_p99_ms": 40.0, "in_process_p50_ms": 5.0}


def bodies(home: Path, n: int, top_k: int) -> list[dict]:
    """Single-customer requests over the customers who bought most recently."""
    customers, _ = connect(load_settings(home=home)).feature_store.get_feature_view(*CUSTOMERS_VIEW).training_data()
    last = customers.get_column("last_purchase").max()
    ids = (
        customers.filter(pl.col("last_purchase").is_not_null())
        .sort("last_purchase", descending=True)
        .get_column("customer_id")
        .head(200)
        .to_list()
    )
    when = (last + timedelta(days=1, hours=10)).isoformat()
    return [{"instances": [{"customer_id": ids[i % len(ids)], "top_k": top_k, "request_time": when}]} for i in range(n)]


def summary(walls: list[float], timings: list[dict[str, float]], prefix: str) -> dict[str, float]:
    out = {
        f"{prefix}_p50_ms": float(np.percentile(walls, 50)),
        f"{prefix}_p99_ms": float(np.percentile(walls, 99)),
    }
    for stage in timings[0]:
        out[f"{prefix}_stage_{stage}_ms"] = statistics.median(t[stage] for t in timings)
    return out


def in_process(home: Path, run: str | None, requests: list[dict]) -> dict[str, float]:
    with InProcessChain(connect(load_settings(home=home)), run, ServingOptions()) as chain:
        for body in requests[:20]:
            chain.recommend(body)
        walls, timings = [], []
        for body in requests:
            start = time.perf_counter()
            answer = chain.recommend(body)
            walls.append((time.perf_counter() - start) * 1000)
            timings.append(answer["timings_ms"])
    return summary(walls, timings, "in_process")


def over_http(home: Path, run: str | None, requests: list[dict]) -> dict[str, float]:
    settings = load_settings(home=home)
    stack = start_servers(settings, run, ports=Ports(0, 0, 0, 0), log_dir=Path(home) / "logs" / "bench-serving")
    try:
        with httpx.Client(timeout=30) as client:
            for body in requests[:50]:
                client.post(stack.url, json=body).raise_for_status()
            walls, timings = [], []
            for body in requests:
                start = time.perf_counter()
                response = client.post(stack.url, json=body)
                walls.append((time.perf_counter() - start) * 1000)
                response.raise_for_status()
                timings.append(response.json()["timings_ms"])
    finally:
        stack.stop()
    out = summary(walls, timings, "http")
    # what the network hops cost: each hop's round trip minus the time spent inside the server it called
    out["http_hop_query_predictor_ms"] = out["http_stage_query_tower_ms"] - out["http_stage_query_tower.model_ms"]
    out["http_hop_ranking_predictor_ms"] = out["http_stage_ranking.rank_ms"] - out["http_stage_ranking.rank.model_ms"]
    out["http_hop_ranking_transformer_ms"] = out["http_stage_ranking_ms"] - out["http_stage_ranking.total_ms"]
    out["http_hop_client_ms"] = out["http_p50_ms"] - out["http_stage_total_ms"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None, help="RECSYS_HOME holding the model set")
    parser.add_argument("--run", default=None, help="training run id (default: the newest complete run)")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--top-k", type=int, default=12)
    args = parser.parse_args()
    home = args.home or load_settings().home
    try:
        check_model_set(connect(load_settings(home=home)), args.run)
    except RecsysError as exc:
        raise SystemExit(
            f"serving benchmark: no model set to serve in {home} ({exc}). Make one first: features "
            "(`make demo`), training (`python -m training_pipeline ...`), `python -m inference_pipeline embed`."
        ) from None
    requests = bodies(home, args.requests, args.top_k)
    medians = in_process(home, args.run, requests) | over_http(home, args.run, requests)
    load = os.getloadavg()[0]
    parameters = {"requests": args.requests, "top_k": args.top_k, "home": str(home), "load_average_1m": load}
    write_result("serving", parameters, medians, TARGETS)


if __name__ == "__main__":
    main()
