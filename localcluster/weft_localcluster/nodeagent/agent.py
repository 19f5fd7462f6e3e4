"""The node agent: registers the Node, runs the pods bound to it, keeps hosts files and
ClusterIP rules (service_nat.py) current."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.api_client import ApiClient

from weft_localcluster.nodeagent import api_access, kubelet_api, node, service_nat
from weft_localcluster.nodeagent.addressing import AddressPool, NodeNetwork
from weft_localcluster.nodeagent.background import spawn
from weft_localcluster.nodeagent.cache import Event
from weft_localcluster.nodeagent.context import AgentContext
from weft_localcluster.nodeagent.hosts import ServiceAddresses, render_hosts, service_addresses
from weft_localcluster.nodeagent.images import ImageTable
from weft_localcluster.nodeagent.kube import Informer, Kube
from weft_localcluster.nodeagent.pod_worker import PodWorker, grace_of

log = logging.getLogger(__name__)
HOSTS_DEBOUNCE = 0.1


@dataclass(frozen=True)
class AgentSettings:
    node_name: str
    kubernetes_version: str
    service_cidr: str
    cluster_domain: str
    logs_dir: Path
    crash_backoff: float = 10.0
    kubelet: kubelet_api.KubeletSettings | None = None  # None: no kubelet API served


class Agent:
    def __init__(
        self,
        settings: AgentSettings,
        node_api: ApiClient,
        proxy_api: ApiClient,
        network: NodeNetwork,
        images: ImageTable,
    ) -> None:
        self.settings = settings
        self.network = network
        self.heartbeat = node.NodeHeartbeat(node_api, settings.node_name)
        self.context = AgentContext(
            kube=Kube(node_api, settings.node_name),
            images=images,
            network=network,
            pool=AddressPool(network.subnet),
            service_cidr=settings.service_cidr,
            allocatable=node.capacity(),
            logs_dir=settings.logs_dir,
            hosts_for=self.hosts_for,
            service_rules=self.service_rules,
            crash_backoff=settings.crash_backoff,
        )
        self.workers: dict[str, PodWorker] = {}
        self._hosts_dirty = asyncio.Event()
        self.pods = Informer(
            "pods",
            client.CoreV1Api(node_api).list_pod_for_all_namespaces,
            self._on_pod,
            field_selector=f"spec.nodeName={settings.node_name}",
        )
        self.services = Informer(
            "services",
            client.CoreV1Api(proxy_api).list_service_for_all_namespaces,
            self._on_service,
        )
        # All slices, not only the controller's headless ones: a selector-less headless
        # Service with a hand-made slice (the node's own address) resolves the same way.
        self.slices = Informer(
            "endpointslices",
            client.DiscoveryV1Api(proxy_api).list_endpoint_slice_for_all_namespaces,
            self._on_service,
        )

    async def run(self) -> None:
        settings = self.settings
        async with asyncio.TaskGroup() as tasks:
            if settings.kubelet is not None:
                kubelet = kubelet_api.serve(settings.kubelet, settings.logs_dir, self.find_pod)
                tasks.create_task(kubelet)
            await self.heartbeat.register(
                node.node_object(
                    settings.node_name,
                    self.network,
                    settings.kubernetes_version,
                    time.time(),
                    kubelet_port=settings.kubelet.port if settings.kubelet else 0,
                )
            )
            log.info("node %s registered on bridge %s", settings.node_name, self.network.bridge)
            tasks.create_task(self.heartbeat.run())
            tasks.create_task(self.services.run())
            tasks.create_task(self.slices.run())
            # Pods start once names resolve: their first hosts file is complete.
            await self.services.synced.wait()
            await self.slices.synced.wait()
            tasks.create_task(self.pods.run())
            tasks.create_task(self._keep_hosts_current())

    async def shut_down(self, grace_cap: float) -> None:
        """Stop every pod (without deleting it from the API), within `grace_cap` seconds."""
        workers = list(self.workers.values())
        for worker in workers:
            worker.request_stop(min(grace_of(worker.pod), grace_cap), delete=False)
        await asyncio.gather(*(w.task for w in workers if w.task), return_exceptions=True)

    # -- pods -------------------------------------------------------------------------
    def _on_pod(self, event: Event) -> None:
        kind, pod = event
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if kind == "DELETED":
            if worker is not None:  # deleted outright (grace 0): stop what still runs
                worker.request_stop(grace_of(pod), delete=False)
            return
        if worker is None:
            if pod["metadata"].get("deletionTimestamp"):
                self._forget(pod)  # nothing of it runs here: delete it for good
                return
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return  # finished under an earlier agent
            worker = PodWorker(self.context, pod)
            self.workers[uid] = worker
            worker.start()
            assert worker.task is not None
            worker.task.add_done_callback(lambda _: self.workers.pop(uid, None))
        worker.update(pod)

    def find_pod(self, namespace: str, name: str) -> PodWorker | None:
        """The worker of the pod of that name here (the newest, if it was recreated)."""
        found = None
        for worker in self.workers.values():
            meta = worker.pod["metadata"]
            if (meta["namespace"], meta["name"]) == (namespace, name):
                found = worker
        return found

    def _forget(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        spawn(self.context.kube.delete_pod(meta["namespace"], meta["name"], meta["uid"]))

    # -- names --------------------------------------------------------------------------
    def _on_service(self, event: Event) -> None:
        self._hosts_dirty.set()

    def _addresses(self) -> list[ServiceAddresses]:
        addresses = service_addresses(
            self.services.cache.objects.values(), self.slices.cache.objects.values()
        )
        return api_access.with_api_service(addresses, self.network.gateway)

    def hosts_for(self, pod: Mapping[str, Any], pod_ip: str) -> str:
        return render_hosts(pod, pod_ip, self._addresses(), self.settings.cluster_domain)

    def service_rules(self) -> list[str]:
        """WEFT-SERVICES for every pod: ClusterIPs to endpoints, `kubernetes` to the relay."""
        relay = {("default", "kubernetes"): (self.network.gateway, api_access.SERVICE_PORT)}
        ports = service_nat.service_ports(
            self.services.cache.objects.values(), self.slices.cache.objects.values(), relay
        )
        return service_nat.chain_rules(ports)

    async def _keep_hosts_current(self) -> None:
        while True:
            await self._hosts_dirty.wait()
            await asyncio.sleep(HOSTS_DEBOUNCE)
            self._hosts_dirty.clear()
            try:
                addresses = self._addresses()
                for worker in list(self.workers.values()):
                    text = render_hosts(
                        worker.pod, worker.pod_ip, addresses, self.settings.cluster_domain
                    )
                    worker.write_hosts(text)
                rules = self.service_rules()
                workers = list(self.workers.values())
                await asyncio.gather(*(worker.sync_services(rules) for worker in workers))
            except Exception:  # never stop keeping names current
                log.exception("hosts files or ClusterIP rules not updated")
