"""The catalog's entry point: everything one proxy needs, from the index alone."""

from __future__ import annotations

from weft_api.config import ProxyConfig, ProxyIdentity
from weft_operator.catalog.inbound import build_inbound
from weft_operator.catalog.outbound import build_outbound_service
from weft_operator.catalog.settings import MeshSettings
from weft_operator.index.store import MeshIndex
from weft_resources.core import Service


def build_proxy_config(
    index: MeshIndex, identity: ProxyIdentity, settings: MeshSettings | None = None
) -> ProxyConfig:
    """Pure: the same index and identity always give the same (sorted) config.

    Outbound lists every Service the proxy may call, by namespace and name; the
    config server will later subscribe proxies per Service instead, through
    `build_outbound_service`.
    """
    settings = settings or MeshSettings()
    inbound, inbound_default = build_inbound(index, identity, settings)
    outbound = (
        build_outbound_service(index, service.namespace, service.name, identity.namespace, settings)
        for service in index.objects(Service)
    )
    return ProxyConfig(
        identity=identity,
        inbound=inbound,
        inbound_default=inbound_default,
        outbound=tuple(parent for parent in outbound if parent is not None),
    )
