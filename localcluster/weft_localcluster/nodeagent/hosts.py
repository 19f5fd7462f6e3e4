"""The pod's /etc/hosts and /etc/resolv.conf: cluster names without a DNS server.

A hosts file cannot do search domains, so each Service gets its full and short names:
`name.ns.svc.cluster.local` (also with the final dot, which skips search domains
elsewhere), `name.ns.svc`, `name.ns`, and `name` alone for pods of its own namespace.
A Service with a ClusterIP maps to it; a headless Service maps to its ready endpoints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SERVICE_NAME_LABEL = "kubernetes.io/service-name"

# No nameserver is reachable from a pod: lookups that miss the hosts file fail at once
# on the pod's own loopback instead of waiting on (or leaking to) the machine's resolver.
RESOLV_CONF = (
    "# Written by the Weft node agent: names come from /etc/hosts only.\n"
    "nameserver 127.0.0.1\n"
    "options timeout:1 attempts:1\n"
)


@dataclass(frozen=True, order=True)
class ServiceAddresses:
    namespace: str
    name: str
    addresses: tuple[str, ...]


def service_addresses(
    services: Iterable[Mapping[str, Any]], slices: Iterable[Mapping[str, Any]]
) -> list[ServiceAddresses]:
    """Where each Service name should resolve, sorted by namespace and name."""
    endpoints: dict[tuple[str, str], list[str]] = {}
    for endpoint_slice in slices:
        metadata = endpoint_slice.get("metadata") or {}
        service = (metadata.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if service is None:
            continue
        found = endpoints.setdefault((metadata.get("namespace", ""), service), [])
        for endpoint in endpoint_slice.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is not False:
                found.extend(endpoint.get("addresses") or [])
    result = []
    for service in services:
        metadata, spec = service.get("metadata") or {}, service.get("spec") or {}
        key = (metadata.get("namespace", ""), metadata.get("name", ""))
        if spec.get("type") == "ExternalName":
            continue  # a CNAME, which a hosts file cannot express
        if spec.get("clusterIP") == "None":
            addresses = tuple(sorted(set(endpoints.get(key, ()))))
        else:
            addresses = tuple(spec.get("clusterIPs") or [spec.get("clusterIP") or ""])
        result.append(ServiceAddresses(*key, tuple(a for a in addresses if a)))
    return sorted(result)


def render_hosts(
    pod: Mapping[str, Any], pod_ip: str, services: Iterable[ServiceAddresses], domain: str
) -> str:
    metadata, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    namespace = metadata.get("namespace", "")
    hostname = spec.get("hostname") or metadata.get("name", "")
    own_names = [hostname]
    if spec.get("subdomain"):
        own_names.insert(0, f"{hostname}.{spec['subdomain']}.{namespace}.svc.{domain}")
    lines = [
        "# Kubernetes-managed hosts file (Weft node agent): kept current as Services change.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        f"{pod_ip}\t{' '.join(own_names)}",
    ]
    for service in services:
        fqdn = f"{service.name}.{service.namespace}.svc.{domain}"
        names = [fqdn, f"{fqdn}.", f"{service.name}.{service.namespace}.svc"]
        names.append(f"{service.name}.{service.namespace}")
        if service.namespace == namespace:
            names.append(service.name)
        lines += [f"{address}\t{' '.join(names)}" for address in service.addresses]
    return "\n".join(lines) + "\n"
