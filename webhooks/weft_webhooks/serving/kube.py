"""What the webhooks read from and write to the Kubernetes API."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.api_client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException

from weft_resources import InvalidResource, Server, parse_resource
from weft_webhooks import cabundle
from weft_webhooks.endpoints import (
    CONVERTED_CRDS,
    MUTATING_CONFIGURATION,
    VALIDATING_CONFIGURATION,
)

log = logging.getLogger(__name__)
WATCH_SECONDS = 300  # then list again: a full resync now and then


class NamespaceAnnotations:
    """Namespaces' annotations, kept current by a watch; a namespace not seen yet (just
    created) is read from the API. Injection reads them for every pod it admits."""

    def __init__(self, api: ApiClient) -> None:
        self._core = client.CoreV1Api(api)
        self._known: dict[str, dict[str, str]] = {}

    async def get(self, name: str) -> Mapping[str, str]:
        known = self._known.get(name)
        if known is None:
            namespace = await self._core.read_namespace(name)
            known = self._known[name] = dict(namespace.metadata.annotations or {})
        return known

    async def keep_current(self) -> None:
        await keep_watching("namespace watch", self._list_and_watch)

    async def _list_and_watch(self) -> None:
        listed = await self._core.list_namespace()
        self._known = {ns.metadata.name: dict(ns.metadata.annotations or {}) for ns in listed.items}
        version = listed.metadata.resource_version
        stream = watch.Watch().stream(
            self._core.list_namespace, resource_version=version, timeout_seconds=WATCH_SECONDS
        )
        async with stream:
            async for event in stream:
                namespace = event["object"]
                if event["type"] == "DELETED":
                    self._known.pop(namespace.metadata.name, None)
                else:
                    annotations = dict(namespace.metadata.annotations or {})
                    self._known[namespace.metadata.name] = annotations


async def keep_watching(what: str, list_and_watch: Callable[[], Awaitable[None]]) -> None:
    """List then watch, forever; a watch that ends or fails starts over with a list."""
    while True:
        try:
            await list_and_watch()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the API server restarting, a 410 Gone: start over
            log.warning("%s: %s; listing again in 1s", what, error)
            await asyncio.sleep(1)


async def namespace_servers(api: ApiClient, namespace: str) -> list[Server]:
    """The Servers of a namespace, read now (a cache could miss one created a moment ago)."""
    listed = await client.CustomObjectsApi(api).list_namespaced_custom_object(
        "policy.linkerd.io", "v1beta3", namespace, "servers"
    )
    servers = []
    for body in listed.get("items", ()):
        try:
            resource = parse_resource(body)
        except InvalidResource:
            continue  # admitted before validation existed; it cannot claim a port anyway
        if isinstance(resource, Server):
            servers.append(resource)
    return servers


@dataclass(frozen=True, slots=True)
class _BundleHolder:
    """An object whose caBundle fields must hold the bundle: how to read and patch it."""

    label: str
    name: str
    read: Callable[..., Awaitable[Any]]
    patch: Callable[..., Awaitable[Any]]
    operations: Callable[[Mapping[str, Any], str], list[cabundle.Operation]]


def _bundle_holders(api: ApiClient) -> list[_BundleHolder]:
    registration = client.AdmissionregistrationV1Api(api)
    extensions = client.ApiextensionsV1Api(api)
    return [
        _BundleHolder(
            "mutatingwebhookconfiguration",
            MUTATING_CONFIGURATION,
            registration.read_mutating_webhook_configuration,
            registration.patch_mutating_webhook_configuration,
            cabundle.webhook_configuration_patch,
        ),
        _BundleHolder(
            "validatingwebhookconfiguration",
            VALIDATING_CONFIGURATION,
            registration.read_validating_webhook_configuration,
            registration.patch_validating_webhook_configuration,
            cabundle.webhook_configuration_patch,
        ),
        *(
            _BundleHolder(
                "customresourcedefinition",
                crd,
                extensions.read_custom_resource_definition,
                extensions.patch_custom_resource_definition,
                cabundle.crd_patch,
            )
            for crd in CONVERTED_CRDS
        ),
    ]


async def publish_ca_bundle(api: ApiClient, bundle_pem: bytes) -> list[str]:
    """Patch the bundle into every object that names this server; return what changed.

    Objects not installed (yet) are skipped: the next round patches them.
    """
    ca_bundle = cabundle.encode(bundle_pem)
    changed = []
    for holder in _bundle_holders(api):
        try:
            response = await holder.read(holder.name, _preload_content=False)
            operations = holder.operations(json.loads(await response.read()), ca_bundle)
            if operations:
                await holder.patch(holder.name, operations)
                changed.append(f"{holder.label}/{holder.name}")
        except ApiException as error:
            if error.status != 404:
                raise
    return changed


async def api_client(kubeconfig: str | None) -> ApiClient:
    """From a kubeconfig file, else the pod's ServiceAccount (in-cluster)."""
    configuration = client.Configuration()
    if kubeconfig:
        await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)
    return ApiClient(configuration)
