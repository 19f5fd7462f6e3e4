"""Admission latency of proxy injection, through the real API server.

Prints, on a fresh local cluster with the webhooks running as their ServiceAccount:
- Pod create, injected: `create pod` in a namespace with `weft.dev/inject: enabled`;
  the API server calls the mutating webhook, then stores the injected pod;
- Pod create, baseline: the same Pod in a namespace the webhook is not called for
  (label config.weft.dev/admission-webhooks=disabled); the ratio of the two;
- baseline, injected spec: the injected Pod (injected offline) created there too, to
  tell the webhook call from the cost of storing a pod three times the size;
- the webhook itself: AdmissionReviews posted straight to its HTTPS port (one
  keep-alive connection, as the API server keeps one), pod to JSON Patch.

Creates alternate between the two namespaces so that drift (etcd compaction, the
scheduler's retries) weighs on both alike. The first `--warmup` of each are not counted.

Usage: .venv/bin/python benchmarks/admission_latency.py [--pods 500]
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.api_client import ApiClient

from weft_api import mesh
from weft_cli import local_install
from weft_localcluster import ports
from weft_localcluster.cluster import ClusterInfo, LocalCluster
from weft_localcluster.waiting import eventually
from weft_webhooks.injection import InjectorSettings, apply_patch, inject

INJECTED, BASELINE = "bench-injected", "bench-baseline"
SAME_SIZE = "same-size"  # already injected, created where the webhook is not called


def pod(name: str) -> dict[str, Any]:
    container = {
        "name": "app",
        "image": "ghcr.io/example/web:1.0",
        "ports": [{"containerPort": 8080}],
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {"containers": [container]},
    }


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def describe(name: str, samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return (
        f"{name:<28} p50 {percentile(ms, 0.5):6.2f} ms   p99 {percentile(ms, 0.99):6.2f} ms"
        f"   mean {statistics.fmean(ms):6.2f} ms   (n={len(ms)})"
    )


async def namespaces(core: client.CoreV1Api) -> None:
    enabled = {mesh.INJECT_ANNOTATION: mesh.INJECT_ENABLED}
    skipped = {mesh.ADMISSION_WEBHOOKS_LABEL: "disabled"}
    for name, marks, labels in ((INJECTED, enabled, {}), (BASELINE, {}, skipped)):
        metadata = client.V1ObjectMeta(name=name, annotations=marks, labels=labels)
        await core.create_namespace(client.V1Namespace(metadata=metadata))
    for name in (INJECTED, BASELINE):  # pods need the default ServiceAccount

        async def has_account(namespace: str = name) -> bool:
            return bool((await core.list_namespaced_service_account(namespace)).items)

        await eventually(has_account, f"ServiceAccount default in {name}", within=30)


def injected_offline(name: str) -> dict[str, Any]:
    """The pod as the webhook returns it, for a baseline of the same size."""
    body = pod(name)
    enabled = {mesh.INJECT_ANNOTATION: mesh.INJECT_ENABLED}
    apply_patch(body, inject(body, enabled, InjectorSettings()).patch)
    return body


async def pod_creates(info: ClusterInfo, count: int, warmup: int) -> dict[str, list[float]]:
    configuration = client.Configuration()
    await config.load_kube_config(str(info.kubeconfig), client_configuration=configuration)
    series = {
        INJECTED: (INJECTED, pod),
        BASELINE: (BASELINE, pod),
        SAME_SIZE: (BASELINE, injected_offline),
    }
    timings: dict[str, list[float]] = {name: [] for name in series}
    async with ApiClient(configuration) as api:
        core = client.CoreV1Api(api)
        await namespaces(core)
        for i in range(warmup + count):
            for name, (namespace, make) in series.items():
                started = time.perf_counter()
                created = await core.create_namespaced_pod(namespace, make(f"{name}-{i}"))
                elapsed = time.perf_counter() - started
                if not created.spec.init_containers and name != BASELINE:
                    raise SystemExit(f"pod {name}-{i} in {namespace} was not injected")
                if i >= warmup:
                    timings[name].append(elapsed)
    return timings


async def direct_reviews(port: int, bundle: bytes, count: int, warmup: int) -> list[float]:
    tls = ssl.create_default_context(cadata=bundle.decode())
    url = f"https://{ports.HOST}:{port}/inject"
    timings = []
    connector = aiohttp.TCPConnector(limit=1, ssl=tls)  # one kept-alive connection
    async with aiohttp.ClientSession(connector=connector) as session:
        for i in range(warmup + count):
            request = {
                "uid": str(uuid.uuid4()),
                "operation": "CREATE",
                "namespace": INJECTED,
                "object": pod(f"direct-{i}"),
            }
            review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}
            started = time.perf_counter()
            async with session.post(url, json={**review, "request": request}) as response:
                answer = await response.json()
            elapsed = time.perf_counter() - started
            if answer["response"].get("patchType") != "JSONPatch":
                raise SystemExit(f"no patch in the webhook's answer: {answer}")
            if i >= warmup:
                timings.append(elapsed)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=500, help="creates counted per namespace")
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = LocalCluster(Path(tmp) / "state")
        info = cluster.up(api_port=0)
        try:  # `down` stops the webhooks too: they run as a process of the cluster
            port = ports.pick_free()
            local_install.start_webhooks(info, "weft", port)
            creates = asyncio.run(pod_creates(info, args.pods, args.warmup))
            bundle = (Path(info.state_dir) / f"{local_install.WEBHOOKS}-ca.crt").read_bytes()
            direct = asyncio.run(direct_reviews(port, bundle, args.pods, args.warmup))
        finally:
            cluster.down()
    injected, baseline, same_size = creates[INJECTED], creates[BASELINE], creates[SAME_SIZE]
    print(describe("pod create, injected", injected))
    print(describe("pod create, baseline", baseline))
    print(describe("baseline, injected spec", same_size))
    for name, fraction in (("p50", 0.5), ("p99", 0.99)):
        with_webhook = percentile(injected, fraction)
        for against, samples in (("baseline", baseline), ("injected spec", same_size)):
            without = percentile(samples, fraction)
            print(
                f"ratio {name} vs {against:<14} {with_webhook / without:.2f}x  "
                f"(+{(with_webhook - without) * 1000:.2f} ms per pod)"
            )
    print(describe("webhook itself (direct)", direct))


if __name__ == "__main__":
    main()
