"""Scripts for Hopsworks model serving: one per server, in Hopsworks' ``Transformer`` / ``Predict`` contract.

Each file is uploaded as is by :func:`recsys.serving.hopsworks_deploy.deploy_to_hopsworks` and runs in a
Hopsworks Python environment where ``recsys`` is installed; the work is done by :mod:`.adapter` around the same
KServe models the local servers run.
"""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).parent
SCRIPTS = {
    "query_transformer": FOLDER / "query_transformer.py",
    "query_predictor": FOLDER / "query_predictor.py",
    "ranking_transformer": FOLDER / "ranking_transformer.py",
    "ranking_predictor": FOLDER / "ranking_predictor.py",
}
