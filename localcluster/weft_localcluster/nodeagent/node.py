"""The Node object: registered once, then kept alive by a Lease and status heartbeats."""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.api_client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException

from weft_api import __version__
from weft_localcluster.nodeagent.addressing import NodeNetwork
from weft_localcluster.nodeagent.kube import STRATEGIC_MERGE, call
from weft_localcluster.nodeagent.status import timestamp

log = logging.getLogger(__name__)
LEASE_NAMESPACE = "kube-node-lease"
LEASE_SECONDS = 40
RENEW_EVERY = 10.0
STATUS_EVERY = 60.0
MAX_PODS = "110"


def memory_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    raise RuntimeError("no MemTotal in /proc/meminfo")


def capacity() -> dict[str, str]:
    return {"cpu": str(os.cpu_count() or 1), "memory": f"{memory_kib()}Ki", "pods": MAX_PODS}


def node_conditions(now: float) -> list[dict[str, Any]]:
    def condition(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": timestamp(now),
            "lastTransitionTime": timestamp(now),
        }

    return [
        condition("Ready", "True", "KubeletReady", "the Weft node agent is posting ready status"),
        condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "no pressure"),
        condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "no pressure"),
        condition("PIDPressure", "False", "KubeletHasSufficientPID", "no pressure"),
    ]


def node_object(
    name: str, network: NodeNetwork, kubernetes_version: str, now: float, kubelet_port: int = 0
) -> dict[str, Any]:
    """`kubelet_port`: where the API server reaches the node's kubelet API (0: nowhere)."""
    resources = capacity()
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": _architecture(),
            },
            "annotations": {"weft.dev/bridge": network.bridge},
        },
        "spec": {"podCIDR": str(network.subnet), "podCIDRs": [str(network.subnet)]},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": node_conditions(now),
            # The bridge address is where pods reach the node (and their hostIP).
            "addresses": [
                {"type": "InternalIP", "address": network.gateway},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
            "nodeInfo": {
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kernelVersion": platform.release(),
                "osImage": "Weft local node",
                "containerRuntimeVersion": f"weft-nodeagent://{__version__}",
                "kubeletVersion": kubernetes_version,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": _architecture(),
            },
        },
    }


def _heartbeats(now: float) -> list[dict[str, Any]]:
    """Conditions merged by type: only the heartbeat time changes, transitions stay."""
    return [
        {"type": c["type"], "status": c["status"], "lastHeartbeatTime": c["lastHeartbeatTime"]}
        for c in node_conditions(now)
    ]


def _architecture() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _micro_time(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class NodeHeartbeat:
    def __init__(self, api: ApiClient, name: str) -> None:
        self.core = client.CoreV1Api(api)
        self.leases = client.CoordinationV1Api(api)
        self.name = name

    async def register(self, node: dict[str, Any]) -> None:
        try:
            await call(self.core.create_node(node, _preload_content=False))
        except ApiException as error:
            if error.status != 409:
                raise
        # Status given at creation is dropped by the API server: write it as status.
        await self._patch_status({"status": node["status"]})
        lease = {
            "metadata": {"name": self.name, "namespace": LEASE_NAMESPACE},
            "spec": {
                "holderIdentity": self.name,
                "leaseDurationSeconds": LEASE_SECONDS,
                "renewTime": _micro_time(time.time()),
            },
        }
        try:
            await call(
                self.leases.create_namespaced_lease(LEASE_NAMESPACE, lease, _preload_content=False)
            )
        except ApiException as error:
            if error.status != 409:
                raise

    async def run(self) -> None:
        last_status = time.monotonic()
        while True:
            await asyncio.sleep(RENEW_EVERY)
            try:
                renewal = {"spec": {"renewTime": _micro_time(time.time())}}
                await call(
                    self.leases.patch_namespaced_lease(
                        self.name, LEASE_NAMESPACE, renewal, _preload_content=False
                    )
                )
                if time.monotonic() - last_status >= STATUS_EVERY:
                    await self._patch_status({"status": {"conditions": _heartbeats(time.time())}})
                    last_status = time.monotonic()
            except Exception as error:  # keep beating: the next one may get through
                log.warning("node heartbeat failed: %s", error)

    async def _patch_status(self, body: dict[str, Any]) -> None:
        await call(
            self.core.patch_node_status(
                self.name, body, _content_type=STRATEGIC_MERGE, _preload_content=False
            )
        )
