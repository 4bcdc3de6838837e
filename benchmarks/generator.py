"""Benchmark: synthetic generator wall time and peak memory per preset.

Each run is a fresh subprocess (``python -m feature_pipeline generate``) so that peak RSS is that run's alone.
Targets (issue A): ``small`` <= 20 s; ``hm`` <= 3 minutes with peak RSS <= 8 GiB on 2 cores.

    python benchmarks/generator.py [--presets tiny,small,hm] [--repeats 3]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_result

CODE = (
    "import sys, time; from pathlib import Path; from recsys.data.synthetic import generate; "
    "t = time.perf_counter(); d = generate(sys.argv[1], 42); g = time.perf_counter() - t; "
    "d.write(Path(sys.argv[2])); print(g, time.perf_counter() - t, d.transactions.height)"
)


def run_once(preset: str, out: Path) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CODE, preset, str(out)], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    generate_s, with_write_s, rows = proc.stdout.split()
    return {
        "wall_s": wall,
        "generate_s": float(generate_s),
        "generate_and_write_s": float(with_write_s),
        "transactions": int(rows),
        # ru_maxrss of children is the max over all children so far; runs go small to large, so it is this one's.
        "peak_rss_gib": max(peak_kib, before) / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="tiny,small,hm")
    parser.add_argument("--repeats", type=int, default=3, help="runs per preset (hm runs once)")
    args = parser.parse_args()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets.split(","):
            repeats = 1 if preset == "hm" else args.repeats
            runs = [run_once(preset, Path(tmp) / f"{preset}-{i}") for i in range(repeats)]
            results[preset] = {
                "runs": runs,
                "median_wall_s": statistics.median(r["wall_s"] for r in runs),
                "median_generate_and_write_s": statistics.median(r["generate_and_write_s"] for r in runs),
                "peak_rss_gib": max(r["peak_rss_gib"] for r in runs),
                "transactions": runs[0]["transactions"],
            }
            print(
                f"{preset:>6}: median {results[preset]['median_wall_s']:.1f} s wall "
                f"({results[preset]['median_generate_and_write_s']:.1f} s generate+write), "
                f"peak RSS {results[preset]['peak_rss_gib']:.2f} GiB, {runs[0]['transactions']:,} transactions",
                flush=True,
            )
    targets = {"small_wall_s": 20, "hm_wall_s": 180, "hm_peak_rss_gib": 8}
    medians = {f"{preset}_wall_s": r["median_wall_s"] for preset, r in results.items()}
    medians |= {f"{preset}_peak_rss_gib": r["peak_rss_gib"] for preset, r in results.items()}
    write_result("generator", {"presets": args.presets, "repeats": args.repeats, "seed": 42}, medians, targets, results)


if __name__ == "__main__":
    main()
