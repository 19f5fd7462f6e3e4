"""Catalog results, kept until an object they read changes.

Each entry is computed once (inside `MeshIndex.recording`) and shared by every proxy
that needs it: the inbound policy of one pod, one Service as the clients of one
namespace see it, the table of cluster IPs. An index change drops exactly the entries
that read the changed object or scanned its kind and namespace; they are recomputed on
the next request for them, once however many proxies hold them.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from weft_api.config import ProxyIdentity
from weft_operator import metrics
from weft_operator.catalog import MeshSettings, build_outbound_service
from weft_operator.catalog.inbound import build_inbound
from weft_operator.catalog.outbound import cluster_ips_of
from weft_operator.config_server.resources import Resource, inbound_resource, outbound_resources
from weft_operator.config_server.targets import ServiceName, normalize_address
from weft_operator.index.store import MeshIndex, Reads
from weft_resources.base import Kind, ObjectKey
from weft_resources.core import Service

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class InboundKey:
    namespace: str
    pod: str
    service_account: str

    @classmethod
    def of(cls, identity: ProxyIdentity) -> InboundKey:
        return cls(identity.namespace, identity.pod, identity.service_account)


@dataclass(frozen=True, slots=True)
class OutboundKey:
    namespace: str
    name: str
    client_namespace: str


@dataclass(frozen=True, slots=True)
class ClusterIpsKey:
    pass


EntryKey = InboundKey | OutboundKey | ClusterIpsKey
Dependency = ObjectKey | tuple[Kind, str | None]


@dataclass(frozen=True, slots=True)
class OutboundEntry:
    service: Resource  # an Outbound resource
    endpoints: Mapping[str, Resource]  # Endpoints resources, by name


class CatalogCache:
    def __init__(self, index: MeshIndex, settings: MeshSettings) -> None:
        self.index = index
        self.settings = settings
        self._values: dict[EntryKey, object] = {}
        self._reads: dict[EntryKey, Reads] = {}
        self._dependents: defaultdict[Dependency, set[EntryKey]] = defaultdict(set)

    def __len__(self) -> int:
        return len(self._values)

    def inbound(self, key: InboundKey) -> Resource:
        identity = ProxyIdentity(key.pod, key.namespace, key.service_account)
        return self._get(
            key,
            Resource,
            lambda: inbound_resource(*build_inbound(self.index, identity, self.settings)),
        )

    def outbound(self, key: OutboundKey) -> OutboundEntry:
        def build() -> OutboundEntry:
            service = build_outbound_service(
                self.index, key.namespace, key.name, key.client_namespace, self.settings
            )
            return OutboundEntry(*outbound_resources(service))

        return self._get(key, OutboundEntry, build)

    def cluster_ips(self) -> Mapping[str, ServiceName]:
        """Which Service owns each cluster IP (addresses normalized)."""

        def build() -> dict[str, ServiceName]:
            table = {}
            for service in self.index.objects(Service):
                for address in cluster_ips_of(service):
                    normalized = normalize_address(address)
                    if normalized is not None:
                        table[normalized] = ServiceName(service.namespace, service.name)
            return table

        return self._get(ClusterIpsKey(), dict, build)

    def invalidate(self, changed: ObjectKey) -> set[EntryKey]:
        """Drop the entries that depend on `changed`; returns them."""
        dropped = (
            self._dependents.get(changed, set())
            | self._dependents.get((changed.kind, changed.namespace), set())
            | self._dependents.get((changed.kind, None), set())
        )
        self.discard(dropped)
        return dropped

    def users(self, key: ObjectKey) -> set[EntryKey]:
        """Entries whose result took `key` into account (see `Reads.used`)."""
        return {entry for entry in self._dependents.get(key, ()) if key in self._reads[entry].used}

    def discard(self, keys: Iterable[EntryKey]) -> None:
        for key in list(keys):
            reads = self._reads.pop(key, None)
            self._values.pop(key, None)
            if reads is None:
                continue
            for dependency in _dependencies(reads):
                dependents = self._dependents.get(dependency)
                if dependents is not None:
                    dependents.discard(key)
                    if not dependents:
                        del self._dependents[dependency]

    def _get(self, key: EntryKey, kind: type[T], build: Callable[[], T]) -> T:
        found = self._values.get(key)
        if found is None:
            started = time.perf_counter()
            with self.index.recording() as reads:
                found = build()
            metrics.CATALOG_SECONDS.observe(time.perf_counter() - started)
            self._values[key] = found
            self._reads[key] = reads
            for dependency in _dependencies(reads):
                self._dependents[dependency].add(key)
        assert isinstance(found, kind)
        return found


def _dependencies(reads: Reads) -> Iterable[Dependency]:
    yield from reads.used
    yield from reads.listed
