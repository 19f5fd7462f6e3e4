"""kopf handlers: each watch event goes to the reconciler; its actions are carried out.

The only module (with `main`) that imports kopf. Handlers watch events rather than
creations and updates, so kopf keeps no progress annotations or finalizers on users'
objects: what GitOps tools apply stays exactly as they wrote it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from weft_operator import metrics
from weft_operator.kube_writer import KubeWriter
from weft_operator.reconciler import Reconciler
from weft_resources.kinds import WATCHED, Watched


def register(registry: kopf.OperatorRegistry, reconciler: Reconciler, writer: KubeWriter) -> None:
    for watched in WATCHED:
        handler = _event_handler(watched, reconciler, writer)
        kopf.on.event(
            watched.group or None,  # kopf spells the core group as no group
            watched.version,
            watched.plural,
            registry=registry,
            id=f"index-{watched.plural}",
        )(handler)


def _event_handler(watched: Watched, reconciler: Reconciler, writer: KubeWriter) -> Any:
    async def on_event(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
        try:
            actions = reconciler.observe(watched, event.get("type"), body)
        except Exception:
            metrics.RECONCILE_ERRORS.labels(kind=watched.kind.value).inc()
            raise
        await writer.carry_out(actions)

    return on_event
