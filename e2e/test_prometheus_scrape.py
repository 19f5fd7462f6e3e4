"""The shipped scrape configuration (weft_viz/scrape/prometheus.yml), run by a real
Prometheus with Kubernetes discovery (built from Go modules with the local cluster:
Debian's has none) against the meshed bookshop: it finds every proxy's admin port and
nothing else, and Flagger's `linkerd` queries, which select by `namespace` and
`deployment`, find the traffic the workloads serve; so do the Grafana panels'."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from importlib import resources
from typing import Any

import host_prometheus
from host_prometheus import get
from meshed_bookshop import NAMESPACE, Bookshop

from weft_api import mesh

DEADLINE_S = 120.0
GRAFANA = ("weft-workloads.json", "weft-routes.json")


def meshed_pods(bookshop: Bookshop) -> dict[str, dict[str, Any]]:
    listed = json.loads(bookshop.kubectl("get", "pods", "-o", "json"))
    return {
        pod["status"]["podIP"]: pod
        for pod in listed["items"]
        if pod["status"].get("phase") == "Running"
        and "deletionTimestamp" not in pod["metadata"]  # on its way out: soon no target
        and mesh.PROXY_VERSION_ANNOTATION in pod["metadata"].get("annotations", {})
    }


async def test_the_shipped_scrape_config_labels_each_proxy_with_its_workload(
    bookshop: Bookshop, prometheus_with: Callable[..., str]
) -> None:
    pods = meshed_pods(bookshop)
    assert len(pods) >= 6, pods.keys()  # web, books-v1, books-v2, ratings, traffic, ...
    url = host_prometheus.start(prometheus_with, bookshop.cluster.kubeconfig, NAMESPACE)
    targets: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while loop.time() < deadline:
        # The pods as they are now: an earlier test's rollout may still be replacing one.
        pods = meshed_pods(bookshop)
        wanted = {f"{ip}:{mesh.PROXY_ADMIN_PORT}" for ip in pods}
        data = await asyncio.to_thread(get, url, "/api/v1/targets")
        targets = (data or {}).get("activeTargets", [])
        up = {t["labels"]["instance"] for t in targets if t["health"] == "up"}
        if up == wanted == {t["labels"]["instance"] for t in targets}:
            break
        await asyncio.sleep(1)
    # Only proxies' admin ports: not the apps' ports, not the init container's.
    assert {t["labels"]["instance"] for t in targets} == wanted, targets
    assert all(t["health"] == "up" for t in targets), targets
    for target in targets:
        pod = pods[target["labels"]["instance"].rpartition(":")[0]]
        labels = target["labels"]
        assert labels["namespace"] == NAMESPACE
        assert labels["pod"] == pod["metadata"]["name"]
        assert labels["workload_ns"] == NAMESPACE
        app = pod["metadata"]["labels"]["app"]
        assert labels["app"] == app  # the pod's own labels are kept, as Linkerd's
        assert labels["deployment"] == pod["metadata"]["name"].rsplit("-", 2)[0], labels

    # Flagger's queries (provider linkerd) as it sends them for a canary of books-v1.
    selector = f'namespace="{NAMESPACE}",deployment=~"books-v1",direction="inbound"'
    success_rate = (
        f'sum(rate(response_total{{{selector},classification!="failure"}}[1m])) / '
        f"sum(rate(response_total{{{selector}}}[1m])) * 100"
    )
    requests = f"sum(rate(response_total{{{selector}}}[1m]))"
    rate: float | None = None
    while loop.time() < deadline + DEADLINE_S:
        answers = [await asyncio.to_thread(get, url, "/api/v1/query", query=q) for q in (
            requests, success_rate)]  # fmt: skip
        # Both answer, over a window with traffic in it (the rate can read 0 while the
        # first scrapes of a slow machine hold no increase yet): wait for that.
        if (
            all(a and a["result"] for a in answers)
            and float(answers[0]["result"][0]["value"][1]) > 0
        ):
            rate = float(answers[1]["result"][0]["value"][1])
            break
        await asyncio.sleep(1)
    assert rate is not None, "Flagger's query found no traffic of deployment books-v1"
    assert rate == 100.0  # books-v1 serves the sample's traffic without a failure

    # The Grafana dashboards' panels, variables set to the bookshop: every query is
    # valid PromQL, and the workloads' golden panels draw the bookshop's traffic.
    values = {"$namespace": NAMESPACE, "$deployment": ".*", "$service": "books"}
    for dashboard in grafana_dashboards():
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                expression = target["expr"]
                for variable, value in values.items():
                    expression = expression.replace(variable, value)
                answer = await asyncio.to_thread(get, url, "/api/v1/query", query=expression)
                assert answer is not None, (dashboard["uid"], expression)
                if dashboard["uid"] == "weft-workloads" and panel["id"] in (1, 2, 3):
                    assert answer["result"], (panel["title"], expression)


def grafana_dashboards() -> list[dict[str, Any]]:
    folder = resources.files("weft_viz").joinpath("grafana")
    return [json.loads(folder.joinpath(name).read_text()) for name in GRAFANA]
