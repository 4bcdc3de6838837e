"""Hopsworks transformer script: the ranking transformer of recsys (see recsys.serving.hopsworks_scripts.adapter)."""

from __future__ import annotations

from typing import Any

from recsys.serving.hopsworks_scripts.adapter import ranking_transformer


class Transformer:
    def __init__(self) -> None:
        self.script = ranking_transformer()  # the pinned run: RECSYS_SERVING_RUN_ID

    def preprocess(self, inputs: Any) -> Any:
        return self.script.preprocess(inputs)

    def postprocess(self, outputs: Any) -> Any:
        return self.script.postprocess(outputs)
