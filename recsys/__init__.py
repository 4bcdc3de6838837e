"""recsys: the library behind the feature, training and inference pipelines."""

from __future__ import annotations

__version__ = "0.1.0"
