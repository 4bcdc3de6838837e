"""Serving settings and ports: every serving setting reaches the stages, ports resolve without clashes."""

from __future__ import annotations

import pytest

from recsys.config import load_settings
from recsys.serving.options import ServingOptions
from recsys.serving.servers import Ports, ServingError, free_port


def test_options_come_from_the_settings() -> None:
    settings = load_settings(serving_max_top_k=7, serving_default_top_k=5, serving_group_column="")
    options = ServingOptions.from_settings(settings)
    assert (options.max_top_k, options.default_top_k, options.group_column) == (7, 5, "")
    assert ServingOptions.from_dict(options.to_dict()) == options
    with pytest.raises(ValueError, match="default top_k"):
        ServingOptions(default_top_k=20, max_top_k=10)


def test_ports() -> None:
    resolved = Ports(0, 0, 0, 0).resolved()
    assert len(set(resolved.__dict__.values())) == 4 and 0 not in resolved.__dict__.values()
    fixed = free_port()
    assert Ports(fixed, 0, 0, 0).resolved().query == fixed
    with pytest.raises(ServingError, match="share a port"):
        Ports(9000, 9000, 0, 0).resolved()
    assert Ports.from_settings(load_settings(serving_port=9100)).query == 9100
