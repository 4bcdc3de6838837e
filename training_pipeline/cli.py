"""``python -m training_pipeline``: program 2 of the recommender."""

from __future__ import annotations

from recsys.cli_support import make_app

app = make_app("training_pipeline", "Program 2 of the recommender: feature views -> models in the registry.")
