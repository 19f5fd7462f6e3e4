"""Real Flagger drives canaries through Weft, as a user would run it: v1.44.0 built
from Go modules (once, cached: weft_localcluster.go_tools), its own CRDs read from its
module's source, `-mesh-provider=linkerd`, and the metrics of the shipped scrape config
(weft_viz/scrape) from the Prometheus the local cluster builds. Flagger writes the
v1alpha1 TrafficSplit and reads the proxies' `response_total` and latency histograms
with its built-in `request-success-rate` and `request-duration` metrics. A healthy
revision is promoted; a failing one is rolled back, traffic back on the primary.

Flagger runs on the host, as a process with the test cluster's kubeconfig, not as a
pod: the local cluster's node agent runs processes from its image table
(weft_localcluster/nodeagent/images.py), not container images, and Flagger is not in
it. Flagger talks only to the API server and to Prometheus, so where it runs changes
nothing it does.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import host_prometheus
import pytest

# (renamed: pytest would collect a `test_` name as a test of this module)
from host_process import host_process
from meshed_bookshop import ControlPlane, kubectl
from meshed_bookshop import test_pod as python_pod

from weft_api import mesh
from weft_localcluster import ports
from weft_localcluster.cluster import ClusterInfo
from weft_localcluster.go_tools import FLAGGER, FLAGGER_MODULE, ensure_tool, module_source
from weft_localcluster.waiting import eventually

NAMESPACE = "flagger-e2e"
APP = "catalog"  # the Canary's target: Flagger adds catalog-primary and catalog-canary
V1, V2 = "weft.dev/samples/books:v1", "weft.dev/samples/books:v2"
RPS = 10  # the load generator's rate: a few requests per analysis at a 25% step
INTERVAL_S = 10  # Flagger's analysis interval
THRESHOLD = 3  # failed checks before a rollback
ROLLOUT_S = 300.0  # a whole analysis, rollouts of primary and canary included
SUCCESS_RATE_HALT = re.compile(r"advancement success rate ([0-9.]+)% < 99%")


@dataclass
class Flagger:
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class Shop:
    """The Canary's namespace: meshed, with the target, a load generator and a relay."""

    def __init__(self, cluster: ClusterInfo) -> None:
        self.cluster = cluster

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return kubectl(self.cluster, "-n", NAMESPACE, *args, stdin=stdin)

    def apply(self, *objects: dict[str, Any]) -> None:
        listed = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
        self.kubectl("apply", "-f", "-", stdin=json.dumps(listed))

    async def get(self, kind: str, name: str) -> dict[str, Any] | None:
        found = await asyncio.to_thread(
            self.kubectl, "get", kind, name, "--ignore-not-found", "-o", "json"
        )
        return json.loads(found) if found.strip() else None

    async def read(self, kind: str, name: str) -> dict[str, Any]:
        found = await self.get(kind, name)
        assert found is not None, f"no {kind} {name}"
        return found

    async def through_the_mesh(self, url: str) -> dict[str, Any]:
        """GET `url` from the relay pod, out through its proxy: {"status", "body"}."""
        listed = json.loads(
            await asyncio.to_thread(self.kubectl, "get", "pods", "-l", "app=relay", "-o", "json")
        )
        (ip,) = [p["status"]["podIP"] for p in listed["items"] if p["status"].get("podIP")]
        relay = f"http://{ip}:8080/http?" + urllib.parse.urlencode({"url": url})
        answer: dict[str, Any] = await asyncio.to_thread(_get_json, relay)
        return answer


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


@pytest.fixture
def flagger_crds(control_plane: ControlPlane) -> Iterator[Path]:
    """Flagger's CRDs (Canary, MetricTemplate, AlertProvider) from its module's source."""
    crds = module_source(FLAGGER_MODULE, FLAGGER.version) / "artifacts" / "flagger" / "crd.yaml"
    cluster = control_plane.cluster
    kubectl(cluster, "apply", "--server-side", "-f", str(crds))
    kubectl(cluster, "wait", "--for=condition=Established", "-f", str(crds), "--timeout=60s")
    yield crds
    kubectl(cluster, "delete", "-f", str(crds), "--wait=false", "--ignore-not-found")


def workloads() -> list[dict[str, Any]]:
    """The target (the books sample as `catalog`), a steady client of it, and a relay."""
    labels = {"app": APP}
    probe = {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 2}
    target = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": APP,
                    "terminationGracePeriodSeconds": 5,
                    "containers": [
                        {
                            "name": APP,
                            "image": V1,
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "readinessProbe": probe,
                        }
                    ],
                },
            },
        },
    }
    loader_labels = {"app": "loader"}
    loader = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "loader"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": loader_labels},
            "template": {
                "metadata": {"labels": loader_labels},
                "spec": {
                    "serviceAccountName": "loader",
                    "containers": [
                        {
                            "name": "loader",
                            "image": "weft.dev/samples/traffic:v1",
                            "env": [
                                {"name": "TARGET_URL", "value": f"http://{APP}:8080/books"},
                                {"name": "RPS", "value": str(RPS)},
                            ],
                        }
                    ],
                },
            },
        },
    }
    accounts = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}
        for name in (APP, "loader")
    ]
    return [*accounts, target, loader, *python_pod("relay", "relay", "relay.py", 8080)]


@pytest.fixture
def shop(control_plane: ControlPlane, flagger_crds: Path) -> Iterator[Shop]:
    cluster = control_plane.cluster
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": NAMESPACE,
            "annotations": {mesh.INJECT_ANNOTATION: mesh.INJECT_ENABLED},
        },
    }
    kubectl(cluster, "apply", "-f", "-", stdin=json.dumps(namespace))
    shop = Shop(cluster)
    shop.apply(*workloads())
    for name in (APP, "loader", "relay"):
        shop.kubectl("rollout", "status", f"deployment/{name}", "--timeout=180s")
    yield shop
    kubectl(cluster, "delete", "namespace", NAMESPACE, "--wait=false")


@pytest.fixture
def prometheus_url(shop: Shop, prometheus_with: Callable[..., str]) -> str:
    return host_prometheus.start(prometheus_with, shop.cluster.kubeconfig, NAMESPACE)


@pytest.fixture
def flagger(shop: Shop, prometheus_url: str, tmp_path: Path) -> Iterator[Flagger]:
    binary = ensure_tool(FLAGGER)
    log = tmp_path / "flagger.log"
    command = [
        str(binary),
        f"-kubeconfig={shop.cluster.kubeconfig}",
        "-mesh-provider=linkerd",
        f"-metrics-server={prometheus_url}",
        f"-namespace={NAMESPACE}",
        f"-port={ports.pick_free()}",
        "-control-loop-interval=2s",
        "-log-level=info",
        "-zap-encoding=console",
    ]
    with host_process(command, log) as process:
        yield Flagger(process, log)


def canary() -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": APP},
        "spec": {
            "provider": "linkerd",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
            "progressDeadlineSeconds": 180,
            "service": {"port": 8080, "targetPort": "http"},
            "analysis": {
                "interval": f"{INTERVAL_S}s",
                "threshold": THRESHOLD,
                "stepWeight": 25,
                "maxWeight": 50,
                "metrics": [
                    {
                        "name": "request-success-rate",
                        "thresholdRange": {"min": 99},
                        "interval": "30s",
                    },
                    {
                        # p99 in ms; generous, as this machine's proxies share two cores.
                        "name": "request-duration",
                        "thresholdRange": {"max": 2000},
                        "interval": "30s",
                    },
                ],
            },
        },
    }


@dataclass
class Watched:
    """What was seen of the split while Flagger moved weight (for the assertions)."""

    phases: list[str] = field(default_factory=list)
    programmed_with_canary_weight: set[int] = field(default_factory=set)
    canary_share_while_weighted: float = 0.0


def weights(split: dict[str, Any] | None) -> dict[str, int]:
    """Backends' weights of a v1alpha1 split (quantities, as Flagger writes them)."""
    backends = (split or {}).get("spec", {}).get("backends", [])
    return {b["service"]: int(str(b["weight"])) for b in backends}


def programmed(split: dict[str, Any] | None) -> bool:
    """Weft's status: the proxies run this generation of the split."""
    if not split:
        return False
    generation = split["metadata"]["generation"]
    return any(
        c["type"] == "Programmed"
        and c["status"] == "True"
        and c.get("observedGeneration") == generation
        for c in split.get("status", {}).get("conditions", [])
    )


def loader_share(url: str, service: str) -> float | None:
    """The share of the load generator's requests (its proxy's outbound endpoint
    attempts) that went to `service` over the last 10 s."""
    selector = f'namespace="{NAMESPACE}",deployment="loader",direction="outbound"'
    to_service = host_prometheus.scalar(
        url, f'sum(rate(response_total{{{selector},dst_service="{service}"}}[10s]))'
    )
    overall = host_prometheus.scalar(url, f"sum(rate(response_total{{{selector}}}[10s]))")
    if not overall:
        return None
    return (to_service or 0.0) / overall


async def until_phase(
    shop: Shop,
    flagger: Flagger,
    wanted: str,
    not_: str | None = None,
    watch: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    within: float = ROLLOUT_S,
) -> dict[str, Any]:
    """The Canary once its status.phase is `wanted`; fails at once if it is `not_`."""

    async def probe() -> dict[str, Any] | None:
        found = await shop.get("canary", APP)
        phase = ((found or {}).get("status") or {}).get("phase")
        if phase is not None and phase == not_:
            raise AssertionError(f"the canary ended {phase}, not {wanted}")
        if found and watch:
            await watch(found)
        return found if phase == wanted else None

    try:
        return await eventually(probe, f"the canary to be {wanted}", within)
    except AssertionError as error:
        raise AssertionError(f"{error}\n--- flagger's log:\n{flagger.tail()}") from None


async def test_flagger_promotes_a_healthy_canary_and_rolls_back_a_failing_one(
    shop: Shop, flagger: Flagger, prometheus_url: str
) -> None:
    shop.apply(canary())
    await until_phase(shop, flagger, "Initialized", not_="Failed")
    assert image(await shop.read("deployment", f"{APP}-primary")) == V1

    # (a) A healthy revision: v2 of the books service.
    watched = Watched()

    async def watch(found: dict[str, Any]) -> None:
        watched.phases.append(found["status"]["phase"])
        split = await shop.get("trafficsplits.v1alpha1.split.smi-spec.io", APP)
        canary_weight = weights(split).get(f"{APP}-canary", 0)
        if canary_weight > 0:
            if programmed(await shop.get("trafficsplits.split.smi-spec.io", APP)):
                watched.programmed_with_canary_weight.add(canary_weight)
            share = await asyncio.to_thread(loader_share, prometheus_url, f"{APP}-canary")
            watched.canary_share_while_weighted = max(
                watched.canary_share_while_weighted, share or 0.0
            )

    shop.kubectl("set", "image", f"deployment/{APP}", f"{APP}={V2}")
    done = await until_phase(shop, flagger, "Succeeded", "Failed", watch)
    assert "Progressing" in watched.phases, watched.phases
    promoted = {c["type"]: c for c in done["status"]["conditions"]}["Promoted"]
    assert (promoted["status"], promoted["reason"]) == ("True", "Succeeded"), promoted
    # Flagger's split was run by the proxies at a canary weight, and steered requests.
    assert watched.programmed_with_canary_weight, watched
    assert watched.canary_share_while_weighted > 0, watched
    assert image(await shop.read("deployment", f"{APP}-primary")) == V2
    split = await shop.get("trafficsplits.v1alpha1.split.smi-spec.io", APP)
    assert weights(split) == {f"{APP}-canary": 0, f"{APP}-primary": 100}, split
    await eventually(lambda: answers_from(shop, "v2"), "users to get v2 from the primary", 60)
    await eventually(lambda: all_on_primary(prometheus_url), "the load all on the primary", 60)

    # (b) A failing revision: half the books requests answer 500. (Not all: the local
    # cluster's probes reach the app inside the pod's namespace, not through the proxy,
    # so with no success at all the success-rate query's numerator is an empty sum and
    # Flagger rolls back for "no values found", not for the rate it measured.)
    shop.kubectl("set", "env", f"deployment/{APP}", "BOOKS_FAILURE_RATE=0.5")
    await until_phase(shop, flagger, "Progressing")
    failed = await until_phase(shop, flagger, "Failed", not_="Succeeded")
    status = failed["status"]
    assert status["canaryWeight"] == 0, status
    promoted = {c["type"]: c for c in status["conditions"]}["Promoted"]
    assert (promoted["status"], promoted["reason"]) == ("False", "Failed"), promoted
    # Rolled back for the failures the canary's proxy counted, as `kubectl describe
    # canary` shows: "Halt catalog.flagger-e2e advancement success rate 48.00% < 99%".
    rates = await measured_success_rates(shop)
    assert rates, await asyncio.to_thread(shop.kubectl, "get", "events")
    assert all(20 < rate < 80 for rate in rates), rates
    split = await shop.get("trafficsplits.v1alpha1.split.smi-spec.io", APP)
    assert weights(split) == {f"{APP}-canary": 0, f"{APP}-primary": 100}, split
    primary = await shop.read("deployment", f"{APP}-primary")
    assert (image(primary), env(primary)) == (V2, []), primary["spec"]
    target = await shop.read("deployment", APP)
    assert target["spec"]["replicas"] == 0, target["spec"]
    # Users are back on the healthy primary: v2, and no failure.
    await eventually(lambda: answers_from(shop, "v2"), "users to get v2 back", 60)


async def measured_success_rates(shop: Shop) -> list[float]:
    """The success rates Flagger's events on the Canary name as below the threshold."""
    listed = json.loads(
        await asyncio.to_thread(
            shop.kubectl, "get", "events", "-o", "json",
            f"--field-selector=involvedObject.kind=Canary,involvedObject.name={APP}",
        )
    )  # fmt: skip
    found = (SUCCESS_RATE_HALT.search(e.get("message", "")) for e in listed["items"])
    return [float(m.group(1)) for m in found if m]


def image(deployment: dict[str, Any]) -> str:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    found: str = container["image"]
    return found


def env(deployment: dict[str, Any]) -> list[Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    found: list[Any] = container.get("env", [])
    return found


async def answers_from(shop: Shop, version: str, count: int = 20) -> bool:
    """`count` requests through the mesh to the Canary's Service all answer 200 from
    `version`."""
    for _ in range(count):
        answer = await shop.through_the_mesh(f"http://{APP}.{NAMESPACE}:8080/books")
        if answer["status"] != 200 or json.loads(answer["body"])["version"] != version:
            return False
    return True


async def all_on_primary(url: str) -> bool:
    share = await asyncio.to_thread(loader_share, url, f"{APP}-primary")
    return share is not None and share > 0.99
