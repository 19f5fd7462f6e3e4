"""Offline injection (`weft inject`, `weft uninject`): the pod templates of workload manifests.

Every workload is treated as if its namespace had `weft.dev/inject: enabled`, so a
template's own `disabled` still opts out. By default a template only gets that
annotation, and the webhook injects its pods (as `linkerd inject` does). Manual
injection computes the patch with the webhook's own `inject` and applies it to the
template: a pod created from the output is the pod the webhook would have produced, and
the webhook leaves it unchanged (already injected). Uninjection removes what either
form added.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from weft_api import mesh
from weft_webhooks.injection.containers import render
from weft_webhooks.injection.decision import Outcome, decide
from weft_webhooks.injection.injector import inject
from weft_webhooks.injection.options import ProxyOptions
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
# What injection records on a template besides its containers and volumes.
_RECORD_ANNOTATIONS = (
    mesh.PROXY_VERSION_ANNOTATION,
    mesh.INJECTED_CONTAINERS_ANNOTATION,
    mesh.INJECT_SKIPPED_ANNOTATION,
)
_WEFT_CONTAINERS = (mesh.PROXY_CONTAINER, mesh.INIT_CONTAINER)


class Removal(enum.StrEnum):
    UNINJECTED = "uninjected"
    NOT_INJECTED = "not injected"


@dataclass(frozen=True, slots=True)
class Report:
    """What happened to one workload, for the person running `weft inject`/`uninject`."""

    kind: str
    name: str
    outcome: Outcome | Removal
    warnings: tuple[str, ...] = ()


# A workload's namespace (None: the document names none) -> that namespace's annotations.
NamespaceAnnotations = Callable[[str | None], Mapping[str, str]]


def _no_namespace_annotations(namespace: str | None) -> Mapping[str, str]:
    return {}


def inject_manifests(
    documents: Iterable[Any],
    settings: InjectorSettings,
    namespace_annotations: NamespaceAnnotations = _no_namespace_annotations,
) -> tuple[list[Any], list[Report]]:
    """Manually injected copies of `documents` (others unchanged), and a report per
    workload. A namespace's `config.weft.dev/*` annotations apply as the webhook
    applies them, below the template's own."""

    def one(workload: dict[str, Any]) -> Report:
        namespace = (workload.get("metadata") or {}).get("namespace")
        return _inject_workload(workload, settings, namespace_annotations(namespace))

    return _each_workload(documents, one)


def annotate_manifests(documents: Iterable[Any]) -> tuple[list[Any], list[Report]]:
    """Copies whose pod templates carry `weft.dev/inject: enabled`, so that the webhook
    injects their pods with the cluster's settings; a report per workload."""
    return _each_workload(documents, _annotate_workload)


def uninject_manifests(documents: Iterable[Any]) -> tuple[list[Any], list[Report]]:
    """Copies without what either form of injection added; a report per workload."""
    return _each_workload(documents, _uninject_workload)


def _each_workload(
    documents: Iterable[Any], change: Callable[[dict[str, Any]], Report]
) -> tuple[list[Any], list[Report]]:
    changed = [copy.deepcopy(document) for document in documents]
    reports = [change(workload) for document in changed for workload in _workloads(document)]
    return changed, reports


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


def _template(workload: dict[str, Any]) -> dict[str, Any]:
    template = workload
    for key in _TEMPLATE_PATHS[workload["kind"]]:
        template = template.setdefault(key, {})
    template.setdefault("spec", {})
    return template


def _name(workload: dict[str, Any]) -> str:
    return str((workload.get("metadata") or {}).get("name", "(unnamed)"))


def _inject_workload(
    workload: dict[str, Any], settings: InjectorSettings, namespace_annotations: Mapping[str, str]
) -> Report:
    template = _template(workload)
    as_injected = {**namespace_annotations, **_AS_IN_AN_INJECTED_NAMESPACE}
    injection = inject(template, as_injected, settings)
    apply_patch(template, injection.patch)
    return Report(workload["kind"], _name(workload), injection.outcome, injection.warnings)


def _annotate_workload(workload: dict[str, Any]) -> Report:
    template = _template(workload)
    decision = decide(template, _AS_IN_AN_INJECTED_NAMESPACE)
    if decision.outcome is Outcome.INJECTED:
        if template.get("metadata") is None:
            template["metadata"] = {}
        annotations = template["metadata"].get("annotations") or {}
        template["metadata"]["annotations"] = {**annotations, **_AS_IN_AN_INJECTED_NAMESPACE}
    return Report(workload["kind"], _name(workload), decision.outcome, decision.warnings)


def _uninject_workload(workload: dict[str, Any]) -> Report:
    template = _template(workload)
    removed = _remove_containers(template["spec"])
    metadata = template.get("metadata") or {}
    annotations = dict(metadata.get("annotations") or {})
    for key in (mesh.INJECT_ANNOTATION, mesh.LINKERD_INJECT_ANNOTATION):
        if annotations.get(key) == mesh.INJECT_ENABLED:  # or the webhook injects it again
            removed |= bool(annotations.pop(key))
    for key in _RECORD_ANNOTATIONS:
        removed |= annotations.pop(key, None) is not None
    if removed and "metadata" in template:
        if annotations:
            template["metadata"]["annotations"] = annotations
        else:
            template["metadata"].pop("annotations", None)
    outcome = Removal.UNINJECTED if removed else Removal.NOT_INJECTED
    return Report(workload["kind"], _name(workload), outcome)


def _injected_volumes() -> frozenset[str]:
    return frozenset(v["name"] for v in render(InjectorSettings(), ProxyOptions()).volumes)


def _remove_containers(spec: dict[str, Any]) -> bool:
    """Drop Weft's containers and volumes from a pod spec; whether there were any."""
    removed = False
    for key, names in (
        ("initContainers", _WEFT_CONTAINERS),
        ("containers", _WEFT_CONTAINERS),
        ("volumes", _injected_volumes()),
    ):
        if key not in spec:
            continue
        kept = [item for item in spec[key] or () if item.get("name") not in names]
        if len(kept) != len(spec[key] or ()):
            removed = True
            if kept:
                spec[key] = kept
            else:
                del spec[key]
    return removed
