"""Benchmark: reading the training data, the retrieval view's point-in-time join and its split (``small`` preset).

Every training run starts here (``training_pipeline retrieval`` and ``ranking`` each call ``load_retrieval_data``):
the ``retrieval`` view joins each purchase with its customer's and article's features and with the customer's
history snapshot as of the purchase, then the rows are cut into train / validation / test weeks.

* ``view_read_s``: one ``training_data()`` read of the view (1.5M purchases x 47 columns);
* ``load_retrieval_data_s``: the whole load as training makes it: the view, its time split, articles, customers.

Medians of ``--repeats`` runs, in one process, on the store in ``--home`` (backfilled with ``synthetic:small`` on
first use, the same home as ``training_retrieval.py``), with the process' peak RSS.

    python benchmarks/training_data.py [--home DIR] [--repeats 5]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import small_store, write_result

from recsys.pipeline.views import RETRIEVAL_VIEW
from recsys.training.retrieval_job import load_retrieval_data


def _seconds(run: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "recsys-bench-small-home")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    _, project = small_store(args.home)
    view = project.feature_store.get_feature_view(*RETRIEVAL_VIEW)
    rows, _ = view.training_data()
    print(f"retrieval view: {rows.height:,} rows x {rows.width} columns", flush=True)
    del rows
    reads = _seconds(view.training_data, args.repeats)
    loads = _seconds(lambda: load_retrieval_data(project), args.repeats)
    medians = {
        "view_read_s": statistics.median(reads),
        "load_retrieval_data_s": statistics.median(loads),
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }
    details = {"view_read_s": reads, "load_retrieval_data_s": loads}
    write_result("training_data", {"preset": "small", "repeats": args.repeats}, medians, details=details)


if __name__ == "__main__":
    main()
