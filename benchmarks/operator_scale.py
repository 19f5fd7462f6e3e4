"""Operator at scale: N Services, each with a TrafficSplit and a ServiceProfile.

Prints, on a fresh local cluster with the operator running as its ServiceAccount:
- apply: how long the API server takes to take every object (the baseline: Weft can
  not be faster than the objects' own creation);
- all-Accepted: from the start of the apply until every TrafficSplit and
  ServiceProfile carries Accepted=True and Ready=True for its generation;
- catalog: the time to compute one proxy's whole configuration from an index holding
  every object (as the config server will), over repeated runs;
- the operator's resident memory once converged.

Usage: .venv/bin/python benchmarks/operator_scale.py [--services 500]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from weft_api.config import ProxyIdentity
from weft_cli import local_install
from weft_localcluster import ports
from weft_localcluster.cluster import ClusterInfo, LocalCluster
from weft_operator.catalog import build_proxy_config
from weft_operator.index.store import MeshIndex
from weft_resources.registry import parse_resource

NAMESPACE = "bench"


def manifests(count: int) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    ]
    for i in range(count):
        apex = f"svc-{i}"
        for name in (apex, f"{apex}-primary", f"{apex}-canary"):
            docs.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": name, "namespace": NAMESPACE},
                    "spec": {"selector": {"app": name}, "ports": [{"port": 8080}]},
                }
            )
        docs.append(
            {
                "apiVersion": "split.smi-spec.io/v1alpha1",
                "kind": "TrafficSplit",
                "metadata": {"name": apex, "namespace": NAMESPACE},
                "spec": {
                    "service": apex,
                    "backends": [
                        {"service": f"{apex}-primary", "weight": "900m"},
                        {"service": f"{apex}-canary", "weight": "100m"},
                    ],
                },
            }
        )
        docs.append(
            {
                "apiVersion": "linkerd.io/v1alpha2",
                "kind": "ServiceProfile",
                "metadata": {
                    "name": f"{apex}.{NAMESPACE}.svc.cluster.local",
                    "namespace": NAMESPACE,
                },
                "spec": {
                    "routes": [
                        {
                            "name": "GET /items/{id}",
                            "condition": {"method": "GET", "pathRegex": "/items/[^/]*"},
                            "isRetryable": True,
                            "timeout": "300ms",
                        },
                        {
                            "name": "POST /items",
                            "condition": {"method": "POST", "pathRegex": "/items"},
                            "responseClasses": [
                                {"condition": {"status": {"min": 500}}, "isFailure": True}
                            ],
                        },
                    ],
                    "retryBudget": {"retryRatio": 0.2, "minRetriesPerSecond": 10, "ttl": "10s"},
                },
            }
        )
    return docs


def ready_count(info: ClusterInfo) -> int:
    out = local_install.kubectl(
        info, "get", "trafficsplits,serviceprofiles", "-n", NAMESPACE, "-o", "json"
    )
    items = json.loads(out)["items"]
    ready = 0
    for item in items:
        generation = item["metadata"]["generation"]
        for c in item.get("status", {}).get("conditions", []):
            if c["type"] == "Ready" and c["status"] == "True":
                ready += c["observedGeneration"] == generation
    return ready


def catalog_times(info: ClusterInfo, runs: int) -> tuple[list[float], int]:
    index = MeshIndex()
    for resource in ("services", "trafficsplits", "serviceprofiles"):
        out = local_install.kubectl(info, "get", resource, "-n", NAMESPACE, "-o", "json")
        for item in json.loads(out)["items"]:
            index.apply(parse_resource(item))
    identity = ProxyIdentity(pod="client-0", namespace=NAMESPACE, service_account="default")
    times = []
    outbound = 0
    for _ in range(runs):
        started = time.perf_counter()
        config = build_proxy_config(index, identity)
        times.append(time.perf_counter() - started)
        outbound = len(config.outbound)
    return times, outbound


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--catalog-runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = LocalCluster(Path(tmp) / "state")
        info = cluster.up(api_port=0)
        try:  # `down` stops the operator too: it runs as a process of the cluster
            operator = local_install.start_operator(info, "weft", ports.pick_free())
            docs = manifests(args.services)
            body = "\n---\n".join(json.dumps(d) for d in docs)
            started = time.monotonic()
            local_install.kubectl(info, "apply", "-f", "-", stdin=body)
            applied = time.monotonic() - started
            want = 2 * args.services
            while True:
                ready = ready_count(info)
                if ready == want:
                    break
                if time.monotonic() - started > 1800:
                    raise SystemExit(f"gave up: {ready}/{want} Ready after 30 minutes")
                time.sleep(0.5)
            converged = time.monotonic() - started
            memory = rss_mib(operator.pid)
            times, outbound = catalog_times(info, args.catalog_runs)
        finally:
            cluster.down()
    ms = sorted(t * 1000 for t in times)
    print(f"objects applied: {len(docs)} ({args.services} Services x3, TrafficSplits, Profiles)")
    print(f"apply (API server baseline): {applied:.1f} s")
    print(f"all {want} Accepted+Ready:    {converged:.1f} s  ({converged / applied:.2f}x apply)")
    print(f"operator RSS converged:      {memory:.0f} MiB")
    print(
        f"catalog per proxy ({outbound} outbound services, {len(ms)} runs): "
        f"median {statistics.median(ms):.1f} ms, min {ms[0]:.1f} ms, max {ms[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
