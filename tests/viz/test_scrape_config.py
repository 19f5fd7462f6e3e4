"""The shipped scrape configuration: one set of rules, in Prometheus' own file and in a
PodMonitor for the Prometheus Operator (which cannot run here; e2e/test_prometheus_scrape
runs the file with Debian's Prometheus)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from weft_api import mesh
from weft_viz.scrape import pod_monitor_text, scrape_config


def camel(key: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key)


def test_the_pod_monitor_has_the_same_rules_as_prometheus_yml() -> None:
    monitor = yaml.safe_load(pod_monitor_text())
    assert monitor["kind"] == "PodMonitor"
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "weft-admin"  # the proxy's admin port's name (injection)
    rules: list[dict[str, Any]] = scrape_config()["relabel_configs"]
    assert endpoint["relabelings"] == [{camel(k): v for k, v in r.items()} for r in rules]


def test_only_the_proxys_admin_port_is_kept() -> None:
    keep = scrape_config()["relabel_configs"][0]
    assert keep["action"] == "keep"
    assert re.fullmatch(keep["regex"], f"{mesh.PROXY_CONTAINER};{mesh.PROXY_ADMIN_PORT}")
    assert not re.fullmatch(keep["regex"], f"{mesh.PROXY_CONTAINER};{mesh.PROXY_INBOUND_PORT}")
    assert not re.fullmatch(keep["regex"], f"app;{mesh.PROXY_ADMIN_PORT}")
