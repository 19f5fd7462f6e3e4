"""One entry point for the handlers: any watched manifest -> its internal form."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from weft_resources import access, core, httproute, policy, serviceprofile, specs, split
from weft_resources.base import Kind, Resource
from weft_resources.errors import InvalidResource

Parser = Callable[[Mapping[str, Any]], Resource]

RESOURCE_TYPES: dict[Kind, type[Resource]] = {
    resource.KIND: resource
    for resource in (
        core.Namespace,
        core.ServiceAccount,
        core.Service,
        core.Pod,
        core.EndpointSlice,
        split.TrafficSplit,
        specs.HTTPRouteGroup,
        specs.TCPRoute,
        specs.UDPRoute,
        access.TrafficTarget,
        access.IdentityBinding,
        serviceprofile.ServiceProfile,
        policy.Server,
        policy.ServerAuthorization,
        policy.AuthorizationPolicy,
        policy.MeshTLSAuthentication,
        policy.NetworkAuthentication,
        httproute.HTTPRoute,
    )
}

_PARSERS: dict[Kind, Parser] = {
    Kind.NAMESPACE: core.parse_namespace,
    Kind.SERVICE_ACCOUNT: core.parse_service_account,
    Kind.SERVICE: core.parse_service,
    Kind.POD: core.parse_pod,
    Kind.ENDPOINT_SLICE: core.parse_endpoint_slice,
    Kind.TRAFFIC_SPLIT: split.parse_traffic_split,
    Kind.HTTP_ROUTE_GROUP: specs.parse_http_route_group,
    Kind.TCP_ROUTE: specs.parse_tcp_route,
    Kind.UDP_ROUTE: specs.parse_udp_route,
    Kind.TRAFFIC_TARGET: access.parse_traffic_target,
    Kind.IDENTITY_BINDING: access.parse_identity_binding,
    Kind.SERVICE_PROFILE: serviceprofile.parse_service_profile,
    Kind.SERVER: policy.parse_server,
    Kind.SERVER_AUTHORIZATION: policy.parse_server_authorization,
    Kind.AUTHORIZATION_POLICY: policy.parse_authorization_policy,
    Kind.MESH_TLS_AUTHENTICATION: policy.parse_mesh_tls_authentication,
    Kind.NETWORK_AUTHENTICATION: policy.parse_network_authentication,
    Kind.HTTP_ROUTE: httproute.parse_http_route,
}


_BY_GROUP_AND_KIND = {
    (resource.API_GROUP, resource.KIND.value): resource.KIND for resource in RESOURCE_TYPES.values()
}


def kind_of(body: Mapping[str, Any]) -> Kind:
    """The watched kind of a manifest, by its apiVersion's group and its kind."""
    group = str(body.get("apiVersion", "")).rpartition("/")[0]
    kind = _BY_GROUP_AND_KIND.get((group, str(body.get("kind"))))
    if kind is None:
        name = str((body.get("metadata") or {}).get("name", "(unnamed)"))
        message = f"{body.get('apiVersion')} {body.get('kind')} is not a kind Weft reads"
        raise InvalidResource(str(body.get("kind")), name, message)
    return kind


def parse_resource(body: Mapping[str, Any]) -> Resource:
    """Parse any watched manifest, at any served apiVersion; raises InvalidResource."""
    return _PARSERS[kind_of(body)](body)
