"""Benchmark: insert H&M-scale transactions into the offline store (Delta Lake), validation included.

python benchmarks/store_offline.py                 # 31.8M rows (target <= 90 s)
python benchmarks/store_offline.py --rows 1000000  # smaller scale
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result
from _store_common import median, transactions

from recsys.store.local import LocalFeatureStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=31_788_324)
    parser.add_argument("--customers", type=int, default=1_371_980)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--incremental-rows", type=int, default=300_000, help="a later week merged into the table")
    args = parser.parse_args()

    t0 = time.perf_counter()
    frame = transactions(args.rows, args.customers)
    week = transactions(args.incremental_rows, args.customers, seed=1)
    print(f"generated {len(frame):,} rows in {time.perf_counter() - t0:.1f}s ({frame.estimated_size('gb'):.2f} GB)")

    inserts, merges = [], []
    for _ in range(args.repeats):
        home = Path(tempfile.mkdtemp(prefix="recsys-bench-"))
        try:
            group = LocalFeatureStore(home).get_or_create_feature_group(
                "transactions", 1, ["customer_id", "article_id", "t_dat"], event_time="t_dat"
            )
            start = time.perf_counter()
            group.insert(frame)
            inserts.append(time.perf_counter() - start)
            start = time.perf_counter()
            group.insert(week)
            merges.append(time.perf_counter() - start)
            rows = group.count()
            print(f"insert {inserts[-1]:.1f}s, merge of {len(week):,} rows {merges[-1]:.1f}s, table rows {rows:,}")
        finally:
            shutil.rmtree(home, ignore_errors=True)
    write_result(
        "store_offline",
        {"rows": len(frame), "customers": args.customers, "repeats": args.repeats, "incremental_rows": len(week)},
        {"insert_s": median(inserts), "incremental_merge_s": median(merges)},
        {"insert_s": 90.0},
    )


if __name__ == "__main__":
    main()
