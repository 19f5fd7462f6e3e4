"""The agent's Kubernetes API calls, on plain JSON: informers, objects, tokens, status.

The agent holds two identities, as a node's kubelet and kube-proxy do:
`system:node:<name>` (the Node authorizer grants what its own pods need) and
`system:kube-proxy` (reads Services and EndpointSlices, for the pods' hosts files and
their ClusterIP rules).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.api_client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException

from weft_localcluster.nodeagent.cache import Event, ObjectCache
from weft_localcluster.nodeagent.status import timestamp
from weft_localcluster.nodeagent.volumes import TokenSpec

log = logging.getLogger(__name__)
WATCH_SECONDS = 240  # the server ends each watch; aiohttp's own limit is 300 s
STRATEGIC_MERGE = "application/strategic-merge-patch+json"


async def call(request: Awaitable[Any]) -> dict[str, Any]:
    """Await a generated client call made with `_preload_content=False`; JSON out."""
    response = await request
    async with response:
        body = await response.read()
        if not 200 <= response.status < 300:
            raise ApiException(status=response.status, reason=body.decode(errors="replace"))
    result: dict[str, Any] = json.loads(body)
    return result


class Informer:
    """List, then watch; relist when the watch expires (410) or fails. Calls `handler`
    with each change, and keeps the objects in `cache`."""

    def __init__(
        self,
        name: str,
        list_function: Callable[..., Awaitable[Any]],
        handler: Callable[[Event], None],
        **selectors: str,
    ) -> None:
        self.name = name
        self._list = list_function
        self._handler = handler
        self._selectors = selectors
        self.cache = ObjectCache()
        self.synced = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                listing = await call(self._list(**self._selectors, _preload_content=False))
                for event in self.cache.replace(listing.get("items") or []):
                    self._handler(event)
                self.synced.set()
                await self._watch(listing["metadata"]["resourceVersion"])
            except (ApiException, OSError, ValueError, TimeoutError, aiohttp.ClientError) as error:
                log.warning("%s informer: %s; listing again", self.name, error)
                await asyncio.sleep(1)
            except Exception:  # a bug in a handler must not stop the informer
                log.exception("%s informer failed; listing again", self.name)
                await asyncio.sleep(1)

    async def _watch(self, version: str) -> None:
        while True:
            response = await self._list(
                **self._selectors,
                watch=True,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=WATCH_SECONDS,
                _preload_content=False,
            )
            async with response:
                if response.status != 200:
                    raise ApiException(status=response.status, reason="watch refused")
                async for line in response.content:
                    event = json.loads(line)
                    obj = event["object"]
                    if event["type"] == "ERROR":
                        if obj.get("code") == 410:  # expired: list again
                            return
                        raise ApiException(status=obj.get("code"), reason=obj.get("message"))
                    version = obj["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        self.cache.apply(event["type"], obj)
                        self._handler((event["type"], obj))


class Kube:
    def __init__(self, node_api: ApiClient, node_name: str) -> None:
        self.core = client.CoreV1Api(node_api)
        self.node_name = node_name

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A ConfigMap or Secret, or None when it does not exist."""
        read = {
            "ConfigMap": self.core.read_namespaced_config_map,
            "Secret": self.core.read_namespaced_secret,
        }[kind]
        try:
            return await call(read(name, namespace, _preload_content=False))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def request_token(self, pod: dict[str, Any], spec: TokenSpec) -> tuple[str, float]:
        """A token of the pod's ServiceAccount, bound to the pod; (token, expiry)."""
        metadata = pod["metadata"]
        account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        body: dict[str, Any] = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": spec.expiration_seconds,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": metadata["name"],
                    "uid": metadata["uid"],
                },
            },
        }
        if spec.audience:
            body["spec"]["audiences"] = [spec.audience]
        created = await call(
            self.core.create_namespaced_service_account_token(
                account, metadata["namespace"], body, _preload_content=False
            )
        )
        expiry = created["status"]["expirationTimestamp"]
        moment = datetime.datetime.strptime(expiry, "%Y-%m-%dT%H:%M:%SZ")
        return created["status"]["token"], moment.replace(tzinfo=datetime.UTC).timestamp()

    async def patch_pod_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        await call(
            self.core.patch_namespaced_pod_status(
                name,
                namespace,
                {"status": status},
                _content_type=STRATEGIC_MERGE,
                _preload_content=False,
            )
        )

    async def delete_pod(self, namespace: str, name: str, uid: str) -> None:
        """The kubelet's last word on a pod whose containers have stopped."""
        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
        try:
            await call(
                self.core.delete_namespaced_pod(name, namespace, body=body, _preload_content=False)
            )
        except ApiException as error:
            if error.status not in (404, 409):  # gone already, or a new pod of that name
                raise

    async def event(
        self, pod: dict[str, Any], reason: str, message: str, warning: bool = False
    ) -> None:
        """A core/v1 Event about the pod, as `kubectl describe pod` shows them."""
        metadata = pod["metadata"]
        now = timestamp(time.time())
        body = {
            "metadata": {
                "generateName": f"{metadata['name']}.",
                "namespace": metadata["namespace"],
            },
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata["uid"],
            },
            "reason": reason,
            "message": message,
            "type": "Warning" if warning else "Normal",
            "source": {"component": "kubelet", "host": self.node_name},
            "reportingComponent": "kubelet",
            "reportingInstance": self.node_name,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await call(
                self.core.create_namespaced_event(
                    metadata["namespace"], body, _preload_content=False
                )
            )
        except (ApiException, OSError) as error:  # events are best effort
            log.debug("event %s for %s not recorded: %s", reason, metadata["name"], error)
