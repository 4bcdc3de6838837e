"""Hopsworks predictor script: the query predictor of recsys (see recsys.serving.hopsworks_scripts.adapter)."""

from __future__ import annotations

from typing import Any

from recsys.serving.hopsworks_scripts.adapter import query_predictor


class Predict:
    def __init__(self) -> None:
        self.script = query_predictor()  # the pinned run: RECSYS_SERVING_RUN_ID

    def predict(self, inputs: Any) -> Any:
        return self.script.predict(inputs)
