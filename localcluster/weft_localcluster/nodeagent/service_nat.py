"""ClusterIPs inside a pod's namespace, as kube-proxy's iptables mode makes them (pure).

The node agent gives every pod, meshed or not, one chain of the nat table, WEFT-SERVICES,
jumped to from OUTPUT: a DNAT from each ClusterIP:port to the ready endpoints of the
Service's EndpointSlices, chosen at random (`-m statistic --mode random`, probability
1/n, 1/(n-1), ... 1 down the list, as kube-proxy writes it). Nothing of it is in the
root namespace; the packets leave the pod for a pod address on the bridge.

Order in OUTPUT: proxy-init's jump (WEFT_OUTBOUND, REDIRECT to the proxy) comes first,
so a meshed pod's proxy still sees the ClusterIP the app dialled; the proxy's own
connections, which proxy-init exempts by UID, then get the DNAT. Every script below
deletes the jump to WEFT-SERVICES and appends it again, in the same transaction: the jump
ends last, after proxy-init's, whichever was installed first (the agent applies the script
again once the init containers are done).

A ClusterIP with no endpoints is not translated: the filter table's REJECT on the service
CIDR (network.py) refuses it at once, so clients fail fast.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from weft_localcluster.nodeagent.hosts import SERVICE_NAME_LABEL

CHAIN = "WEFT-SERVICES"
_JUMP = re.compile(rf"^-A OUTPUT (?:.* )?-j {CHAIN}(?:\s|$)")
_PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}


@dataclass(frozen=True, order=True)
class ServicePort:
    """One ClusterIP:port and where it leads: (address, port) endpoints, sorted."""

    namespace: str
    name: str
    port_name: str
    cluster_ip: str
    protocol: str  # tcp, udp, sctp
    port: int
    endpoints: tuple[tuple[str, int], ...]


def service_ports(
    services: Iterable[Mapping[str, Any]],
    slices: Iterable[Mapping[str, Any]],
    overrides: Mapping[tuple[str, str], tuple[str, int]] | None = None,
) -> list[ServicePort]:
    """Every ClusterIP port of `services`, with the ready endpoints of their slices.

    `overrides` sends every port of a Service (namespace, name) to one address: the
    `kubernetes` Service goes to the API relay on the bridge (api_access.py).
    """
    overrides = overrides or {}
    found: dict[tuple[str, str, str, str], set[tuple[str, int]]] = {}
    for endpoint_slice in slices:
        metadata = endpoint_slice.get("metadata") or {}
        service = (metadata.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if service is None or endpoint_slice.get("addressType", "IPv4") != "IPv4":
            continue
        addresses = [
            address
            for endpoint in endpoint_slice.get("endpoints") or []
            if (endpoint.get("conditions") or {}).get("ready") is not False
            for address in endpoint.get("addresses") or []
        ]
        for slice_port in endpoint_slice.get("ports") or []:
            if slice_port.get("port") is None:
                continue
            key = (
                metadata.get("namespace", ""),
                service,
                slice_port.get("name") or "",
                slice_port.get("protocol") or "TCP",
            )
            found.setdefault(key, set()).update((a, int(slice_port["port"])) for a in addresses)
    result = []
    for service in services:
        metadata, spec = service.get("metadata") or {}, service.get("spec") or {}
        cluster_ip = spec.get("clusterIP") or ""
        if cluster_ip in ("", "None") or ":" in cluster_ip or spec.get("type") == "ExternalName":
            continue
        namespace, name = metadata.get("namespace", ""), metadata.get("name", "")
        for port in spec.get("ports") or []:
            protocol = port.get("protocol") or "TCP"
            if protocol not in _PROTOCOLS:
                continue
            port_name = port.get("name") or ""
            override = overrides.get((namespace, name))
            if override is not None:
                endpoints: tuple[tuple[str, int], ...] = (override,)
            else:
                endpoints = tuple(sorted(found.get((namespace, name, port_name, protocol), ())))
            result.append(
                ServicePort(
                    namespace,
                    name,
                    port_name,
                    cluster_ip,
                    _PROTOCOLS[protocol],
                    int(port["port"]),
                    endpoints,
                )
            )
    return sorted(result)


def chain_rules(ports: Iterable[ServicePort]) -> list[str]:
    """The rules of WEFT-SERVICES, `-A` lines; ports without endpoints get none."""
    lines = []
    for service in ports:
        match = f"-d {service.cluster_ip}/32 -p {service.protocol} -m {service.protocol} "
        match += f"--dport {service.port}"
        label = f"{service.namespace}/{service.name}"
        if service.port_name:
            label += f":{service.port_name}"
        count = len(service.endpoints)
        for index, (address, port) in enumerate(service.endpoints):
            left = count - index
            chance = (
                "" if left == 1 else f" -m statistic --mode random --probability {1 / left:.10f}"
            )
            lines.append(
                f'-A {CHAIN} {match} -m comment --comment "{label}"{chance}'
                f" -j DNAT --to-destination {address}:{port}"
            )
    return lines


def restore_script(rules: list[str], current_nat: str) -> str:
    """iptables-restore --noflush input: WEFT-SERVICES replaced, its jump last in OUTPUT.

    `current_nat` is `iptables-save -t nat` in the pod's namespace; declaring the chain
    flushes it, and the jumps found there are deleted before the one appended.
    """
    deletions = ["-D" + line[2:] for line in current_nat.splitlines() if _JUMP.match(line)]
    lines = [
        "*nat",
        f":{CHAIN} - [0:0]",
        *deletions,
        *rules,
        f'-A OUTPUT -m comment --comment "weft node: ClusterIPs to endpoints" -j {CHAIN}',
        "COMMIT",
    ]
    return "\n".join(lines) + "\n"


def in_order(current_nat: str) -> bool:
    """Whether the jump to WEFT-SERVICES is the last jump of OUTPUT, after proxy-init's."""
    output = [line for line in current_nat.splitlines() if line.startswith("-A OUTPUT ")]
    jumps = [index for index, line in enumerate(output) if _JUMP.match(line)]
    return jumps == [len(output) - 1]
