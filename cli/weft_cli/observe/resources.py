"""TrafficSplits and ServiceProfiles as `weft stat` and `weft routes` read them: at the
operator's (storage) version, through the operator's own parsers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from weft_cli.errors import CliError
from weft_cli.kube import Kube, NotFound
from weft_cli.observe.routes import Profile
from weft_cli.observe.splits import Backend, Split
from weft_resources import (
    InvalidResource,
    Kind,
    ServiceProfile,
    TrafficSplit,
    parse_resource,
)
from weft_resources.kinds import BY_KIND, Watched
from weft_webhooks.conversion.trafficsplit import WEIGHT_UNIT_ANNOTATION

T = TypeVar("T")
HINT_CRDS = "install Weft's CRDs: weft install --crds | kubectl apply -f -"


async def _read(
    kube: Kube, watched: Watched, namespace: str, name: str | None
) -> list[dict[str, Any]]:
    base = f"/apis/{watched.group}/{watched.version}/namespaces/{namespace}/{watched.plural}"
    try:
        if name is None:
            return await kube.items(base)
        return [await kube.get(f"{base}/{name}")]
    except NotFound as missing:
        if missing.kind_unknown:
            raise CliError(f"this cluster does not serve {watched.plural}: {HINT_CRDS}") from None
        raise CliError(
            f"{watched.kind.value.lower()} {name} not found in namespace {namespace}"
        ) from None


def _written_weight(raw: Any, annotations: Mapping[str, str]) -> str:
    if isinstance(raw, int) and annotations.get(WEIGHT_UNIT_ANNOTATION) == "milli":
        return f"{raw}m"
    return str(raw)


def to_split(body: Mapping[str, Any]) -> Split:
    parsed = parse_resource(body)
    assert isinstance(parsed, TrafficSplit)
    annotations = body["metadata"].get("annotations") or {}
    raw = [backend.get("weight") for backend in body["spec"]["backends"]]
    return Split(
        namespace=parsed.meta.namespace,
        name=parsed.meta.name,
        apex=parsed.spec.service,
        backends=tuple(
            Backend(backend.service, backend.weight, _written_weight(weight, annotations))
            for backend, weight in zip(parsed.spec.backends, raw, strict=True)
        ),
    )


def to_profile(body: Mapping[str, Any]) -> Profile:
    parsed = parse_resource(body)
    assert isinstance(parsed, ServiceProfile)
    service, namespace, _, domain = parsed.meta.name.split(".", 3)
    return Profile(
        namespace=namespace,
        name=parsed.meta.name,
        service=service,
        cluster_domain=domain,
        routes=tuple(route.name for route in parsed.spec.routes),
    )


async def _parsed(
    kube: Kube, kind: Kind, namespace: str, name: str | None, parse: Callable[[Any], T]
) -> tuple[list[T], list[str]]:
    """The resources of `kind`, parsed, and a line per one that does not parse (the
    webhook would refuse it)."""
    found, invalid = [], []
    for body in await _read(kube, BY_KIND[kind], namespace, name):
        try:
            found.append(parse(body))
        except InvalidResource as error:
            label = f"{kind.value.lower()} {namespace}/{body['metadata']['name']}"
            invalid.append(f"{label} is invalid: {error}")
    return found, invalid


async def traffic_splits(
    kube: Kube, namespace: str, name: str | None
) -> tuple[list[Split], list[str]]:
    return await _parsed(kube, Kind.TRAFFIC_SPLIT, namespace, name, to_split)


async def service_profiles(
    kube: Kube, namespace: str, name: str | None, cluster_domain: str
) -> tuple[list[Profile], list[str]]:
    """`name` may be the Service's: `web` reads `web.<namespace>.svc.<cluster_domain>`."""
    if name is not None and "." not in name:
        name = f"{name}.{namespace}.svc.{cluster_domain}"
    return await _parsed(kube, Kind.SERVICE_PROFILE, namespace, name, to_profile)
