"""Benchmark: find_neighbors top-100 over the candidate embeddings (FAISS exact inner product).

python benchmarks/store_vectors.py                 # 105k vectors, dim 64 (targets: single p50 <= 5 ms,
                                                   #   1,000 queries batched <= 1 s)
python benchmarks/store_vectors.py --items 10000
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result
from _store_common import median, percentile

from recsys.store import EmbeddingIndex
from recsys.store.local import LocalFeatureStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=105_542)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--queries", type=int, default=500, help="timed single-vector calls")
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=5, help="timed batched calls")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(args.items, args.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    home = Path(tempfile.mkdtemp(prefix="recsys-bench-"))
    try:
        group = LocalFeatureStore(home).get_or_create_feature_group(
            "candidate_embeddings", 1, ["article_id"], embedding_index=EmbeddingIndex("embedding", args.dim)
        )
        start = time.perf_counter()
        group.insert(pl.DataFrame({"article_id": np.arange(args.items, dtype=np.int64), "embedding": vectors}))
        build = time.perf_counter() - start
        queries = rng.normal(size=(args.queries + 20, args.dim)).astype(np.float32)
        singles = []
        for i, query in enumerate(queries):
            start = time.perf_counter()
            got = group.find_neighbors(query, k=args.k)
            if i >= 20:
                singles.append((time.perf_counter() - start) * 1000)
        assert len(got) == args.k
        excluded = []
        for query in queries[20:220]:
            start = time.perf_counter()
            group.find_neighbors(query, k=args.k, exclude=rng.integers(0, args.items, 50).tolist())
            excluded.append((time.perf_counter() - start) * 1000)
        batched = []
        for _ in range(args.repeats):
            batch = rng.normal(size=(args.batch, args.dim)).astype(np.float32)
            start = time.perf_counter()
            got = group.find_neighbors(batch, k=args.k)
            batched.append(time.perf_counter() - start)
            assert len(got) == args.batch * args.k
    finally:
        shutil.rmtree(home, ignore_errors=True)
    write_result(
        "store_vectors",
        {
            "items": args.items,
            "dim": args.dim,
            "k": args.k,
            "queries": args.queries,
            "batch": args.batch,
            "index": "flat inner product",
        },
        {
            "single_p50_ms": percentile(singles, 50),
            "single_p99_ms": percentile(singles, 99),
            "single_exclude50_p50_ms": percentile(excluded, 50),
            "batch_s": median(batched),
            "insert_and_build_s": build,
        },
        {"single_p50_ms": 5.0, "batch_s": 1.0},
    )


if __name__ == "__main__":
    main()
