"""A model set over an H&M-sized catalogue for the serving benchmark, built once and reused.

Serving latency depends on the catalogue (the vector index holds every article, the feature reads and filters work
on it) far more than on the number of customers, so this store has the `hm` preset's 105,542 articles but only
20,000 customers and about 800k purchases: the three pipelines build it in minutes on this machine, with the
product's own commands (features, one short training run, embeddings, a small ranker).

    python benchmarks/_catalogue.py [--home DIR]      # prints the home; builds it when it has no model set
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from recsys.config import load_settings
from recsys.data.synthetic import PRESETS, Preset, generate
from recsys.errors import RecsysError
from recsys.serving.model_set import check_model_set
from recsys.store import connect

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_HOME = ROOT / "benchmarks" / "results" / "catalogue-home"
CATALOGUE = Preset("catalogue", 20_000, PRESETS["hm"].n_articles, 800_000)
TRAINING = ["--epochs", "1", "--weeks", "2", "--objective", "Logloss", "--iterations", "200"]


def has_model_set(home: Path) -> bool:
    try:
        check_model_set(connect(load_settings(home=home)), None)
    except RecsysError:
        return False
    return True


def ensure_catalogue_home(home: Path = DEFAULT_HOME) -> Path:
    """``home`` with a complete model set over the H&M-sized catalogue (built on first use)."""
    if has_model_set(home):
        return home
    spec = home / "data" / "catalogue" / "dataset.yaml"
    if not spec.exists():
        print(f"generating {CATALOGUE} into {spec.parent}", flush=True)
        generate(CATALOGUE, seed=42).write(spec.parent)
    env = os.environ | {"RECSYS_HOME": str(home)}
    for program, *args in (
        ("feature_pipeline", "backfill", "--dataset", str(spec)),
        ("training_pipeline", "all", "--dataset", str(spec), *TRAINING),
    ):
        # from the repository root: `-m feature_pipeline` run here would find the benchmark of that name
        subprocess.run([sys.executable, "-m", program, *args], env=env, check=True, cwd=ROOT)
    return home


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME)
    print(ensure_catalogue_home(parser.parse_args().home))


if __name__ == "__main__":
    main()
