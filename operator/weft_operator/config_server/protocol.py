"""Requests from proxies, checked before they touch any state.

Whatever a proxy sends, the server either understands it or refuses it with a
`ProtocolError` that says why, in words fit for a log line; nothing a request holds is
kept unbounded (names and lists have limits).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from weft_api import config_proto
from weft_api.config import ProxyIdentity
from weft_api.proto import discovery_pb2 as dpb
from weft_operator.config_server.targets import MAX_TARGET_LENGTH

MAX_NAME_LENGTH = 253  # a DNS subdomain, the longest Kubernetes name
MAX_VERSION_LENGTH = 128  # a proxy version, a config version or a nonce
MAX_TARGETS_PER_REQUEST = 1000
MAX_DETAIL_LENGTH = 1024  # of a NACK's error detail, as kept and logged


class ProtocolError(ValueError):
    """A request the server refuses; `reason` is a short label for metrics."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Hello:
    identity: ProxyIdentity
    proxy_version: str
    targets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Ack:
    nonce: str
    version: str


@dataclass(frozen=True, slots=True)
class Nack:
    nonce: str
    version: str
    detail: str


@dataclass(frozen=True, slots=True)
class Subscription:
    targets: tuple[str, ...]
    subscribe: bool  # False: unsubscribe


Request = Hello | Ack | Nack | Subscription


def parse_request(message: dpb.ProxyRequest) -> Request:
    match message.WhichOneof("request"):
        case "hello":
            return _hello(message.hello)
        case "ack":
            ack = message.ack
            return Ack(_short(ack.nonce, "nonce"), _short(ack.version, "version"))
        case "nack":
            nack = message.nack
            detail = nack.error_detail[:MAX_DETAIL_LENGTH]
            return Nack(_short(nack.nonce, "nonce"), _short(nack.version, "version"), detail)
        case "subscribe":
            return Subscription(_outbound_names(message.subscribe), subscribe=True)
        case "unsubscribe":
            return Subscription(_outbound_names(message.unsubscribe), subscribe=False)
    raise ProtocolError("unknown-request", "a request of no kind this server knows (empty?)")


def _hello(hello: dpb.Hello) -> Hello:
    if not hello.HasField("identity"):
        raise ProtocolError("bad-hello", "a hello without the proxy's identity")
    identity = config_proto.identity_from_proto(hello.identity)
    for field in ("pod", "namespace", "service_account"):
        value = getattr(identity, field)
        if not value or len(value) > MAX_NAME_LENGTH:
            raise ProtocolError("bad-hello", f"identity.{field} must be 1 to 253 characters")
    if identity.node is not None and len(identity.node) > MAX_NAME_LENGTH:
        raise ProtocolError("bad-hello", "identity.node is longer than 253 characters")
    return Hello(identity, _short(hello.proxy_version, "proxy_version"), _targets(hello.targets))


def _outbound_names(request: dpb.Subscribe | dpb.Unsubscribe) -> tuple[str, ...]:
    if request.type != dpb.RESOURCE_TYPE_OUTBOUND:
        kind = dpb.ResourceType.Name(request.type) if _known(request.type) else request.type
        raise ProtocolError(
            "bad-resource-type",
            f"only OUTBOUND resources are subscribed to, not {kind}: the others follow "
            "from the proxy's identity and its outbound services",
        )
    return _targets(request.names)


def _known(value: int) -> bool:
    return value in dpb.ResourceType.values()


def _targets(names: Iterable[str]) -> tuple[str, ...]:
    found = tuple(names)
    if len(found) > MAX_TARGETS_PER_REQUEST:
        raise ProtocolError("too-many-targets", f"more than {MAX_TARGETS_PER_REQUEST} targets")
    for name in found:
        if not name or len(name) > MAX_TARGET_LENGTH:
            raise ProtocolError(
                "bad-target", f"a target must be 1 to {MAX_TARGET_LENGTH} characters"
            )
    return found


def _short(value: str, what: str) -> str:
    if len(value) > MAX_VERSION_LENGTH:
        raise ProtocolError("too-long", f"{what} is longer than {MAX_VERSION_LENGTH} characters")
    return value
