"""Questions the catalog asks the index, each answered in sorted order.

Lookups that filter what they scan pass their answer through `index.note_used`, so a
computation recorded with `MeshIndex.recording` knows which objects it depends on.

Policy objects only act in their own namespace (a TrafficTarget in another namespace
cannot open a pod to callers), so most lookups stay inside one namespace.
"""

from __future__ import annotations

from weft_operator.index.selectors import selector_matches
from weft_operator.index.store import MeshIndex
from weft_resources.access import IdentityBinding, TrafficTarget
from weft_resources.base import Kind, LabelSelector, ObjectKey
from weft_resources.core import EndpointSlice, Pod
from weft_resources.httproute import HTTPRoute
from weft_resources.policy import AuthorizationPolicy, Server, ServerAuthorization
from weft_resources.serviceprofile import ServiceProfile
from weft_resources.split import TrafficSplit


def endpoint_slices_of(index: MeshIndex, namespace: str, service: str) -> list[EndpointSlice]:
    return index.note_used(
        index.referring(EndpointSlice, ObjectKey(Kind.SERVICE, namespace, service))
    )


def pods_selected_by(index: MeshIndex, namespace: str, selector: LabelSelector) -> list[Pod]:
    return index.note_used(
        pod for pod in index.objects(Pod, namespace) if selector_matches(selector, pod.meta.labels)
    )


def servers_selecting(index: MeshIndex, pod: Pod) -> list[Server]:
    return index.note_used(
        server
        for server in index.objects(Server, pod.namespace)
        if selector_matches(server.spec.pod_selector, pod.meta.labels)
    )


def server_authorizations_of(index: MeshIndex, server: Server) -> list[ServerAuthorization]:
    """ServerAuthorizations naming the Server, or selecting it by its labels."""
    selected = []
    for authorization in index.objects(ServerAuthorization, server.namespace):
        wanted = authorization.spec.server
        if wanted.name == server.name or (
            wanted.selector is not None and selector_matches(wanted.selector, server.meta.labels)
        ):
            selected.append(authorization)
    return index.note_used(selected)


def policies_protecting_server(index: MeshIndex, server: Server) -> list[AuthorizationPolicy]:
    """AuthorizationPolicies targeting the Server, or every Server of its namespace."""
    return index.note_used(
        policy
        for policy in index.objects(AuthorizationPolicy, server.namespace)
        if policy.spec.target_ref.kind == "Namespace"
        or (policy.spec.target_ref.kind == "Server" and policy.spec.target_ref.name == server.name)
    )


def policies_protecting_route(index: MeshIndex, route: HTTPRoute) -> list[AuthorizationPolicy]:
    return index.note_used(
        policy
        for policy in index.objects(AuthorizationPolicy, route.namespace)
        if policy.spec.target_ref.kind == "HTTPRoute" and policy.spec.target_ref.name == route.name
    )


def http_routes_of_server(index: MeshIndex, server: Server) -> list[HTTPRoute]:
    return index.note_used(
        route
        for route in index.objects(HTTPRoute, server.namespace)
        if any(
            parent.is_server and parent.refers_to(route.namespace, server.namespace, server.name)
            for parent in route.spec.parent_refs
        )
    )


def http_routes_of_service(
    index: MeshIndex, namespace: str, name: str, client_namespace: str
) -> list[HTTPRoute]:
    """Routes a client sees for a Service: its own namespace's routes for that Service
    (consumer routes) if any, otherwise those of the Service's namespace (producer)."""
    for route_namespace in dict.fromkeys((client_namespace, namespace)):
        routes = [
            route
            for route in index.objects(HTTPRoute, route_namespace)
            if any(
                parent.is_service and parent.refers_to(route.namespace, namespace, name)
                for parent in route.spec.parent_refs
            )
        ]
        if routes:
            return index.note_used(routes)
    return []


def profile_for(
    index: MeshIndex, namespace: str, name: str, client_namespace: str, cluster_domain: str
) -> ServiceProfile | None:
    """The ServiceProfile `<name>.<namespace>.svc.<cluster-domain>`: the client's
    namespace's copy first, as Linkerd does, then the Service's namespace's."""
    profile_name = f"{name}.{namespace}.svc.{cluster_domain}"
    for profile_namespace in (client_namespace, namespace):
        profile = index.get(ServiceProfile, profile_namespace, profile_name)
        if profile is not None:
            return profile
    return None


def splits_rooted_at(index: MeshIndex, namespace: str, service: str) -> list[TrafficSplit]:
    return index.note_used(
        split
        for split in index.referring(TrafficSplit, ObjectKey(Kind.SERVICE, namespace, service))
        if split.spec.service == service and split.namespace == namespace
    )


def traffic_targets_for(
    index: MeshIndex, namespace: str, service_account: str, pod: Pod | None, trust_domain: str
) -> list[TrafficTarget]:
    """TrafficTargets of the namespace whose destination is the ServiceAccount, or an
    IdentityBinding of the namespace that binds the pod (or, without the pod, the
    ServiceAccount)."""
    chosen = []
    for target in index.objects(TrafficTarget, namespace):
        destination = target.spec.destination
        if target.destination_namespace != namespace:
            continue
        if destination.kind == "ServiceAccount":
            if destination.name == service_account:
                chosen.append(target)
            continue
        binding = index.get(IdentityBinding, namespace, destination.name)
        if binding is not None and binds(binding, service_account, pod, trust_domain):
            chosen.append(target)
    return index.note_used(chosen)


def binds(
    binding: IdentityBinding, service_account: str, pod: Pod | None, trust_domain: str
) -> bool:
    """Whether a workload of the binding's namespace, running as `service_account`
    (as `pod`, when known), holds one of the binding's identities."""
    schemes = binding.spec.schemes
    if schemes.service_account == service_account:
        return True
    if pod is not None and any(
        selector_matches(selector, pod.meta.labels) for selector in schemes.pod_label_selectors
    ):
        return True
    return any(
        spiffe_account(spiffe, binding.namespace, trust_domain) == service_account
        for spiffe in schemes.spiffe_identities
    )


def spiffe_account(spiffe: str, namespace: str, trust_domain: str) -> str | None:
    """The ServiceAccount a SPIFFE ID (`[spiffe://]<trust domain>/ns/<ns>/sa/<sa>`, as
    Weft issues them) names in `namespace`; None for any other ID (no Weft workload
    holds it)."""
    domain, _, path = spiffe.removeprefix("spiffe://").partition("/")
    parts = path.split("/")
    if len(parts) != 4 or parts[0] != "ns" or parts[2] != "sa" or parts[1] != namespace:
        return None
    if domain != trust_domain:
        return None
    return parts[3] or None
