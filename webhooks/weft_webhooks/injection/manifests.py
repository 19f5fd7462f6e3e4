"""Offline injection (`weft inject`): the pod templates of workload manifests.

Every workload is treated as if its namespace had `weft.dev/inject: enabled`, so a
template's own `disabled` still opts out. The same `inject` as the webhook's computes
the patch, which is applied to the template: a pod created from the output is the pod
the webhook would have produced, and the webhook leaves it unchanged (already injected).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from weft_api import mesh
from weft_webhooks.injection.decision import Outcome
from weft_webhooks.injection.injector import inject
from weft_webhooks.injection.patch import apply_patch
from weft_webhooks.injection.settings import InjectorSettings

# Where each kind keeps its pod template; a Pod is its own template.
_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
_AS_IN_AN_INJECTED_NAMESPACE = {mesh.INJECT_ANNOTATION: mesh.INJECT_ENABLED}


@dataclass(frozen=True, slots=True)
class Report:
    """What happened to one workload, for the person running `weft inject`."""

    kind: str
    name: str
    outcome: Outcome
    warnings: tuple[str, ...] = ()


def inject_manifests(
    documents: Iterable[Any], settings: InjectorSettings
) -> tuple[list[Any], list[Report]]:
    """Injected copies of `documents` (others unchanged), and a report per workload."""
    injected = [copy.deepcopy(document) for document in documents]
    reports = [
        _inject_workload(workload, settings)
        for document in injected
        for workload in _workloads(document)
    ]
    return injected, reports


def _workloads(document: Any) -> Iterator[dict[str, Any]]:
    """Workloads in a document, looking inside Lists (`kind: List`, `DeploymentList`)."""
    if not isinstance(document, dict):
        return
    kind = str(document.get("kind", ""))
    if kind in _TEMPLATE_PATHS:
        yield document
    elif kind.endswith("List"):
        for item in document.get("items") or ():
            yield from _workloads(item)


def _inject_workload(workload: dict[str, Any], settings: InjectorSettings) -> Report:
    template = workload
    for key in _TEMPLATE_PATHS[workload["kind"]]:
        template = template.setdefault(key, {})
    template.setdefault("spec", {})
    injection = inject(template, _AS_IN_AN_INJECTED_NAMESPACE, settings)
    apply_patch(template, injection.patch)
    name = str((workload.get("metadata") or {}).get("name", "(unnamed)"))
    return Report(workload["kind"], name, injection.outcome, injection.warnings)
