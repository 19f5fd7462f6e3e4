"""The operator's only writes to the API server: object status and Kubernetes Events."""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.api_client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException

from weft_operator import metrics
from weft_operator.conditions import bounded
from weft_operator.reconciler import Action, StatusWrite
from weft_resources.kinds import ObjectRef

log = logging.getLogger(__name__)
COMPONENT = "weft-operator"
MERGE_PATCH = "application/merge-patch+json"


class KubeWriter:
    def __init__(self, api: ApiClient) -> None:
        self._custom = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)
        self._instance = os.environ.get("POD_NAME") or socket.gethostname()

    async def carry_out(self, actions: list[Action]) -> None:
        """The reconciler's actions, in order: status patches and Warning Events."""
        for action in actions:
            if isinstance(action, StatusWrite):
                await self.patch_status(action.ref, action.status)
            else:
                await self.post_event(action.ref, action.reason, action.message)

    async def patch_status(self, ref: ObjectRef, status: dict[str, Any]) -> None:
        w = ref.watched
        try:
            await self._custom.patch_namespaced_custom_object_status(
                w.group,
                w.version,
                ref.namespace,
                w.plural,
                ref.name,
                {"status": status},
                _content_type=MERGE_PATCH,
            )
        except ApiException as exc:
            if exc.status == 404:  # deleted meanwhile: nothing left to report on
                return
            metrics.WRITE_ERRORS.labels(kind=w.kind.value, what="status").inc()
            log.warning(
                "cannot patch the status of %s %s/%s: %s",
                w.kind,
                ref.namespace,
                ref.name,
                exc.reason,
            )
            return
        metrics.STATUS_PATCHES.labels(kind=w.kind.value).inc()

    async def post_event(self, ref: ObjectRef, reason: str, message: str) -> None:
        """A Warning Event on the object, shown by `kubectl describe` and `kubectl events`."""
        now = datetime.now(UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{ref.name}.", namespace=ref.namespace),
            involved_object=client.V1ObjectReference(
                api_version=ref.watched.api_version,
                kind=ref.watched.kind.value,
                namespace=ref.namespace,
                name=ref.name,
                uid=ref.uid,
            ),
            type="Warning",
            reason=reason,
            message=bounded(message),  # as the conditions say it
            source=client.V1EventSource(component=COMPONENT),
            reporting_component=COMPONENT,
            reporting_instance=self._instance,
            first_timestamp=now,
            last_timestamp=now,
            count=1,
        )
        try:
            await self._core.create_namespaced_event(ref.namespace, event)
        except ApiException as exc:
            metrics.WRITE_ERRORS.labels(kind=ref.watched.kind.value, what="event").inc()
            log.warning("cannot post an Event on %s/%s: %s", ref.namespace, ref.name, exc.reason)
