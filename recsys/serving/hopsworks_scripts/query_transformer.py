"""Hopsworks transformer script: the query transformer of recsys (see recsys.serving.hopsworks_scripts.adapter)."""

from __future__ import annotations

from typing import Any

from recsys.serving.hopsworks_scripts.adapter import query_transformer


class Transformer:
    def __init__(self) -> None:
        self.script = query_transformer()  # the pinned run: RECSYS_SERVING_RUN_ID

    def preprocess(self, inputs: Any) -> Any:
        return self.script.preprocess(inputs)

    def postprocess(self, outputs: Any) -> Any:
        return self.script.postprocess(outputs)
