"""What the schemas and parsers cannot catch, one pure check per rule.

Each check returns problems as sentences naming the field as the manifest spells it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from ipaddress import IPv4Network, IPv6Network

from weft_resources.policy import NetworkSpec, Server
from weft_resources.serviceprofile import ServiceProfile
from weft_resources.split import TrafficSplit
from weft_webhooks.validation.selectors import can_overlap

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_IDENTITY = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")
_Network = IPv4Network | IPv6Network


# Flagger and Argo Rollouts write 2; every client of the root Service gets the endpoints
# of every backend, and the status can name only a few of them.
MAX_SPLIT_BACKENDS = 100


def split_problems(split: TrafficSplit, cluster_domain: str) -> Iterator[str]:
    """A backend may be the root Service itself (Linkerd's booksapp, Argo Rollouts'
    stable Service): its share goes to the root's own endpoints, as linkerd-smi does."""
    backends = split.spec.backends
    if len(backends) > MAX_SPLIT_BACKENDS:
        yield (
            f"spec.backends: {len(backends)} backends, more than the {MAX_SPLIT_BACKENDS} "
            "Weft accepts in one TrafficSplit (every client of the root Service would hold "
            "the endpoints of all of them); split the traffic across fewer Services"
        )
    if sum(backend.weight for backend in backends) == 0:
        yield (
            "spec.backends: every weight is 0, so no backend would receive traffic; "
            "give at least one backend a weight above 0"
        )
    for field, domain in split.written_domains:
        if domain != cluster_domain:
            yield (
                f"{field}: ends in cluster domain {domain!r}, but this cluster's domain is "
                f"{cluster_domain!r}; write .svc.{cluster_domain}, or the Service's name alone"
            )


def profile_problems(profile: ServiceProfile, cluster_domain: str) -> Iterator[str]:
    domain = profile.service.cluster_domain
    if domain != cluster_domain:
        expected = f"{profile.service.name}.{profile.service.namespace}.svc.{cluster_domain}"
        yield (
            f"metadata.name: {profile.name!r} ends in cluster domain {domain!r}, but this "
            f"cluster's domain is {cluster_domain!r}; name it {expected!r}, or the profile "
            "never applies"
        )


def network_problems(networks: Iterable[NetworkSpec], field_path: str) -> Iterator[str]:
    """Every exception lies inside its network, and none removes the whole network."""
    for position, network in enumerate(networks):
        cidr = ipaddress.ip_network(network.cidr)
        for excepted_text in network.except_:
            excepted = ipaddress.ip_network(excepted_text)
            where = f"{field_path}[{position}].except"
            if _inside(cidr, excepted):
                yield f"{where}: {excepted} excludes all of cidr {cidr}, so it admits no one"
            elif not _inside(excepted, cidr):
                yield f"{where}: {excepted} is not inside cidr {cidr}"


def _inside(inner: _Network, outer: _Network) -> bool:
    if isinstance(inner, IPv4Network) and isinstance(outer, IPv4Network):
        return inner.subnet_of(outer)
    if isinstance(inner, IPv6Network) and isinstance(outer, IPv6Network):
        return inner.subnet_of(outer)
    return False  # one IPv4, the other IPv6


def identity_problems(identities: Iterable[str], field_path: str) -> Iterator[str]:
    """Identities are DNS-like names (`web.shop.serviceaccount.identity.cluster.local`),
    `*`, or `*.` followed by such a name."""
    for position, identity in enumerate(identities):
        name = identity.removeprefix("*.")
        if identity != "*" and not _IDENTITY.fullmatch(name):
            yield (
                f"{field_path}[{position}]: {identity!r} is not an identity such as "
                "'web.shop.serviceaccount.identity.cluster.local', '*' or '*.shop.serviceaccount."
                "identity.cluster.local' (lower-case letters, digits, '-' and '.')"
            )


def server_conflicts(server: Server, others: Iterable[Server]) -> Iterator[str]:
    """Another Server of the namespace on the same port for pods this one selects too.

    A port named in one Server and numbered in another is not compared: the names
    resolve per pod, which admission cannot see.
    """
    for other in sorted(others, key=lambda candidate: candidate.name):
        if other.name == server.name or other.namespace != server.namespace:
            continue
        same_port = type(other.spec.port) is type(server.spec.port) and (
            other.spec.port == server.spec.port
        )
        if same_port and can_overlap(server.spec.pod_selector, other.spec.pod_selector):
            yield (
                f"spec.port: Server {other.namespace}/{other.name} already governs port "
                f"{server.spec.port!r} of pods this Server selects too; a pod port takes one "
                "Server: choose another port or pod selectors that cannot match the same pod"
            )
