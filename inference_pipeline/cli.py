"""``python -m inference_pipeline``: program 3 of the recommender."""

from __future__ import annotations

from recsys.cli_support import make_app

app = make_app(
    "inference_pipeline",
    "Program 3 of the recommender: embeddings and index, KServe servers, batch scoring, deployment.",
)
