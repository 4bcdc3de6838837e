"""Shared by the benchmark scripts: where results go and what every result records."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> dict[str, object]:
    mem_kib = 0
    try:
        with open("/proc/meminfo") as fh:
            mem_kib = int(fh.readline().split()[1])
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def small_store(home: Path) -> tuple[Any, Any]:
    """The ``small`` preset's dataset and a project over ``home``, backfilled on first use (its retrieval view)."""
    from recsys.config import load_settings
    from recsys.data.sources import load_dataset
    from recsys.pipeline.feature_job import backfill
    from recsys.pipeline.views import RETRIEVAL_VIEW
    from recsys.store import connect
    from recsys.store.errors import NotFoundError

    settings = load_settings(home=home)
    dataset = load_dataset("synthetic:small", settings)
    project = connect(settings)
    try:
        project.feature_store.get_feature_view(*RETRIEVAL_VIEW)
    except NotFoundError:
        print(f"backfilling synthetic:small into {home} (once)...", flush=True)
        backfill(project, dataset)
    return dataset, project


def write_result(
    name: str,
    parameters: dict,
    medians: dict[str, float],
    targets: dict[str, float] | None = None,
    details: dict | None = None,
) -> Path:
    """Write ``benchmarks/results/<name>.json`` (medians, targets, ratios) and print one line per measure.

    A target is an upper bound: ``ratio_to_target`` <= 1 means it was met.
    """
    targets = targets or {}
    RESULTS.mkdir(parents=True, exist_ok=True)
    ratios = {key: round(medians[key] / limit, 3) for key, limit in targets.items() if key in medians}
    payload = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_sha": git_sha(),
        "machine": machine(),
        "parameters": parameters,
        "medians": medians,
        "targets": targets,
        "ratio_to_target": ratios,
        "met": {key: ratio <= 1 for key, ratio in ratios.items()},
        "details": details or {},
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    for key, value in medians.items():
        limit = targets.get(key)
        verdict = f"   target <= {limit}  ({'ok' if value <= limit else 'MISSED'})" if limit else ""
        print(f"{key:32s} {value:12.4f}{verdict}")
    print(f"wrote {path}")
    return path
