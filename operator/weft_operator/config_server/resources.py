"""Resources as the server holds them: built once from the catalog, shared by every proxy
that needs them, never mutated, each versioned by a hash of its content."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

from google.protobuf.message import Message

from weft_api import config_proto
from weft_api.config import Endpoint, InboundServer, OutboundService
from weft_api.proto import config_pb2 as pb
from weft_api.proto import discovery_pb2 as dpb

ResourceType: TypeAlias = dpb.ResourceType.ValueType
INBOUND = dpb.RESOURCE_TYPE_INBOUND
OUTBOUND = dpb.RESOURCE_TYPE_OUTBOUND
ENDPOINTS = dpb.RESOURCE_TYPE_ENDPOINTS
TRUST_BUNDLE = dpb.RESOURCE_TYPE_TRUST_BUNDLE

EndpointKey = tuple[str, int]  # address, port


@dataclass(frozen=True, slots=True, order=True)
class Ref:
    type: ResourceType
    name: str

    def __str__(self) -> str:
        return f"{dpb.ResourceType.Name(self.type)}/{self.name}"


INBOUND_REF = Ref(INBOUND, "")
TRUST_BUNDLE_REF = Ref(TRUST_BUNDLE, "")


@dataclass(frozen=True, slots=True, eq=False)
class EndpointSet:
    """The endpoints of one Service port, by address and port, in canonical order."""

    endpoints: Mapping[EndpointKey, pb.Endpoint]


Body = pb.Inbound | dpb.Outbound | EndpointSet | dpb.TrustBundle


@dataclass(frozen=True, slots=True, eq=False)
class Resource:
    version: str
    body: Body


def content_version(chunks: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(len(chunk).to_bytes(8, "big"))  # unambiguous framing
        digest.update(chunk)
    return digest.hexdigest()[:16]


def _message_resource(body: pb.Inbound | dpb.Outbound | dpb.TrustBundle) -> Resource:
    return Resource(content_version([_bytes(body)]), body)


def _bytes(message: Message) -> bytes:
    return message.SerializeToString(deterministic=True)


def inbound_resource(servers: tuple[InboundServer, ...], default: InboundServer) -> Resource:
    return _message_resource(config_proto.inbound_to_proto(servers, default))


def trust_bundle_resource(pem: bytes) -> Resource:
    return _message_resource(dpb.TrustBundle(pem=pem))


NO_SERVICE = _message_resource(dpb.Outbound())  # a target that resolves to no Service


def outbound_resources(service: OutboundService | None) -> tuple[Resource, dict[str, Resource]]:
    """The Outbound resource of a service, and the Endpoints resources of its backends."""
    if service is None:
        return NO_SERVICE, {}
    message, sets = config_proto.outbound_to_proto(service)
    endpoints = {name: endpoint_set_resource(found) for name, found in sets.items()}
    return _message_resource(dpb.Outbound(service=message)), endpoints


def endpoint_set_resource(endpoints: tuple[Endpoint, ...]) -> Resource:
    """`endpoints` come in the catalog's canonical order, so equal sets hash equal."""
    messages = {(e.address, e.port): config_proto.endpoint_to_proto(e) for e in endpoints}
    version = content_version(_bytes(message) for message in messages.values())
    return Resource(version, EndpointSet(messages))


def endpoints_change(base: EndpointSet | None, target: EndpointSet) -> dpb.Endpoints:
    """The whole set (reset) without a base; else what was added, replaced or removed."""
    if base is None:
        return dpb.Endpoints(reset=True, added=list(target.endpoints.values()))
    added = [e for key, e in target.endpoints.items() if base.endpoints.get(key) != e]
    removed = [
        dpb.EndpointAddress(address=address, port=port)
        for address, port in base.endpoints
        if (address, port) not in target.endpoints
    ]
    return dpb.Endpoints(reset=False, added=added, removed=removed)


def wire_resource(ref: Ref, resource: Resource, base: Resource | None) -> dpb.Resource:
    """The resource on the wire; Endpoints as a delta from `base` when there is one."""
    wire = dpb.Resource(name=ref.name, version=resource.version)
    body = resource.body
    if isinstance(body, EndpointSet):
        base_set = base.body if base is not None and isinstance(base.body, EndpointSet) else None
        wire.endpoints.CopyFrom(endpoints_change(base_set, body))
    elif isinstance(body, pb.Inbound):
        wire.inbound.CopyFrom(body)
    elif isinstance(body, dpb.Outbound):
        wire.outbound.CopyFrom(body)
    else:
        wire.trust_bundle.CopyFrom(body)
    return wire
