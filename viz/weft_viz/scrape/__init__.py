"""The shipped scrape configuration of Weft's proxies (docs/dashboard.md)."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

JOB = "weft-proxy"


def prometheus_fragment_text() -> str:
    """prometheus.yml's `scrape_configs` with the `weft-proxy` job, as shipped."""
    return resources.files(__package__).joinpath("prometheus.yml").read_text()


def scrape_config() -> dict[str, Any]:
    """The `weft-proxy` job, to put in a Prometheus configuration."""
    job: dict[str, Any] = yaml.safe_load(prometheus_fragment_text())["scrape_configs"][0]
    return job


def pod_monitor_text() -> str:
    return resources.files(__package__).joinpath("podmonitor.yaml").read_text()
