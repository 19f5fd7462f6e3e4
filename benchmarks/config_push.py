"""Config push at scale: N simulated proxies on the operator's config server.

On a fresh local cluster, the operator runs as its ServiceAccount with its config
server on loopback. N proxies (grpc.aio clients of weft_proxy's ConfigClient, one
channel each, all in this process) subscribe to a Service with a TrafficSplit. Then,
for each round, the split's weights change through the API server, and the script
prints:
- push: from the API write until each proxy has accepted (and ACKs) the new weights:
  p50, p99 and the last proxy;
- the operator's memory per connected proxy: (RSS with N proxies connected and
  subscribed - RSS before any) / N.

Usage: .venv/bin/python benchmarks/config_push.py [--proxies 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.api_client import ApiClient

from weft_api.config import ProxyIdentity
from weft_cli import local_install
from weft_localcluster import ports
from weft_localcluster.cluster import ClusterInfo, LocalCluster
from weft_proxy.config_client.assembler import ProxySnapshot
from weft_proxy.config_client.backoff import Backoff
from weft_proxy.config_client.client import ConfigClient

NAMESPACE = "bench"
AUTHORITY = f"web.{NAMESPACE}.svc.cluster.local:80"


def manifests() -> str:
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    ]
    for index, name in enumerate(("web", "web-primary", "web-canary")):
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
            }
        )
        docs.append(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{name}-1",
                    "namespace": NAMESPACE,
                    "labels": {"kubernetes.io/service-name": name},
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [f"10.244.{index}.{i}"]} for i in range(1, 4)],
                "ports": [{"name": "http", "port": 8080}],
            }
        )
    docs.append(split_manifest(canary=0))
    return "\n---\n".join(json.dumps(doc) for doc in docs)


def split_manifest(canary: int) -> dict[str, Any]:
    return {
        "apiVersion": "split.smi-spec.io/v1alpha4",
        "kind": "TrafficSplit",
        "metadata": {"name": "web", "namespace": NAMESPACE},
        "spec": {
            "service": "web",
            "backends": [
                {"service": "web-primary", "weight": 100 - canary},
                {"service": "web-canary", "weight": canary},
            ],
        },
    }


def canary_weight(snapshot: ProxySnapshot) -> int | None:
    service = snapshot.targets.get(AUTHORITY)
    if service is None:
        return None
    return next((b.weight for b in service.backends if b.name == "web-canary"), None)


async def accepts(proxy: ConfigClient, canary: int, accepted: list[float]) -> None:
    """Note when the proxy accepted the new weights (it sends its ACK right after)."""
    await proxy.store.wait_for(lambda s: canary_weight(s) == canary)
    accepted.append(time.monotonic())


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def settle_rss(pid: int, seconds: float = 3.0) -> float:
    await asyncio.sleep(seconds)
    return rss_mib(pid)


async def measure(info: ClusterInfo, operator_pid: int, config_port: int, args: Any) -> None:
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(info.kubeconfig), client_configuration=configuration
    )
    async with ApiClient(configuration) as api:
        custom = client.CustomObjectsApi(api)
        await asyncio.sleep(3)  # the operator's index settles and its server serves
        before = await settle_rss(operator_pid)
        proxies = [
            ConfigClient(
                f"127.0.0.1:{config_port}",
                ProxyIdentity(pod=f"client-{i}", namespace="clients", service_account="default"),
                backoff=Backoff(base=0.5, cap=5.0),
            )
            for i in range(args.proxies)
        ]
        for proxy in proxies:
            proxy.subscribe(AUTHORITY)
        tasks = [asyncio.create_task(proxy.run()) for proxy in proxies]
        started = time.monotonic()
        await asyncio.gather(*(p.store.wait_for(lambda s: canary_weight(s) == 0) for p in proxies))
        connected = time.monotonic() - started
        after = await settle_rss(operator_pid)
        rounds: list[list[float]] = []
        for round_ in range(1, args.rounds + 1):
            canary = 10 * round_
            accepted: list[float] = []
            waiters = [asyncio.create_task(accepts(p, canary, accepted)) for p in proxies]
            await asyncio.sleep(0.5)  # waiters parked
            written = time.monotonic()
            await custom.patch_namespaced_custom_object(
                "split.smi-spec.io",
                "v1alpha4",
                NAMESPACE,
                "trafficsplits",
                "web",
                {"spec": split_manifest(canary)["spec"]},
                _content_type="application/merge-patch+json",
            )
            await asyncio.wait_for(asyncio.gather(*waiters), 60)
            rounds.append(sorted(t - written for t in accepted))
            await asyncio.sleep(1.5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    report(args.proxies, connected, before, after, rounds)


def report(
    proxies: int, connected: float, before: float, after: float, rounds: list[list[float]]
) -> None:
    print(f"proxies: {proxies} (one grpc.aio channel and stream each, one process)")
    print(f"all connected, subscribed and configured in {connected:.1f} s")
    per_proxy = (after - before) * 1024 / proxies
    print(f"operator RSS: {before:.0f} MiB before, {after:.0f} MiB with the proxies")
    print(f"memory per connected proxy: {per_proxy:.0f} KiB")
    print("API write -> every proxy accepted the new weights (ms):")
    for number, delays in enumerate(rounds, 1):
        ms = [d * 1000 for d in delays]
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        print(
            f"  round {number}: p50 {statistics.median(ms):.0f}, p99 {p99:.0f}, last {ms[-1]:.0f}"
        )
    everything = sorted(d * 1000 for delays in rounds for d in delays)
    p99 = everything[min(len(everything) - 1, int(len(everything) * 0.99))]
    print(f"  all rounds: p50 {statistics.median(everything):.0f}, p99 {p99:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--proxies", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = LocalCluster(Path(tmp) / "state")
        info = cluster.up(api_port=0)
        try:  # `down` stops the operator too: it runs as a process of the cluster
            config_port = ports.pick_free()
            operator = local_install.start_operator(
                info, "weft", ports.pick_free(), config_port=config_port
            )
            local_install.kubectl(info, "apply", "-f", "-", stdin=manifests())
            asyncio.run(measure(info, operator.pid, config_port, args))
        finally:
            cluster.down()


if __name__ == "__main__":
    main()
