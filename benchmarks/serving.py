"""Benchmark: recommendation latency, in process (the four models chained directly) and over HTTP (the four
KServe servers on loopback), with the median of every stage; throughput and memory under 8 concurrent clients.

By default over an H&M-sized catalogue (105,542 articles; built once by ``benchmarks/_catalogue.py`` with the
three pipelines, a few minutes), or over any store with a complete model set:

    python benchmarks/serving.py [--home DIR] [--run RUN_ID] [--requests 500] [--clients 8] [--load-seconds 60]

Latency: sequential requests, one customer each, cycling through customers who bought recently, at the day after
the newest purchase in the store (the servers get a warm-up first). Load: ``--clients`` concurrent clients for
``--load-seconds`` over HTTP: requests/s, latency under load, errors, and the servers' resident memory at the end
against after the first tenth of the run. Targets (issue F): over HTTP p50 <= 15 ms, p99 <= 40 ms and >= 100
requests/s; in process p50 <= 5 ms; the load test with 0 errors and <= 10% memory growth.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("POLARS_MAX_THREADS", "1")  # what the servers use: small requests, shared cores

import aiohttp
import numpy as np
import orjson
import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
from _catalogue import DEFAULT_HOME, ensure_catalogue_home
from _common import write_result

from recsys.config import load_settings
from recsys.errors import RecsysError
from recsys.pipeline.views import CUSTOMERS_VIEW, RANKING_VIEW
from recsys.serving.chain import InProcessChain
from recsys.serving.model_set import check_model_set
from recsys.serving.options import ServingOptions
from recsys.serving.servers import Ports, start_servers
from recsys.store import connect

TARGETS = {
    "http_p50_ms": 15.0,
    "http_p99_ms": 40.0,
    "in_process_p50_ms": 5.0,
    "load_memory_growth_pct": 10.0,
}
JSON = {"content-type": "application/json"}
TIMEOUT = aiohttp.ClientTimeout(total=30)
MIN_THROUGHPUT = 100.0  # requests/s under load; a lower bound, and "0 errors" an exact one: both reported beside


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


def over_http(home: Path, run: str | None, requests: list[dict], clients: int, load_s: float) -> dict[str, float]:
    settings = load_settings(home=home)
    stack = start_servers(settings, run, ports=Ports(0, 0, 0, 0), log_dir=Path(home) / "logs" / "bench-serving")
    try:
        walls, timings = asyncio.run(sequential(stack.url, requests))
        out = summary(walls, timings, "http")
        if load_s > 0:
            pids = [s.process.pid for s in stack.servers if s.process is not None]
            out |= asyncio.run(load_test(stack.url, requests, clients, load_s, pids))
    finally:
        stack.stop()
    # what the network hops cost: each hop's round trip minus the time spent inside the server it called
    out["http_hop_query_predictor_ms"] = out["http_stage_query_tower_ms"] - out["http_stage_query_tower.model_ms"]
    out["http_hop_ranking_predictor_ms"] = out["http_stage_ranking.rank_ms"] - out["http_stage_ranking.rank.model_ms"]
    out["http_hop_ranking_transformer_ms"] = out["http_stage_ranking_ms"] - out["http_stage_ranking.total_ms"]
    out["http_hop_client_ms"] = out["http_p50_ms"] - out["http_stage_total_ms"]
    return out


async def sequential(url: str, requests: list[dict]) -> tuple[list[float], list[dict[str, float]]]:
    """One request at a time (after 50 for warm-up): each one's wall time and the stage timings it reports."""
    walls, timings = [], []
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        for body in requests[:50]:
            async with http.post(url, data=orjson.dumps(body), headers=JSON) as response:
                response.raise_for_status()
                await response.read()
        for body in requests:
            start = time.perf_counter()
            async with http.post(url, data=orjson.dumps(body), headers=JSON) as response:
                answer = await response.read()
            walls.append((time.perf_counter() - start) * 1000)
            response.raise_for_status()
            timings.append(orjson.loads(answer)["timings_ms"])
    return walls, timings


async def load_test(url: str, requests: list[dict], clients: int, seconds: float, pids: list[int]) -> dict[str, float]:
    """``clients`` concurrent clients, each sending its next request as soon as the last one is answered.

    The clients share the 2 cores with the servers, so they are as cheap as Python allows: bodies encoded once,
    aiohttp (httpx's async client cost ~3x the CPU per request, which the servers then lacked).
    """
    encoded = [orjson.dumps(body) for body in requests]
    walls: list[float] = []
    errors = 0
    started = time.perf_counter()
    deadline = started + seconds
    baseline: list[int] = []

    async def client(first: int, http: aiohttp.ClientSession) -> None:
        nonlocal errors
        i = first
        while time.perf_counter() < deadline:
            body = encoded[i % len(encoded)]
            i += clients
            sent = time.perf_counter()
            try:
                async with http.post(url, data=body, headers=JSON) as response:
                    await response.read()
                    ok = response.status == 200
            except (TimeoutError, aiohttp.ClientError):
                ok = False
            walls.append((time.perf_counter() - sent) * 1000)
            errors += not ok
            if not baseline and sent - started > seconds / 10:  # memory once the servers are warm
                baseline.extend(rss_kib(pid) for pid in pids)

    async with aiohttp.ClientSession(timeout=TIMEOUT, connector=aiohttp.TCPConnector(limit=clients)) as http:
        await asyncio.gather(*(client(c, http) for c in range(clients)))
    elapsed = time.perf_counter() - started
    final = [rss_kib(pid) for pid in pids]
    growth = 100.0 * (sum(final) - sum(baseline)) / max(1, sum(baseline))
    return {
        "load_clients": float(clients),
        "load_requests": float(len(walls)),
        "load_requests_per_s": len(walls) / elapsed,
        "load_p50_ms": float(np.percentile(walls, 50)),
        "load_p99_ms": float(np.percentile(walls, 99)),
        "load_errors": float(errors),
        "load_memory_mib": sum(final) / 1024,
        "load_memory_growth_pct": growth,
    }


def rss_kib(pid: int) -> int:
    """Resident memory of a process (Linux ``/proc``), 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None, help=f"store with a model set (default {DEFAULT_HOME})")
    parser.add_argument("--run", default=None, help="training run id (default: the newest complete run)")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--top-k", type=int, default=12)
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients of the load test")
    parser.add_argument("--load-seconds", type=float, default=60.0, help="length of the load test (0: none)")
    args = parser.parse_args()
    home = args.home or ensure_catalogue_home()
    try:
        check_model_set(connect(load_settings(home=home)), args.run)
    except RecsysError as exc:
        raise SystemExit(
            f"serving benchmark: no model set to serve in {home} ({exc}). Make one first: features "
            "(`make demo`), training (`python -m training_pipeline ...`), `python -m inference_pipeline embed`."
        ) from None
    requests = bodies(home, args.requests, args.top_k)
    medians = in_process(home, args.run, requests)
    medians |= over_http(home, args.run, requests, args.clients, args.load_seconds)
    articles = connect(load_settings(home=home)).feature_store.get_feature_view(*RANKING_VIEW)
    load = os.getloadavg()[0]
    parameters = {
        "requests": args.requests,
        "top_k": args.top_k,
        "clients": args.clients,
        "load_seconds": args.load_seconds,
        "home": str(home),
        "articles": articles.training_data()[0].height,
        "load_average_1m": load,
    }
    if "load_requests_per_s" in medians:
        medians["load_throughput_ratio_to_minimum"] = medians["load_requests_per_s"] / MIN_THROUGHPUT
    write_result("serving", parameters, medians, TARGETS)


if __name__ == "__main__":
    main()
