"""The webhooks stay available while a replica goes, as `weft install` has them.

TrafficSplits are stored at v1alpha4 and Flagger reads v1alpha1: each such read calls
the conversion webhook, so with it down every read fails and a bad canary keeps its
traffic. Installed with `weft install | kubectl apply -f -` on a fresh local cluster of
its own (webhook configurations are cluster-wide), the webhooks run two replicas under
one CA. A TrafficSplit is then read at v1alpha1 in a loop, one read after another,
while a node drain's eviction takes one replica and until its replacement is Ready,
then while a replica is deleted outright (grace 0): no read fails. The
PodDisruptionBudget refuses to evict the second replica while the first is away.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import pytest
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.api_client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException
from weft_runner import weft

from weft_cli import local_install
from weft_localcluster.cluster import ClusterInfo, LocalCluster

WEFT = "weft"
SHOP = "shop"
WEBHOOKS = "app.kubernetes.io/name=weft-webhooks"
SPLIT = {
    "apiVersion": "split.smi-spec.io/v1alpha4",
    "kind": "TrafficSplit",
    "metadata": {"name": "books", "namespace": SHOP},
    "spec": {
        "service": "books",
        "backends": [{"service": "books-v1", "weight": 9}, {"service": "books-v2", "weight": 1}],
    },
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterInfo]:
    local = LocalCluster(tmp_path_factory.mktemp("ha-cluster") / "state")
    try:
        info = local.up(api_port=0)
        local_install.kubectl(info, "apply", "-f", "-", stdin=weft("install").stdout)
        for deployment in ("weft-operator", "weft-webhooks"):
            local_install.kubectl(
                info, "wait", "-n", WEFT, "--for=condition=Available",
                f"deployment/{deployment}", "--timeout=180s",
            )  # fmt: skip
        local_install.kubectl(info, "create", "namespace", SHOP)
        yield info
    finally:
        local.down()


@pytest.fixture(scope="module")
async def api(installed: ClusterInfo) -> AsyncIterator[ApiClient]:
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(installed.kubeconfig), client_configuration=configuration
    )
    async with ApiClient(configuration) as api_client:
        yield api_client


async def eventually(what: str, seconds: float, probe: Callable[[], Awaitable[bool]]) -> None:
    deadline = time.monotonic() + seconds
    while not await probe():
        assert time.monotonic() < deadline, f"not within {seconds:.0f}s: {what}"
        await asyncio.sleep(0.2)


async def read_at_v1alpha1(api: ApiClient) -> dict[str, object]:
    split: dict[str, object] = await client.CustomObjectsApi(api).get_namespaced_custom_object(
        "split.smi-spec.io", "v1alpha1", SHOP, "trafficsplits", "books"
    )
    return split


@dataclass
class Reads:
    """A TrafficSplit read at v1alpha1, again and again, until stopped."""

    api: ApiClient
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        while not self.stopped.is_set():
            try:
                split = await read_at_v1alpha1(self.api)
            except ApiException as error:
                self.failures.append(f"{error.status} {error.reason}: {error.body}")
            else:
                assert split["apiVersion"] == "split.smi-spec.io/v1alpha1"
                self.ok += 1


@pytest.fixture
async def reads(api: ApiClient) -> AsyncIterator[Reads]:
    running = Reads(api)
    task = asyncio.create_task(running.run())
    await eventually("reads are under way", 60, lambda: _at_least(running, 5))
    yield running
    running.stopped.set()
    await task


async def _at_least(reads: Reads, count: int) -> bool:
    return reads.ok >= count


async def webhook_pods(api: ApiClient) -> list[client.V1Pod]:
    listed = await client.CoreV1Api(api).list_namespaced_pod(WEFT, label_selector=WEBHOOKS)
    return list(listed.items)


def is_ready(pod: client.V1Pod) -> bool:
    conditions = pod.status.conditions or []
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    return ready and pod.metadata.deletion_timestamp is None


async def ready_replicas(api: ApiClient) -> list[str]:
    return sorted(pod.metadata.name for pod in await webhook_pods(api) if is_ready(pod))


async def two_ready_replicas_but(api: ApiClient, *gone: str) -> bool:
    """Two Ready replicas, none of them `gone`, and `gone` deleted for good."""
    names = {pod.metadata.name for pod in await webhook_pods(api)}
    ready = await ready_replicas(api)
    return len(ready) == 2 and not names & set(gone)


async def evict(api: ApiClient, pod: str) -> None:
    eviction = client.V1Eviction(metadata=client.V1ObjectMeta(name=pod, namespace=WEFT))
    await client.CoreV1Api(api).create_namespaced_pod_eviction(pod, WEFT, eviction)


async def disruptions_allowed(api: ApiClient) -> int:
    budget = await client.PolicyV1Api(api).read_namespaced_pod_disruption_budget(
        "weft-webhooks", WEFT
    )
    allowed: int = budget.status.disruptions_allowed if budget.status else 0
    return allowed


@pytest.fixture(scope="module")
async def split(installed: ClusterInfo, api: ApiClient) -> None:
    local_install.kubectl(installed, "apply", "-f", "-", stdin=json.dumps(SPLIT))

    async def converts() -> bool:
        try:
            await read_at_v1alpha1(api)
        except ApiException:
            return False  # the webhooks publish their caBundle once serving
        return True

    await eventually("a read at v1alpha1 is converted", 60, converts)


async def test_two_replicas_serve_behind_a_disruption_budget(api: ApiClient, split: None) -> None:
    await eventually("two webhook replicas are Ready", 120, lambda: _count_ready(api, 2))
    deployment = await client.AppsV1Api(api).read_namespaced_deployment("weft-webhooks", WEFT)
    assert deployment.spec.replicas == 2
    assert deployment.spec.strategy.rolling_update.max_unavailable == 0
    await eventually("the budget allows one disruption", 60, lambda: _allowed(api, 1))


async def _count_ready(api: ApiClient, count: int) -> bool:
    return len(await ready_replicas(api)) == count


async def _allowed(api: ApiClient, count: int) -> bool:
    return await disruptions_allowed(api) == count


async def test_a_drain_evicts_one_replica_and_conversion_never_fails(
    api: ApiClient, split: None, reads: Reads
) -> None:
    await eventually("the budget allows one disruption", 120, lambda: _allowed(api, 1))
    first, second = await ready_replicas(api)
    await evict(api, first)
    during = reads.ok
    # The budget keeps the other replica: a drain waits for the first one's replacement.
    with pytest.raises(ApiException) as refused:
        await evict(api, second)
    assert refused.value.status == 429
    assert "disruption budget" in refused.value.body
    await eventually(
        f"{first} replaced by a Ready replica", 180, lambda: two_ready_replicas_but(api, first)
    )
    assert reads.ok - during >= 10, "too few reads while a replica was away to say"
    assert reads.failures == []


async def _more_reads(reads: Reads, than: int) -> bool:
    return reads.ok >= than + 10


async def test_a_replica_deleted_outright_leaves_conversion_working(
    api: ApiClient, split: None, reads: Reads
) -> None:
    await eventually("two webhook replicas are Ready", 180, lambda: _count_ready(api, 2))
    first, _ = await ready_replicas(api)
    address = next(p.status.pod_ip for p in await webhook_pods(api) if p.metadata.name == first)
    await client.CoreV1Api(api).delete_namespaced_pod(first, WEFT, grace_period_seconds=0)
    during = reads.ok
    await eventually(
        f"{first} replaced by a Ready replica", 180, lambda: two_ready_replicas_but(api, first)
    )
    assert reads.ok - during >= 10, "too few reads while a replica was away to say"
    # A forced deletion gives the replica the kubelet's 2 s, which its drain mostly fits
    # in; a call the API server had already sent it when it died is lost (the API server
    # retries no conversion). Every other call must be served by the other replica.
    strays = [failure for failure in reads.failures if f"{address}:9443" not in failure]
    assert strays == []
    assert len(reads.failures) <= 1, reads.failures
    after = reads.ok
    await eventually("reads go on after the replacement", 60, lambda: _more_reads(reads, after))
    assert len(reads.failures) <= 1, reads.failures
