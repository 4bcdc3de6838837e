"""Benchmark: the feature pipeline's backfill and one-day incremental run, wall time and peak memory.

For each preset the data set is generated once (kept under ``--data`` between invocations), then in a fresh store:
``backfill --until <last day - 1>`` (all history but the last day), then ``incremental`` (the last day). Each run
is its own subprocess, measured by a wrapper process, so peak RSS is that run's alone.
Targets (issue C): ``hm`` backfill <= 5 minutes and <= 8 GiB; ``hm`` incremental one day <= 60 s;
``small`` backfill <= 30 s.

    python benchmarks/feature_pipeline.py [--presets small,hm] [--repeats 3] [--data /tmp/recsys-bench-data]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_result

# Runs a command and prints its peak RSS (KiB): ru_maxrss of the children of this short-lived wrapper.
MEASURE = (
    "import resource, subprocess, sys, time; t = time.perf_counter(); "
    "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
    "print(p.returncode, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)
TARGETS = {"hm": {"backfill_s": 300.0, "backfill_peak_gib": 8.0, "incremental_s": 60.0}, "small": {"backfill_s": 30.0}}


def measured(*args: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of ``python -m feature_pipeline ARGS``."""
    command = [sys.executable, "-c", MEASURE, sys.executable, "-m", "feature_pipeline", *args]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
    code, wall, peak_kib = int(out[0]), float(out[1]), int(out[2])
    if code != 0:
        raise SystemExit(f"feature_pipeline {' '.join(args)} failed with exit code {code}")
    return wall, peak_kib / 2**20


def dataset(preset: str, data: Path) -> Path:
    folder = data / f"synthetic-{preset}-seed42"
    if not (folder / "manifest.json").exists():
        print(f"generating {preset} into {folder} (once)...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "feature_pipeline", "generate", "--preset", preset, "--out", str(folder)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return folder / "dataset.yaml"


def run_once(spec: Path, until: str) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix="recsys-bench-"))
    try:
        backfill_s, backfill_gib = measured("backfill", "--dataset", str(spec), "--until", until, "--home", str(home))
        incremental_s, incremental_gib = measured("incremental", "--dataset", str(spec), "--home", str(home))
        store_gib = sum(f.stat().st_size for f in home.rglob("*") if f.is_file()) / 2**30
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return {
        "backfill_s": backfill_s,
        "backfill_peak_gib": backfill_gib,
        "incremental_s": incremental_s,
        "incremental_peak_gib": incremental_gib,
        "store_gib": store_gib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="small,hm")
    parser.add_argument("--repeats", type=int, default=3, help="runs per preset (hm runs once)")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "recsys-bench-data")
    args = parser.parse_args()
    medians: dict[str, float] = {}
    targets: dict[str, float] = {}
    details: dict[str, object] = {}
    for preset in args.presets.split(","):
        spec = dataset(preset, args.data)
        last = pl.scan_parquet(spec.parent / "transactions_train.parquet").select(pl.col("t_dat").max()).collect()
        until = (last.item() - timedelta(days=1)).strftime("%Y-%m-%d")
        runs = []
        for i in range(1 if preset == "hm" else args.repeats):
            runs.append(run_once(spec, until))
            print(f"{preset} run {i + 1}: {json.dumps({k: round(v, 2) for k, v in runs[-1].items()})}", flush=True)
        details[preset] = {"runs": runs, "backfill_until": until}
        for key in runs[0]:
            medians[f"{preset}_{key}"] = statistics.median(r[key] for r in runs)
        targets.update({f"{preset}_{key}": limit for key, limit in TARGETS.get(preset, {}).items()})
    write_result("feature_pipeline", {"presets": args.presets, "repeats": args.repeats}, medians, targets, details)


if __name__ == "__main__":
    main()
