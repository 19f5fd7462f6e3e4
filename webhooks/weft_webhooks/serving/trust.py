"""The mesh's trust anchors, which injection gives every proxy: the operator's ConfigMap
in the control-plane namespace (written by `weft install`, or by the operator when it
generates the identity), kept current by a watch so that a rotation reaches new pods."""

from __future__ import annotations

import logging

from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.api_client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException

from weft_api.mesh import TRUST_ROOTS, TRUST_ROOTS_KEY
from weft_webhooks.serving.kube import WATCH_SECONDS, keep_watching

log = logging.getLogger(__name__)


def _pem_of(config_map: client.V1ConfigMap | None) -> str | None:
    pem = ((config_map.data if config_map else None) or {}).get(TRUST_ROOTS_KEY, "").strip()
    return f"{pem}\n" if pem else None


class TrustAnchors:
    """The PEM the watch saw last. While none is known it is read at each call: the
    operator may have published it a moment ago, and a pod meshed without it would
    run without an identity (see injection.injector)."""

    def __init__(self, api: ApiClient, namespace: str) -> None:
        self._core = client.CoreV1Api(api)
        self._namespace = namespace
        self._pem: str | None = None

    async def get(self) -> str | None:
        if self._pem is None:
            try:
                found = await self._core.read_namespaced_config_map(TRUST_ROOTS, self._namespace)
            except ApiException as error:
                if error.status == 404:
                    return None
                raise
            self._pem = _pem_of(found)
        return self._pem

    async def keep_current(self) -> None:
        await keep_watching("trust anchors watch", self._list_and_watch)

    async def _list_and_watch(self) -> None:
        # Listing one object by name: RBAC grants it with resourceNames (no other ConfigMap).
        only = f"metadata.name={TRUST_ROOTS}"
        listed = await self._core.list_namespaced_config_map(self._namespace, field_selector=only)
        self._pem = _pem_of(listed.items[0] if listed.items else None)
        stream = watch.Watch().stream(
            self._core.list_namespaced_config_map,
            self._namespace,
            field_selector=only,
            resource_version=listed.metadata.resource_version,
            timeout_seconds=WATCH_SECONDS,
        )
        async with stream:
            async for event in stream:
                gone = event["type"] == "DELETED"
                pem = None if gone else _pem_of(event["object"])
                if pem != self._pem:
                    log.info("trust anchors %s", "removed" if pem is None else "updated")
                self._pem = pem
