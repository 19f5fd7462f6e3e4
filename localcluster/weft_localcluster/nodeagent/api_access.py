"""How pods reach the API server: the `kubernetes` Service, as kubelet and kube-proxy give it.

A real node gives every container the variables KUBERNETES_SERVICE_HOST/PORT and the
ServiceAccount's files at /var/run/secrets/kubernetes.io/serviceaccount, which in-cluster
clients (kubernetes-asyncio's `load_incluster_config`, kopf's service-account login)
read from those fixed places. Here the API server listens on 127.0.0.1 only, where a
pod cannot reach it, and there is no kube-proxy, so the agent provides the three pieces:

- a relay: a TCP listener on the bridge's address (the node as pods see it), port 443,
  that splices each connection to the API server on loopback. TLS goes end to end
  (pod <-> API server), so the relay sees no token and the API server authenticates
  the pod's own ServiceAccount token. The listener is on the project's bridge only:
  no forwarding, route or NAT in the root namespace.
- the name: in the pods' hosts files the `kubernetes` Service (kubernetes.default.svc)
  maps to the bridge's address (its ClusterIP is translated to the same relay), and the
  containers get KUBERNETES_SERVICE_HOST=kubernetes.default.svc: a name the API
  server's certificate already carries, so no certificate has to know the bridge.
- the files: `ip netns exec` gives each container a mount namespace of its own (made
  a slave of the machine's, so nothing propagates back); in it the ServiceAccount
  volume the API server's admission adds to every pod (kube-api-access-*) is bound,
  read-only, at its standard path. Other volumes keep the agent's path rewriting
  (mounts.py). The mount point is an empty folder the agent creates once on the
  machine (/run/secrets/kubernetes.io/serviceaccount, on /run's tmpfs); nothing is
  ever written there in the machine's own namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable
from urllib.parse import urlsplit

from weft_localcluster.nodeagent.hosts import ServiceAddresses
from weft_localcluster.nodeagent.mounts import Mount

log = logging.getLogger(__name__)

SERVICE_HOST = "kubernetes.default.svc"
SERVICE_PORT = 443
_CHUNK = 64 * 1024


def service_env() -> dict[str, str]:
    """The variables every container gets for the `kubernetes` Service (spec env wins)."""
    return {
        "KUBERNETES_SERVICE_HOST": SERVICE_HOST,
        "KUBERNETES_SERVICE_PORT": str(SERVICE_PORT),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(SERVICE_PORT),
    }


def with_api_service(addresses: Iterable[ServiceAddresses], node_ip: str) -> list[ServiceAddresses]:
    """The `kubernetes` Service resolves to the relay on the node's bridge address."""
    return [
        ServiceAddresses(a.namespace, a.name, (node_ip,))
        if (a.namespace, a.name) == ("default", "kubernetes")
        else a
        for a in addresses
    ]


def ensure_mount_points(binds: Iterable[Mount]) -> None:
    for bind in binds:
        os.makedirs(bind.container_path, exist_ok=True)


def api_server_address(server_url: str) -> tuple[str, int]:
    """`https://127.0.0.1:6443` -> (`127.0.0.1`, 6443)."""
    parts = urlsplit(server_url)
    return parts.hostname or "127.0.0.1", parts.port or 443


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def _splice(
    target: tuple[str, int], client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
) -> None:
    try:
        upstream_reader, upstream = await asyncio.open_connection(*target)
    except OSError as error:
        log.warning("API relay: cannot reach the API server at %s:%d: %s", *target, error)
        client.close()
        return
    try:
        await asyncio.gather(_pipe(client_reader, upstream), _pipe(upstream_reader, client))
    finally:
        for writer in (client, upstream):
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


async def start_relay(node_ip: str, server_url: str) -> asyncio.Server:
    """Listen on `node_ip`:443 and splice every connection to the API server."""
    target = api_server_address(server_url)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _splice(target, reader, writer)

    server = await asyncio.start_server(handle, node_ip, SERVICE_PORT, reuse_address=True)
    log.info("pods reach the API server through %s:%d", node_ip, SERVICE_PORT)
    return server
