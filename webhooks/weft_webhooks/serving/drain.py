"""Stopping without refusing a call: after SIGTERM a replica keeps serving until the
API server no longer picks it.

A pod being deleted gets SIGTERM at the moment its endpoint is marked not ready, and
the API server picks a webhook's endpoint among the ready ones of its Service (it
resolves it from its own cache for each connection, and retries neither a conversion
nor a refused connection). A replica that stopped listening at SIGTERM made the calls
that picked it in between fail, and with them the reads of TrafficSplits at v1alpha1
that Flagger makes. So it waits until no EndpointSlice of its namespace lists it as
ready, then a moment more for the API server's cache, bounded by a timeout. All the
while, each answer closes its connection (serving/app.py), so the API server's pooled
connections move to a ready replica before the last ones are closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.api_client import ApiClient

log = logging.getLogger(__name__)

# The API server's endpoint cache follows the same watch as ours, a moment later.
CACHE_MARGIN = 1.0


def routes_to(slices: Iterable[client.V1EndpointSlice], pod: str) -> bool:
    """Whether a ready endpoint of `slices` is the pod (ready unknown counts as ready,
    as the EndpointSlice API says)."""
    for endpoint_slice in slices:
        for endpoint in endpoint_slice.endpoints or ():
            target = endpoint.target_ref
            ready = endpoint.conditions.ready if endpoint.conditions else None
            is_pod = target is not None and target.kind == "Pod" and target.name == pod
            if is_pod and ready is not False:
                return True
    return False


async def until_unrouted(api: ApiClient, namespace: str, pod: str, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await _unrouted(client.DiscoveryV1Api(api), namespace, pod)
    except TimeoutError:
        log.warning("still listed as ready after %.0fs: stopping anyway", seconds)
    except Exception as error:  # the API server is away, or RBAC lacks it: stop anyway
        log.warning("could not watch the endpoints: %s", error)
    await asyncio.sleep(CACHE_MARGIN)


async def _unrouted(discovery: client.DiscoveryV1Api, namespace: str, pod: str) -> None:
    listed = await discovery.list_namespaced_endpoint_slice(namespace)
    slices = {item.metadata.name: item for item in listed.items}
    if not routes_to(slices.values(), pod):
        return
    log.info("stopping: serving until the API server no longer routes to this pod")
    stream = watch.Watch().stream(
        discovery.list_namespaced_endpoint_slice,
        namespace,
        resource_version=listed.metadata.resource_version,
    )
    async with stream:
        async for event in stream:
            item = event["object"]
            if event["type"] == "DELETED":
                slices.pop(item.metadata.name, None)
            else:
                slices[item.metadata.name] = item
            if not routes_to(slices.values(), pod):
                return
