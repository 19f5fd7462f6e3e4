"""What a proxy subscribes to: a Service by authority, or a cluster IP."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

MAX_TARGET_LENGTH = 300  # an authority is at most 253 characters, plus a port


@dataclass(frozen=True, slots=True)
class ServiceName:
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class ClusterIp:
    address: str  # normalized, as `ipaddress` writes it


Target = ServiceName | ClusterIp


def parse_target(target: str, cluster_domain: str) -> Target | None:
    """`name.ns.svc.<cluster-domain>[.][:port]`, or `ip`, `ip:port`, `[ipv6]:port`;
    None for anything else (such a target resolves to no Service)."""
    host = _host(target.strip().lower())
    address = _address(host)
    if address is not None:
        return ClusterIp(address)
    labels = host.rstrip(".").split(".")
    suffix = ["svc", *cluster_domain.split(".")]
    if len(labels) != 2 + len(suffix) or labels[2:] != suffix or not all(labels[:2]):
        return None
    return ServiceName(namespace=labels[1], name=labels[0])


def normalize_address(address: str) -> str | None:
    return _address(address)


def _host(target: str) -> str:
    if target.startswith("["):  # [ipv6]:port
        return target[1:].partition("]")[0]
    host, colon, port = target.rpartition(":")
    if colon and port.isdigit() and ":" not in host:
        return host
    return target


def _address(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None
