"""Which other objects an object names: what must exist for it to take effect."""

from __future__ import annotations

from dataclasses import dataclass

from weft_resources.access import TrafficTarget
from weft_resources.base import Kind, ObjectKey, Resource
from weft_resources.core import EndpointSlice
from weft_resources.httproute import HTTPRoute
from weft_resources.policy import (
    AuthorizationPolicy,
    MeshTLSAuthentication,
    ServerAuthorization,
)
from weft_resources.serviceprofile import ServiceProfile
from weft_resources.split import TrafficSplit


@dataclass(frozen=True, slots=True)
class Reference:
    """`field` of the referring object names `target` (and, inside an HTTPRouteGroup,
    the matches called `match_names`)."""

    field: str
    target: ObjectKey
    match_names: tuple[str, ...] = ()


def references_of(resource: Resource) -> tuple[Reference, ...]:
    """Every reference `resource` makes; kinds that name nothing have none."""
    match resource:
        case TrafficSplit():
            return _traffic_split(resource)
        case TrafficTarget():
            return _traffic_target(resource)
        case ServiceProfile():
            service = resource.service
            target = ObjectKey(Kind.SERVICE, service.namespace, service.name)
            overrides = (
                Reference(
                    f"spec.dstOverrides[{index}].authority",
                    ObjectKey(
                        Kind.SERVICE,
                        override.target.namespace or service.namespace,
                        override.target.name,
                    ),
                )
                for index, override in enumerate(resource.spec.dst_overrides)
            )
            return (Reference("metadata.name", target), *overrides)
        case ServerAuthorization():
            if resource.spec.server.name is None:
                return ()
            target = ObjectKey(Kind.SERVER, resource.namespace, resource.spec.server.name)
            return (Reference("spec.server.name", target),)
        case AuthorizationPolicy():
            return _authorization_policy(resource)
        case MeshTLSAuthentication():
            return _mesh_tls_authentication(resource)
        case HTTPRoute():
            return _http_route(resource)
        case EndpointSlice() if resource.service_name:
            # Not a reference users write, but it lets the catalog find a Service's
            # slices through the index's referrers instead of scanning the namespace.
            target = ObjectKey(Kind.SERVICE, resource.namespace, resource.service_name)
            return (Reference("metadata.labels[kubernetes.io/service-name]", target),)
    return ()


def _traffic_split(split: TrafficSplit) -> tuple[Reference, ...]:
    namespace = split.namespace
    references = [Reference("spec.service", ObjectKey(Kind.SERVICE, namespace, split.spec.service))]
    for index, backend in enumerate(split.spec.backends):
        target = ObjectKey(Kind.SERVICE, namespace, backend.service)
        references.append(Reference(f"spec.backends[{index}].service", target))
    for index, match in enumerate(split.spec.matches):
        target = ObjectKey(Kind.HTTP_ROUTE_GROUP, namespace, match.name)
        references.append(Reference(f"spec.matches[{index}]", target))
    return tuple(references)


def _traffic_target(target: TrafficTarget) -> tuple[Reference, ...]:
    destination = target.spec.destination
    references = [
        Reference(
            "spec.destination",
            ObjectKey(Kind(destination.kind), target.destination_namespace, destination.name),
        )
    ]
    for index, source in enumerate(target.spec.sources):
        namespace = source.namespace or target.namespace
        key = ObjectKey(Kind(source.kind), namespace, source.name)
        references.append(Reference(f"spec.sources[{index}]", key))
    for index, rule in enumerate(target.spec.rules):
        key = ObjectKey(Kind(rule.kind), rule.namespace or target.namespace, rule.name)
        references.append(Reference(f"spec.rules[{index}]", key, rule.matches))
    return tuple(references)


def _authorization_policy(policy: AuthorizationPolicy) -> tuple[Reference, ...]:
    references = []
    target = policy.spec.target_ref
    if target.kind != "Namespace":
        key = ObjectKey(Kind(target.kind), policy.namespace, target.name)
        references.append(Reference("spec.targetRef", key))
    for index, ref in enumerate(policy.spec.required_authentication_refs):
        key = ObjectKey(Kind(ref.kind), ref.namespace or policy.namespace, ref.name)
        references.append(Reference(f"spec.requiredAuthenticationRefs[{index}]", key))
    return tuple(references)


def _mesh_tls_authentication(authentication: MeshTLSAuthentication) -> tuple[Reference, ...]:
    references = []
    for index, ref in enumerate(authentication.spec.identity_refs):
        if ref.kind == "Namespace":
            key = ObjectKey(Kind.NAMESPACE, "", ref.name)
        else:
            key = ObjectKey(
                Kind.SERVICE_ACCOUNT, ref.namespace or authentication.namespace, ref.name
            )
        references.append(Reference(f"spec.identityRefs[{index}]", key))
    return tuple(references)


def _http_route(route: HTTPRoute) -> tuple[Reference, ...]:
    references = []
    for index, parent in enumerate(route.spec.parent_refs):
        if parent.is_server or parent.is_service:
            kind = Kind.SERVER if parent.is_server else Kind.SERVICE
            key = ObjectKey(kind, parent.namespace or route.namespace, parent.name)
            references.append(Reference(f"spec.parentRefs[{index}]", key))
    return tuple(references)
