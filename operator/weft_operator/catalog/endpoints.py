"""Endpoints of one Service port, from its EndpointSlices and the pods behind them."""

from __future__ import annotations

from weft_api.config import Endpoint, ProtocolHint, endpoint_order
from weft_api.identity import identity_name
from weft_operator.catalog.settings import MeshSettings
from weft_operator.catalog.workloads import is_meshed, workload_labels
from weft_operator.index import lookups
from weft_operator.index.store import MeshIndex
from weft_resources.core import EndpointSlice, Pod, Service, ServicePortSpec, SliceEndpoint

_IP_ADDRESS_TYPES = ("IPv4", "IPv6")


def endpoints_of(
    index: MeshIndex, service: Service, port: ServicePortSpec, settings: MeshSettings
) -> tuple[Endpoint, ...]:
    """Ready addresses serving `port`, deduplicated across slices, in address order.

    A slice port serves a Service port when their names (and protocols) agree, as the
    EndpointSlice controller writes them. An unset `ready` counts as ready.
    """
    found: dict[tuple[str, int], Endpoint] = {}
    for slice_ in lookups.endpoint_slices_of(index, service.namespace, service.name):
        target_port = _target_port(slice_, port)
        if target_port is None or slice_.spec.address_type not in _IP_ADDRESS_TYPES:
            continue
        for endpoint in slice_.spec.endpoints:
            if endpoint.conditions.ready is False:
                continue
            labels, identity = _describe_pod(index, slice_, endpoint, service, settings)
            for address in endpoint.addresses:
                key = (address, target_port)
                if key not in found:
                    hint = ProtocolHint.H2 if identity else None
                    found[key] = Endpoint(address, target_port, identity, hint, labels)
    return tuple(found[key] for key in sorted(found, key=lambda key: endpoint_order(*key)))


def _target_port(slice_: EndpointSlice, port: ServicePortSpec) -> int | None:
    for candidate in slice_.spec.ports:
        if candidate.name == port.name and candidate.protocol == port.protocol:
            return candidate.port
    return None


def _describe_pod(
    index: MeshIndex,
    slice_: EndpointSlice,
    endpoint: SliceEndpoint,
    service: Service,
    settings: MeshSettings,
) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """Metric labels of the endpoint, and its identity when its pod is meshed."""
    labels = [("dst_namespace", service.namespace), ("dst_service", service.name)]
    identity = None
    ref = endpoint.target_ref
    if ref is not None and ref.kind == "Pod":
        pod = index.get(Pod, ref.namespace or slice_.namespace, ref.name)
        if pod is None:
            labels.append(("dst_pod", ref.name))  # not indexed yet: still name it
        else:
            labels.extend(workload_labels(pod))
            if is_meshed(pod):
                account = pod.spec.service_account_name
                identity = identity_name(account, pod.namespace, settings.trust_domain)
    return tuple(sorted(labels)), identity
