"""Turning a dataset reference (``synthetic:small``, ``hm:FOLDER``, ``path/spec.yaml``) into a :class:`Dataset`."""

from __future__ import annotations

from pathlib import Path

from recsys.config import Settings
from recsys.data.dataset import Dataset
from recsys.errors import DataError

FORMS = "synthetic:PRESET (tiny|small|hm), hm:FOLDER with the Kaggle CSVs, or a dataset spec .yaml (or its folder)"


def synthetic_dir(settings: Settings, preset: str) -> Path:
    """Where ``synthetic:PRESET`` is generated under RECSYS_HOME (one folder per preset and seed)."""
    return settings.data_dir / f"synthetic-{preset}-seed{settings.seed}"


def ensure_synthetic(settings: Settings, preset: str) -> Path:
    """Generate the preset into RECSYS_HOME unless it is already there; return its folder."""
    from recsys.data.synthetic import generate

    folder = synthetic_dir(settings, preset)
    if not (folder / "manifest.json").exists():
        generate(preset, settings.seed).write(folder)
    return folder


def load_dataset(ref: str, settings: Settings, customers: int | None = None) -> Dataset:
    """Load the data set a reference names; ``customers`` samples that many customers (H&M only)."""
    from recsys.data.spec import load_spec, read_dataset

    kind, _, rest = ref.partition(":")
    if kind == "synthetic" and rest:
        from recsys.data.synthetic import get_preset

        get_preset(rest)  # fail on an unknown preset before touching the disk
        return read_dataset(load_spec(ensure_synthetic(settings, rest) / "dataset.yaml"))
    if kind == "hm" and rest:
        from recsys.data.hm import load_hm

        return load_hm(Path(rest), customers=customers, seed=settings.seed, cache_dir=settings.home / "cache" / "hm")
    path = Path(ref)
    if path.is_dir() and (path / "dataset.yaml").exists():
        path = path / "dataset.yaml"
    if path.suffix in (".yaml", ".yml"):
        if not path.exists():
            raise DataError(f"{path}: dataset spec not found")
        return read_dataset(load_spec(path))
    raise DataError(f"dataset {ref!r} not understood: expected {FORMS}")
