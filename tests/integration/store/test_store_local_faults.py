"""Fault tolerance of the embedded backend, with real processes: SIGKILL mid-insert, concurrent readers and
concurrent model saves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from recsys.store.local import LocalFeatureStore, LocalModelRegistry

ROOT = Path(__file__).resolve().parents[3]


def tx_frame(n: int, offset: int) -> pl.DataFrame:
    """Transactions with unique keys ``offset .. offset+n``; overlapping offsets update prices."""
    i = pl.int_range(offset, offset + n, eager=True)
    return pl.DataFrame(
        {
            "customer_id": (i % 997).cast(pl.String).str.pad_start(64, "0"),
            "article_id": i,
            "t_dat": (i * 60_000_000).cast(pl.Datetime("us")),
            "price": (i % 100).cast(pl.Float64) + offset / 1e7,
        }
    )


CHILD_INSERT = """
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
from recsys.store.local import LocalFeatureStore
from tests.integration.store.test_store_local_faults import tx_frame
group = LocalFeatureStore(Path({home!r})).get_feature_group("transactions", 1)
frame = tx_frame({n}, {offset})
Path({marker!r}).write_text("go")
group.insert(frame)
Path({marker!r}).write_text("done")
"""


def _run_child(code: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_sigkill_mid_insert_leaves_previous_version_and_rerun_is_idempotent(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = LocalFeatureStore(home)
    group = store.get_or_create_feature_group(
        "transactions", 1, ["customer_id", "article_id", "t_dat"], event_time="t_dat"
    )
    before = tx_frame(100_000, 0)
    group.insert(before)
    version_before = group.offline.version()
    marker = tmp_path / "marker"
    n, offset = 2_500_000, 50_000
    child = _run_child(
        CHILD_INSERT.format(root=str(ROOT), home=str(home), n=n, offset=offset, marker=str(marker)), ROOT
    )
    deadline = time.time() + 60
    while not (marker.exists() and marker.read_text() == "go") and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.4)  # inside the Delta merge, which takes seconds for 2.5M rows
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert marker.read_text() == "go", "the insert finished before the kill; make the batch larger"

    reopened = LocalFeatureStore(home).get_feature_group("transactions", 1)
    assert reopened.offline.version() == version_before
    key = ["customer_id", "article_id", "t_dat"]
    assert reopened.read().sort(key).equals(before.sort(key))

    batch = tx_frame(n, offset)
    expected = pl.concat([before.filter(pl.col("article_id") < offset), batch]).sort(key)
    reopened.insert(batch)
    assert reopened.read().sort(key).equals(expected)
    reopened.insert(batch)  # idempotent: a second run changes nothing
    assert reopened.read().sort(key).equals(expected)


CHILD_READER = """
import sys, time, json
from pathlib import Path
sys.path.insert(0, {root!r})
from recsys.store.local import LocalFeatureStore
view = LocalFeatureStore(Path({home!r})).get_feature_view("customers", 1)
ok = errors = 0
seen = set()
end = time.time() + {seconds}
keys = [{{"customer_id": f"c{{i}}"}} for i in range(100)]
while time.time() < end:
    try:
        got = view.get_feature_vectors(keys)
        assert len(got) == 100
        seen.update(got["age"].unique().to_list())
        ok += 1
    except Exception as exc:
        errors += 1
        last = repr(exc)
Path({out!r}).write_text(json.dumps({{"ok": ok, "errors": errors, "seen": sorted(seen)}}))
"""


def test_readers_in_other_processes_keep_working_while_a_writer_commits(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = LocalFeatureStore(home)
    group = store.get_or_create_feature_group("customers", 1, ["customer_id"], online_enabled=True)
    ids = [f"c{i}" for i in range(20_000)]
    group.insert(pl.DataFrame({"customer_id": ids, "age": [0] * len(ids)}))
    store.get_or_create_feature_view("customers", 1, group.select(["customer_id", "age"]))
    outs = [tmp_path / f"reader{i}.json" for i in range(2)]
    readers = [
        _run_child(CHILD_READER.format(root=str(ROOT), home=str(home), seconds=4, out=str(out)), ROOT) for out in outs
    ]
    time.sleep(1.0)  # let the readers start
    for age in range(1, 6):
        group.insert(pl.DataFrame({"customer_id": ids, "age": [age] * len(ids)}))
    for reader in readers:
        assert reader.wait(timeout=60) == 0
    for out in outs:
        result = json.loads(out.read_text())
        assert result["errors"] == 0
        assert result["ok"] > 10
        assert len(result["seen"]) >= 2  # the readers saw commits land while they were reading


CHILD_SAVE = """
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
from recsys.store.local import LocalModelRegistry
registry = LocalModelRegistry(Path({models!r}))
for i in range({count}):
    registry.create_model("two_tower", metrics={{"recall": {worker} * 10 + i}}).save(Path({art!r}))
"""


def test_concurrent_model_saves_never_share_a_version(tmp_path: Path) -> None:
    models = tmp_path / "models"
    artefact = tmp_path / "weights.bin"
    artefact.write_bytes(b"w" * 100_000)
    workers, count = 4, 5
    procs = [
        _run_child(
            CHILD_SAVE.format(root=str(ROOT), models=str(models), count=count, worker=w, art=str(artefact)),
            ROOT,
        )
        for w in range(workers)
    ]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    saved = LocalModelRegistry(models).get_models("two_tower")
    assert [m.version for m in saved] == list(range(1, workers * count + 1))
    recalls = sorted(m.metrics["recall"] for m in saved)
    assert recalls == sorted(float(w * 10 + i) for w in range(workers) for i in range(count))
    assert not [p for p in (models / "two_tower").iterdir() if p.name.startswith(".staging")]
