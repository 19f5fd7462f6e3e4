"""Applies config updates to what the proxy holds, whole or not at all (sans-IO).

An update is checked completely (every resource decodes, every endpoint delta applies,
every backend has its endpoints, the validator agrees) before anything changes; if any
check fails, `UpdateRejected` says why and the proxy keeps its last accepted state.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from weft_api import config_proto
from weft_api.config import (
    Endpoint,
    InboundServer,
    OutboundService,
    ProxyConfig,
    ProxyIdentity,
    endpoint_order,
)
from weft_api.proto import config_pb2 as pb
from weft_api.proto import discovery_pb2 as dpb


class UpdateRejected(ValueError):
    """Why an update cannot be applied; becomes the NACK's error detail."""


@dataclass(frozen=True, slots=True)
class ProxySnapshot:
    """One accepted config: what the proxy's stacks read."""

    version: str
    config: ProxyConfig
    targets: Mapping[str, OutboundService | None]  # each subscribed target; None: no Service
    trust_bundle: bytes


Validator = Callable[[ProxySnapshot], None]  # raises to reject


@dataclass(frozen=True, slots=True)
class _EndpointSet:
    version: str
    endpoints: Mapping[tuple[str, int], Endpoint]
    ordered: tuple[Endpoint, ...]


@dataclass(frozen=True)
class _State:
    """What the proxy holds; replaced, never changed in place."""

    inbound: tuple[tuple[InboundServer, ...], InboundServer] | None = None
    outbound: Mapping[str, pb.OutboundService | None] = field(default_factory=dict)
    endpoints: Mapping[str, _EndpointSet] = field(default_factory=dict)
    trust_bundle: bytes = b""


class ConfigAssembler:
    """The state of one stream: a new stream starts empty and expects a full update."""

    def __init__(self, identity: ProxyIdentity, validate: Validator | None = None) -> None:
        self.identity = identity
        self.validate = validate
        self._accepted: _State | None = None

    def apply(self, update: dpb.ConfigUpdate) -> ProxySnapshot:
        """The snapshot after `update`, now accepted; or UpdateRejected, and nothing moved."""
        if update.full:
            base = _State()
        elif self._accepted is None:
            raise UpdateRejected("a partial update before any full one on this stream")
        else:
            base = self._accepted
        state = _apply(base, update)
        snapshot = self._snapshot(state, update.version)
        if self.validate is not None:
            try:
                self.validate(snapshot)
            except Exception as exc:
                raise UpdateRejected(f"rejected by the proxy: {exc}") from exc
        self._accepted = state
        return snapshot

    def _snapshot(self, state: _State, version: str) -> ProxySnapshot:
        if state.inbound is None:
            raise UpdateRejected("no inbound policy")
        sets = {name: found.ordered for name, found in state.endpoints.items()}
        targets: dict[str, OutboundService | None] = {}
        for target, message in state.outbound.items():
            try:
                targets[target] = (
                    None if message is None else config_proto.outbound_from_proto(message, sets)
                )
            except ValueError as exc:
                raise UpdateRejected(f"OUTBOUND/{target}: {exc}") from exc
        services = {(s.namespace, s.name): s for s in targets.values() if s is not None}
        servers, default = state.inbound
        config = ProxyConfig(
            identity=self.identity,
            inbound=servers,
            inbound_default=default,
            outbound=tuple(services[key] for key in sorted(services)),
        )
        return ProxySnapshot(version, config, types.MappingProxyType(targets), state.trust_bundle)


def _apply(base: _State, update: dpb.ConfigUpdate) -> _State:
    outbound = dict(base.outbound)
    endpoints = dict(base.endpoints)
    inbound, trust_bundle = base.inbound, base.trust_bundle
    removable: dict[int, dict[str, object]] = {
        dpb.RESOURCE_TYPE_OUTBOUND: outbound,  # type: ignore[dict-item]
        dpb.RESOURCE_TYPE_ENDPOINTS: endpoints,  # type: ignore[dict-item]
    }
    for ref in update.removed:
        held = removable.get(ref.type)
        if held is None or ref.name not in held:
            raise UpdateRejected(f"removes {_ref_name(ref.type, ref.name)}, which is not held")
        del held[ref.name]
    for resource in update.resources:
        name = resource.name
        try:
            match resource.WhichOneof("body"):
                case "inbound":
                    inbound = config_proto.inbound_from_proto(resource.inbound)
                case "outbound":
                    found = resource.outbound
                    outbound[name] = found.service if found.HasField("service") else None
                case "endpoints":
                    endpoints[name] = _endpoints(endpoints.get(name), resource)
                case "trust_bundle":
                    trust_bundle = resource.trust_bundle.pem
                case _:
                    raise UpdateRejected(f"resource {name!r} is of a type this proxy does not know")
        except config_proto.DecodeError as exc:
            raise UpdateRejected(f"resource {name!r}: {exc}") from exc
    return replace(
        base, inbound=inbound, outbound=outbound, endpoints=endpoints, trust_bundle=trust_bundle
    )


def _endpoints(held: _EndpointSet | None, resource: dpb.Resource) -> _EndpointSet:
    change = resource.endpoints
    if change.reset or held is None:
        if not change.reset:
            raise UpdateRejected(f"ENDPOINTS/{resource.name}: a delta for a set not held")
        current: dict[tuple[str, int], Endpoint] = {}
    else:
        current = dict(held.endpoints)
    for gone in change.removed:
        if current.pop((gone.address, gone.port), None) is None:
            raise UpdateRejected(
                f"ENDPOINTS/{resource.name}: removes {gone.address}:{gone.port}, not held"
            )
    for message in change.added:
        endpoint = config_proto.endpoint_from_proto(message)
        current[endpoint.address, endpoint.port] = endpoint
    ordered = tuple(current[key] for key in sorted(current, key=lambda k: endpoint_order(*k)))
    return _EndpointSet(resource.version, current, ordered)


def _ref_name(kind: int, name: str) -> str:
    known = kind in dpb.ResourceType.values()
    return f"{dpb.ResourceType.Name(kind) if known else kind}/{name}"  # type: ignore[arg-type]
