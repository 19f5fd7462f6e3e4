"""The shipped scrape configuration (weft_viz/scrape) run from the host by the
Prometheus the local cluster builds (Debian's has no Kubernetes discovery), as the e2e
tests that read the proxies' metrics through it need it: the scrape test and Flagger's."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from weft_localcluster.build import ensure_prometheus
from weft_viz.scrape import scrape_config


def from_the_host(kubeconfig: Path, namespace: str) -> dict[str, Any]:
    """The shipped job, changed only in how it reaches the API server: in a cluster,
    Prometheus uses its ServiceAccount; on the host, the test cluster's kubeconfig. It
    looks at `namespace` only, as other tests' pods come and go."""
    job = scrape_config()
    (discovery,) = job["kubernetes_sd_configs"]
    discovery["kubeconfig_file"] = str(kubeconfig)
    discovery["namespaces"] = {"names": [namespace]}
    return {"global": {"scrape_interval": "1s"}, "scrape_configs": [job]}


def start(prometheus_with: Callable[..., str], kubeconfig: Path, namespace: str) -> str:
    """The built Prometheus (once, cached) scraping `namespace`'s proxies; its URL."""
    binary = ensure_prometheus()
    return prometheus_with(from_the_host(kubeconfig, namespace), str(binary))


def get(url: str, path: str, **params: str) -> Any:
    """The answer's data; None when Prometheus is not up yet or refuses the query."""
    address = f"{url}{path}?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(address, timeout=5) as response:
            return json.load(response)["data"]
    except OSError:  # HTTPError (a refused query: 400) included
        return None


def scalar(url: str, query: str) -> float | None:
    """The query's one value; None while it has none."""
    data = get(url, "/api/v1/query", query=query)
    result = (data or {}).get("result") or []
    return float(result[0]["value"][1]) if result else None
