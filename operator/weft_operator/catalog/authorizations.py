"""Who may call a server: each policy source turned into config Authorizations."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from weft_api.config import (
    ALL_NETWORKS,
    Authentication,
    Authorization,
    AuthorizationKind,
    DefaultPolicy,
    Network,
    RequestMatch,
)
from weft_api.identity import identity_name, namespace_identities
from weft_operator.catalog.matches import all_of, exact_path, from_smi_match
from weft_operator.catalog.settings import MeshSettings
from weft_operator.index import lookups
from weft_operator.index.selectors import selector_matches
from weft_operator.index.store import MeshIndex
from weft_resources.access import IdentityBinding, Subject, TrafficTarget
from weft_resources.core import Pod
from weft_resources.policy import (
    AuthorizationPolicy,
    MeshTLSAuthentication,
    NetworkAuthentication,
    NetworkSpec,
    ServerAuthorization,
)
from weft_resources.specs import HTTPRouteGroup, TCPRoute

EVERY_NETWORK = tuple(Network(cidr) for cidr in ALL_NETWORKS)
ANY_IDENTITY = ("*",)


def default_authorization(policy: DefaultPolicy, settings: MeshSettings) -> Authorization | None:
    """A default policy (or a Server's accessPolicy) as an authorization; deny is none."""
    if policy is DefaultPolicy.DENY:
        return None
    networks = EVERY_NETWORK
    if policy in (DefaultPolicy.CLUSTER_UNAUTHENTICATED, DefaultPolicy.CLUSTER_AUTHENTICATED):
        networks = tuple(Network(cidr) for cidr in settings.cluster_networks)
    if policy in (DefaultPolicy.ALL_AUTHENTICATED, DefaultPolicy.CLUSTER_AUTHENTICATED):
        return Authorization(
            AuthorizationKind.DEFAULT,
            policy.value,
            networks,
            Authentication.TLS_AUTHENTICATED,
            ANY_IDENTITY,
        )
    return Authorization(
        AuthorizationKind.DEFAULT, policy.value, networks, Authentication.UNAUTHENTICATED
    )


def probe_authorization(paths: Iterable[str]) -> Authorization:
    """Kubelet probes (GET on their paths) from anywhere, so a strict policy does not
    kill the pod; Linkerd authorizes them the same way."""
    routes = tuple(
        all_of((RequestMatch(method="GET"), exact_path(path))) for path in sorted(set(paths))
    )
    return Authorization(
        AuthorizationKind.DEFAULT,
        "probe",
        EVERY_NETWORK,
        Authentication.UNAUTHENTICATED,
        routes=routes,
    )


def from_server_authorization(
    authorization: ServerAuthorization, settings: MeshSettings
) -> Authorization:
    client = authorization.spec.client
    networks = _networks(client.networks)
    kind = AuthorizationKind.SERVER_AUTHORIZATION
    if client.mesh_tls is None:
        return Authorization(kind, authorization.name, networks, Authentication.UNAUTHENTICATED)
    if client.mesh_tls.unauthenticated_tls:
        return Authorization(kind, authorization.name, networks, Authentication.TLS_UNAUTHENTICATED)
    accounts = (
        identity_name(
            account.name, account.namespace or authorization.namespace, settings.trust_domain
        )
        for account in client.mesh_tls.service_accounts
    )
    identities = _sorted_unique((*client.mesh_tls.identities, *accounts))
    return Authorization(
        kind, authorization.name, networks, Authentication.TLS_AUTHENTICATED, identities
    )


def from_authorization_policy(
    index: MeshIndex,
    policy: AuthorizationPolicy,
    settings: MeshSettings,
    routes: tuple[RequestMatch, ...] = (),
) -> Authorization | None:
    """All required authentications must hold. A policy whose authentications do not
    exist (yet) admits no one: failing closed is the only safe reading."""
    identities: tuple[str, ...] = ()
    networks = EVERY_NETWORK
    for ref in policy.spec.required_authentication_refs:
        namespace = ref.namespace or policy.namespace
        if ref.kind == "ServiceAccount":
            identities = (identity_name(ref.name, namespace, settings.trust_domain),)
        elif ref.kind == "MeshTLSAuthentication":
            mesh_tls = index.get(MeshTLSAuthentication, namespace, ref.name)
            if mesh_tls is None:
                return None
            identities = mesh_tls_identities(mesh_tls, settings)
        else:
            network = index.get(NetworkAuthentication, namespace, ref.name)
            if network is None:
                return None
            networks = _networks(network.spec.networks)
    authentication = (
        Authentication.TLS_AUTHENTICATED if identities else Authentication.UNAUTHENTICATED
    )
    return Authorization(
        AuthorizationKind.AUTHORIZATION_POLICY,
        policy.name,
        networks,
        authentication,
        identities,
        routes,
    )


def mesh_tls_identities(
    authentication: MeshTLSAuthentication, settings: MeshSettings
) -> tuple[str, ...]:
    referenced = []
    for ref in authentication.spec.identity_refs:
        if ref.kind == "Namespace":
            referenced.append(namespace_identities(ref.name, settings.trust_domain))
        else:
            namespace = ref.namespace or authentication.namespace
            referenced.append(identity_name(ref.name, namespace, settings.trust_domain))
    return _sorted_unique((*authentication.spec.identities, *referenced))


def from_traffic_target(
    index: MeshIndex, target: TrafficTarget, port: int, settings: MeshSettings
) -> Authorization | None:
    """The sources' identities, for the traffic the rules describe on `port` (0: any
    port not otherwise listed). UDP is not proxied, so a UDPRoute admits nothing here;
    a rule naming a missing route resource admits nothing either."""
    routes: list[RequestMatch] = []
    whole_port = False
    for rule in target.spec.rules:
        namespace = rule.namespace or target.namespace
        if rule.kind == "HTTPRouteGroup":
            group = index.get(HTTPRouteGroup, namespace, rule.name)
            if group is not None:
                wanted = [
                    m for m in group.spec.matches if not rule.matches or m.name in rule.matches
                ]
                routes.extend(from_smi_match(match) for match in wanted)
        elif rule.kind == "TCPRoute":
            tcp_route = index.get(TCPRoute, namespace, rule.name)
            whole_port = whole_port or (
                tcp_route is not None and tcp_route.spec.matches.admits(port)
            )
    identities = _sorted_unique(
        identity
        for source in target.spec.sources
        for identity in _source_identities(index, target, source, settings)
    )
    if not identities or not (whole_port or routes):
        return None
    return Authorization(
        AuthorizationKind.TRAFFIC_TARGET,
        target.name,
        EVERY_NETWORK,
        Authentication.TLS_AUTHENTICATED,
        identities,
        () if whole_port else tuple(dict.fromkeys(routes)),
    )


def _source_identities(
    index: MeshIndex, target: TrafficTarget, source: Subject, settings: MeshSettings
) -> list[str]:
    namespace = source.namespace or target.namespace
    if source.kind == "ServiceAccount":
        return [identity_name(source.name, namespace, settings.trust_domain)]
    binding = index.get(IdentityBinding, namespace, source.name)
    if binding is None:
        return []  # a missing binding admits no one (ResolvedRefs names it)
    return [
        identity_name(account, namespace, settings.trust_domain)
        for account in bound_accounts(index, binding, settings)
    ]


def bound_accounts(index: MeshIndex, binding: IdentityBinding, settings: MeshSettings) -> list[str]:
    """The ServiceAccounts of the binding's namespace whose identity only its workloads
    hold. Identity is per ServiceAccount, so a label selector admits an account only
    when it selects every pod running as it: otherwise an unselected pod would present
    the same certificate. SPIFFE IDs of other namespaces or trust domains name no
    workload of Weft's here and admit no one."""
    schemes = binding.spec.schemes
    accounts = {schemes.service_account} if schemes.service_account else set()
    for spiffe in schemes.spiffe_identities:
        account = lookups.spiffe_account(spiffe, binding.namespace, settings.trust_domain)
        if account is not None:
            accounts.add(account)
    if schemes.pod_label_selectors:
        pods = index.objects(Pod, binding.namespace)
        by_account: dict[str, list[bool]] = {}
        for pod in pods:
            selected = any(
                selector_matches(selector, pod.meta.labels)
                for selector in schemes.pod_label_selectors
            )
            by_account.setdefault(pod.spec.service_account_name, []).append(selected)
        accounts.update(account for account, picks in by_account.items() if all(picks))
    return sorted(accounts)


def _networks(specs: Sequence[NetworkSpec]) -> tuple[Network, ...]:
    if not specs:
        return EVERY_NETWORK
    return tuple(Network(spec.cidr, spec.except_) for spec in specs)


def _sorted_unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(values)))
