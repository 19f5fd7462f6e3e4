"""A manifest of one of Weft's kinds in, the reasons to refuse it out (none: admit it).

The operator's parsers come first: they refuse what does not parse (wrong types,
regexes that do not compile, CIDRs and identity wildcards that do not parse) with
the field named. The checks in `checks` add what parsing alone cannot see.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from weft_resources import (
    HTTPRoute,
    InvalidResource,
    Kind,
    MeshTLSAuthentication,
    NetworkAuthentication,
    Resource,
    Server,
    ServerAuthorization,
    ServiceProfile,
    TrafficSplit,
    TrafficTarget,
    kind_of,
    parse_resource,
)
from weft_webhooks.validation import checks


@dataclass(frozen=True, slots=True)
class ValidationContext:
    cluster_domain: str = "cluster.local"
    servers: Sequence[Server] = ()  # the namespace's Servers, when validating a Server


def needs_servers(body: Mapping[str, Any]) -> bool:
    """Whether validating `body` needs the Servers of its namespace (read from the API)."""
    try:
        return kind_of(body) is Kind.SERVER
    except InvalidResource:
        return False


def problems(body: Mapping[str, Any], context: ValidationContext) -> list[str]:
    """Sentences, each naming a field; `Kind namespace/name: ` leads the first."""
    try:
        resource = parse_resource(body)
    except InvalidResource as error:
        return [str(error)]
    found = list(_problems_of(resource, context))
    if found:
        found[0] = f"{resource.KIND} {_display_name(resource)}: {found[0]}"
    return found


def warnings(body: Mapping[str, Any]) -> list[str]:
    """Fields of an admissible manifest that Weft reads but does not act on, one
    sentence each (kubectl prints them as `Warning:`); docs/resources.md lists them."""
    try:
        resource = parse_resource(body)
    except InvalidResource:
        return []
    return [
        f"weft: {resource.KIND} {_display_name(resource)}: {found}"
        for found in _ignored_in(resource)
    ]


def _ignored_in(resource: Resource) -> Iterator[str]:
    match resource:
        case HTTPRoute():
            inbound = any(parent.is_server for parent in resource.spec.parent_refs)
            for i, rule in enumerate(resource.spec.rules):
                if rule.timeouts is None:
                    continue
                if inbound:
                    yield (
                        f"spec.rules[{i}].timeouts is ignored: a route of a Server only "
                        "says what its authorizations admit"
                    )
                elif rule.timeouts.backend_request_ms is not None:
                    yield (
                        f"spec.rules[{i}].timeouts.backendRequest is ignored: the proxy "
                        "applies `request` to the whole request, retries included"
                    )
        case TrafficTarget():
            for i, source in enumerate(resource.spec.sources):
                if source.port is not None:
                    yield f"spec.sources[{i}].port is ignored: a source is an identity"


def _problems_of(resource: Resource, context: ValidationContext) -> Iterator[str]:
    match resource:
        case TrafficSplit():
            yield from checks.split_problems(resource, context.cluster_domain)
        case ServiceProfile():
            yield from checks.profile_problems(resource, context.cluster_domain)
        case Server():
            yield from checks.server_conflicts(resource, context.servers)
        case ServerAuthorization():
            client = resource.spec.client
            yield from checks.network_problems(client.networks, "spec.client.networks")
            if client.mesh_tls is not None:
                identities = client.mesh_tls.identities
                yield from checks.identity_problems(identities, "spec.client.meshTLS.identities")
        case MeshTLSAuthentication():
            yield from checks.identity_problems(resource.spec.identities, "spec.identities")
        case NetworkAuthentication():
            yield from checks.network_problems(resource.spec.networks, "spec.networks")


def _display_name(resource: Resource) -> str:
    return f"{resource.namespace}/{resource.name}" if resource.namespace else resource.name
