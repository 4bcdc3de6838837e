"""The three Colab notebooks run top to bottom, in order, on the ``tiny`` preset in a temp ``RECSYS_HOME``.

The kernel is this interpreter (the project's .venv): a kernel spec for ``sys.executable`` is written into a temp
Jupyter path, so a ``python3`` kernel installed elsewhere on the machine is never picked up by accident. The
notebooks' ``parameters`` cell is followed by one that makes training tiny (1 epoch, 20 CatBoost trees).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = ("1_feature_pipeline.ipynb", "2_training_pipeline.ipynb", "3_inference_pipeline.ipynb")
KERNEL = "recsys-fti-test"
FAST = {
    "1_feature_pipeline.ipynb": 'DATASET = "synthetic:tiny"',
    "2_training_pipeline.ipynb": 'DATASET = "synthetic:tiny"\nEPOCHS = 1\nITERATIONS = 20\nOBJECTIVE = "Logloss"',
    "3_inference_pipeline.ipynb": "CUSTOMERS = 2",
}


def read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / name, as_version=4)


def with_overrides(nb: nbformat.NotebookNode, source: str) -> nbformat.NotebookNode:
    """Insert ``source`` right after the cell tagged ``parameters`` (papermill's convention)."""
    index = next(i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", []))
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    return nb


def images_in(nb: nbformat.NotebookNode) -> int:
    """How many plots and pictures the cells displayed."""
    return sum("image/png" in output.get("data", {}) for cell in nb.cells for output in cell.get("outputs", []))


def text_of(nb: nbformat.NotebookNode) -> str:
    """Everything the cells printed or displayed as text."""
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_committed_without_outputs(name: str) -> None:
    nb = read(name)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert "google.colab" in code[0].source  # the first cell sets up Colab and is a no-op here
    assert sum("parameters" in cell.metadata.get("tags", []) for cell in code) == 1


@pytest.mark.slow
def test_notebooks_run_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jupyter = tmp_path / "jupyter"
    write_kernel_spec(jupyter / "kernels" / KERNEL)  # argv: this sys.executable -m ipykernel_launcher
    assert json.loads((jupyter / "kernels" / KERNEL / "kernel.json").read_text())["argv"][0] == sys.executable
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter))
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    cwd.mkdir()  # an empty working directory: no stray .env is read, nothing is written into the repository
    env = {
        **os.environ,
        "RECSYS_HOME": str(home),
        "RECSYS_BACKEND": "local",
        "TF_USE_LEGACY_KERAS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    # Importing streamlit (the UI tests, at collection) sets MPLBACKEND=Agg in this process; a kernel that
    # inherited it would draw no inline plots.
    env.pop("MPLBACKEND", None)
    done: dict[str, nbformat.NotebookNode] = {}
    seconds: dict[str, float] = {}
    for name in NAMES:
        nb = with_overrides(read(name), FAST[name])
        started = time.perf_counter()
        NotebookClient(nb, kernel_name=KERNEL, timeout=600, resources={"metadata": {"path": str(cwd)}}).execute(
            env=env
        )  # raises CellExecutionError, naming the cell, on the first error
        seconds[name] = time.perf_counter() - started
        done[name] = nb
    print("notebook seconds:", {name: round(s, 1) for name, s in seconds.items()})

    features, training, inference = (text_of(done[name]) for name in NAMES)
    # purchases per day; training curves, importance and the report's four pictures
    assert images_in(done[NAMES[0]]) == 1 and images_in(done[NAMES[1]]) == 6
    assert "2,000" in features  # the tiny preset's customers, from the description
    assert "incremental run 2: no new days" in features  # the second run found nothing to add
    assert (home / "feature_store").is_dir() and not (cwd / ".recsys").exists()

    run_ids = sorted((home / "models" / "ranker").glob("*/model.json"))
    assert len(run_ids) == 1  # notebook 2 registered exactly one ranker
    run_id = json.loads(run_ids[0].read_text())["run_id"]
    assert run_id in training

    assert f"serving run {run_id}" in inference
    assert "customer someone-new (popularity)" in inference  # the unknown customer: a cold start
    assert "for 2,000 customers" in inference  # the batch job scored every customer of the tiny preset
