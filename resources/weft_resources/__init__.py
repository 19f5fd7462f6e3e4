"""Parse, never act: each watched manifest, at any served apiVersion, into one internal form.

The handlers call `parse_resource(body)`; it raises `InvalidResource` with a message
naming the field as the manifest spells it.
"""

from weft_resources.access import IdentityBinding, TrafficTarget
from weft_resources.base import Kind, LabelSelector, ObjectKey, ObjectMeta, Resource
from weft_resources.core import EndpointSlice, Namespace, Pod, Service, ServiceAccount
from weft_resources.errors import InvalidResource
from weft_resources.httproute import HTTPRoute
from weft_resources.policy import (
    AuthorizationPolicy,
    MeshTLSAuthentication,
    NetworkAuthentication,
    Server,
    ServerAuthorization,
)
from weft_resources.registry import RESOURCE_TYPES, kind_of, parse_resource
from weft_resources.serviceprofile import ServiceProfile
from weft_resources.specs import HTTPRouteGroup, TCPRoute, UDPRoute
from weft_resources.split import TrafficSplit

__all__ = [
    "RESOURCE_TYPES",
    "AuthorizationPolicy",
    "EndpointSlice",
    "HTTPRoute",
    "HTTPRouteGroup",
    "IdentityBinding",
    "InvalidResource",
    "Kind",
    "LabelSelector",
    "MeshTLSAuthentication",
    "Namespace",
    "NetworkAuthentication",
    "ObjectKey",
    "ObjectMeta",
    "Pod",
    "Resource",
    "Server",
    "ServerAuthorization",
    "Service",
    "ServiceAccount",
    "ServiceProfile",
    "TCPRoute",
    "TrafficSplit",
    "TrafficTarget",
    "UDPRoute",
    "kind_of",
    "parse_resource",
]
