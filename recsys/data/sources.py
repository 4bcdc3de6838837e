"""Turning a dataset reference (``synthetic:small``, ``hm:FOLDER``, ``path/spec.yaml``) into a :class:`Dataset`."""

from __future__ import annotations

from pathlib import Path

from recsys.config import Settings
from recsys.data.dataset import Dataset, FeatureSpec
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


def _locate(ref: str, settings: Settings) -> tuple[str, Path]:
    """``("synthetic" | "hm" | "spec", path)``: the spec file of a synthetic preset or a spec, the H&M folder."""
    kind, _, rest = ref.partition(":")
    if kind == "synthetic" and rest:
        from recsys.data.synthetic import get_preset

        get_preset(rest)  # fail on an unknown preset before touching the disk
        return "synthetic", ensure_synthetic(settings, rest) / "dataset.yaml"
    if kind == "hm" and rest:
        return "hm", Path(rest)
    path = Path(ref)
    if path.is_dir() and (path / "dataset.yaml").exists():
        path = path / "dataset.yaml"
    if path.suffix in (".yaml", ".yml"):
        if not path.exists():
            raise DataError(f"{path}: dataset spec not found")
        return "spec", path
    raise DataError(f"dataset {ref!r} not understood: expected {FORMS}")


def load_dataset(ref: str, settings: Settings, customers: int | None = None) -> Dataset:
    """Load the data set a reference names; ``customers`` samples that many customers (H&M only)."""
    from recsys.data.spec import load_spec, read_dataset

    kind, path = _locate(ref, settings)
    if kind == "hm":
        from recsys.data.hm import load_hm

        return load_hm(path, customers=customers, seed=settings.seed, cache_dir=settings.home / "cache" / "hm")
    return read_dataset(load_spec(path))


def dataset_features(ref: str, settings: Settings) -> dict[str, dict[str, FeatureSpec]]:
    """The feature types the data set's spec declares, without reading its tables.

    Training reads its rows from the feature store; from the data set it needs only this: which columns are
    categorical, numeric or text.
    """
    from recsys.data.spec import SPECS_DIR, load_spec

    kind, preset = ref.partition(":")[::2]
    if kind == "synthetic" and preset:
        from recsys.data.synthetic import get_preset

        # Every preset is written with the shipped spec: reading it generates nothing, so training can check the
        # features against the store before a data set the store may not be built from is written into the home.
        get_preset(preset)
        return load_spec(SPECS_DIR / "synthetic.yaml", base_dir=synthetic_dir(settings, preset)).feature_specs()
    kind, path = _locate(ref, settings)
    if kind == "hm":
        from recsys.data.hm import HM_SPEC

        return load_spec(HM_SPEC, base_dir=path).feature_specs()
    return load_spec(path).feature_specs()
