"""The H&M Personalized Fashion Recommendations data (Kaggle), read from the folder a user downloaded.

The three CSVs are described by the shipped ``specs/hm.yaml``, so this module adds only what is specific to the
real files: ids written with or without leading zeros (``0108775015`` and ``108775015`` are one article), a
Parquet cache (parsing the 3.5 GB transactions CSV takes minutes; reading Parquet takes seconds), and a seeded
sample by customers so that a laptop can work on a slice with whole purchase histories.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import polars as pl

from recsys.data.dataset import CUSTOMER_ID, Dataset
from recsys.data.spec import SPECS_DIR, TABLES, DatasetSpec, load_spec, read_table
from recsys.errors import DataError, RecsysError

HM_SPEC = SPECS_DIR / "hm.yaml"
CACHE_MANIFEST = "hm-cache.json"
_CACHE_VERSION = 1  # bump when the parsed form changes, so that old caches are rebuilt


def load_hm(
    folder: str | Path,
    customers: int | None = None,
    seed: int = 42,
    cache_dir: str | Path | None = None,
) -> Dataset:
    """Load the H&M tables from ``folder`` (articles.csv, customers.csv, transactions_train.csv).

    ``customers=N`` keeps N customers who made purchases, chosen with ``seed``, and only their transactions;
    articles are kept whole (the catalogue the model recommends from). With ``cache_dir`` the parsed tables are
    kept as Parquet there and reused while each CSV's size and modification time are unchanged; without it
    nothing is written (we never write next to a user's data unasked).
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(
            f"{folder}: H&M folder not found (expected articles.csv, customers.csv and transactions_train.csv "
            "from the Kaggle competition)"
        )
    spec = load_spec(HM_SPEC, base_dir=folder)
    for name in TABLES:
        path = spec.table_path(name)
        if not path.is_file():
            raise DataError(f"{path}: file not found (an H&M folder holds {_file_names(spec)})")

    tables = _load_tables(spec, Path(cache_dir).expanduser() if cache_dir is not None else None)
    ds = Dataset(
        name="hm",
        customers=tables["customers"],
        articles=tables["articles"],
        transactions=tables["transactions"],
        features=spec.feature_specs(),
    )
    return sample_customers(ds, customers, seed) if customers is not None else ds


def sample_customers(ds: Dataset, n: int, seed: int = 42) -> Dataset:
    """Keep ``n`` customers who transact, chosen with ``seed``, with all their transactions.

    Sampling whole customers (not rows) keeps each purchase history complete, which the history features and the
    time split need. The choice depends only on the set of ids and the seed, not on row order or polars' hashing.
    """
    if n <= 0:
        raise RecsysError(f"customers to sample must be a positive number, got {n}")
    buyers = ds.transactions.get_column(CUSTOMER_ID).unique().sort()
    if n < buyers.len():
        rows = np.sort(np.random.default_rng(seed).choice(buyers.len(), size=n, replace=False))
        buyers = buyers.gather(rows)
    keep = pl.col(CUSTOMER_ID).is_in(buyers.implode())
    return Dataset(
        name=ds.name,
        customers=ds.customers.filter(keep),
        articles=ds.articles,
        transactions=ds.transactions.filter(keep),
        features=ds.features,
    )


def _load_tables(spec: DatasetSpec, cache_dir: Path | None) -> dict[str, pl.DataFrame]:
    if cache_dir is None:
        return {name: _parse(spec, name) for name in TABLES}
    manifest_path = cache_dir / CACHE_MANIFEST
    manifest = _read_manifest(manifest_path)
    stamp = _spec_stamp()
    if manifest.get("version") != _CACHE_VERSION or manifest.get("spec") != stamp:
        manifest = {"version": _CACHE_VERSION, "spec": stamp, "tables": {}}
    tables: dict[str, pl.DataFrame] = {}
    changed = False
    for name in TABLES:
        source = _source_stamp(spec.table_path(name))
        cached = cache_dir / f"{name}.parquet"
        if manifest["tables"].get(name) == source and cached.is_file():
            try:
                tables[name] = pl.read_parquet(cached)
                continue
            except (pl.exceptions.PolarsError, OSError):
                pass  # a damaged cache file is rebuilt below
        tables[name] = _parse(spec, name)
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".parquet.tmp{os.getpid()}")
        tables[name].write_parquet(tmp)
        os.replace(tmp, cached)  # atomic: a reader never sees half a file
        manifest["tables"][name] = source
        changed = True
    if changed:
        tmp = manifest_path.with_suffix(f".json.tmp{os.getpid()}")
        tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        os.replace(tmp, manifest_path)
    return tables


def _parse(spec: DatasetSpec, name: str) -> pl.DataFrame:
    df = read_table(spec, name)
    if name == "articles" and "product_code" in df.columns:
        # Like article_id, product_code comes with or without its leading zero; one spelling for both.
        code = pl.col("product_code").str.strip_chars()
        df = df.with_columns(
            pl.when(code.str.contains(r"^\d+$"))
            .then(code.cast(pl.Int64, strict=False).cast(pl.String))
            .otherwise(code)
            .alias("product_code")
        )
    return df


def _source_stamp(path: Path) -> dict[str, object]:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _spec_stamp() -> str:
    """The shipped spec's hash: editing hm.yaml changes the parsed tables, so it invalidates the cache."""
    return hashlib.sha256(HM_SPEC.read_bytes()).hexdigest()[:16]


def _read_manifest(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and isinstance(data.get("tables"), dict) else {}


def _file_names(spec: DatasetSpec) -> str:
    names = [spec.table_path(name).name for name in TABLES]
    return ", ".join(names[:-1]) + " and " + names[-1]
