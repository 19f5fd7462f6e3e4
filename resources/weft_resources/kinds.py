"""Every resource the operator watches, at the version it reads it.

Custom resources are read at their storage version, which needs no conversion, so the
operator keeps working while the conversion webhook is down. Objects stored before the
webhook was installed (or on a cluster run without it: strategy None, where only
`apiVersion` changes) come back as they were written, so the parsers read shape, not
`apiVersion`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from weft_resources.base import Kind


class Watched(NamedTuple):
    kind: Kind
    group: str  # "" for the core API group
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def reports_status(self) -> bool:
        """Weft writes conditions on its own kinds, never on core objects."""
        return self.group not in ("", "discovery.k8s.io")


WATCHED: tuple[Watched, ...] = (
    Watched(Kind.NAMESPACE, "", "v1", "namespaces"),
    Watched(Kind.SERVICE_ACCOUNT, "", "v1", "serviceaccounts"),
    Watched(Kind.SERVICE, "", "v1", "services"),
    Watched(Kind.POD, "", "v1", "pods"),
    Watched(Kind.ENDPOINT_SLICE, "discovery.k8s.io", "v1", "endpointslices"),
    Watched(Kind.TRAFFIC_SPLIT, "split.smi-spec.io", "v1alpha4", "trafficsplits"),
    Watched(Kind.HTTP_ROUTE_GROUP, "specs.smi-spec.io", "v1alpha4", "httproutegroups"),
    Watched(Kind.TCP_ROUTE, "specs.smi-spec.io", "v1alpha4", "tcproutes"),
    Watched(Kind.UDP_ROUTE, "specs.smi-spec.io", "v1alpha4", "udproutes"),
    Watched(Kind.TRAFFIC_TARGET, "access.smi-spec.io", "v1alpha3", "traffictargets"),
    Watched(Kind.IDENTITY_BINDING, "access.smi-spec.io", "v1alpha4", "identitybindings"),
    Watched(Kind.SERVICE_PROFILE, "linkerd.io", "v1alpha2", "serviceprofiles"),
    Watched(Kind.SERVER, "policy.linkerd.io", "v1beta3", "servers"),
    Watched(Kind.SERVER_AUTHORIZATION, "policy.linkerd.io", "v1beta1", "serverauthorizations"),
    Watched(Kind.AUTHORIZATION_POLICY, "policy.linkerd.io", "v1alpha1", "authorizationpolicies"),
    Watched(
        Kind.MESH_TLS_AUTHENTICATION, "policy.linkerd.io", "v1alpha1", "meshtlsauthentications"
    ),
    Watched(Kind.NETWORK_AUTHENTICATION, "policy.linkerd.io", "v1alpha1", "networkauthentications"),
    Watched(Kind.HTTP_ROUTE, "policy.linkerd.io", "v1beta3", "httproutes"),
)

BY_KIND: dict[Kind, Watched] = {w.kind: w for w in WATCHED}


@dataclass(frozen=True)
class ObjectRef:
    """Enough of an object to patch its status and to address Events to it."""

    watched: Watched
    namespace: str
    name: str
    uid: str
