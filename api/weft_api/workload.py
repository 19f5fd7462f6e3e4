"""Which workload a pod belongs to, from its own metadata: pure, shared by injection
(which labels meshed pods with it) and the CLI (which groups pods by it).

A Deployment names its ReplicaSets `<deployment>-<pod-template-hash>` and an Argo
Rollout `<rollout>-<rollouts-pod-template-hash>`, with that hash as a label of their
pods: the pod alone names its Deployment or Rollout, as Linkerd's injector reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from weft_api import mesh

POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
ROLLOUTS_POD_TEMPLATE_HASH_LABEL = "rollouts-pod-template-hash"  # Argo Rollouts'

# Owner kinds (lower case) -> the pod label naming that workload.
_KIND_LABELS = {
    "deployment": mesh.PROXY_DEPLOYMENT_LABEL,
    "replicaset": mesh.PROXY_REPLICASET_LABEL,
    "statefulset": mesh.PROXY_STATEFULSET_LABEL,
    "daemonset": mesh.PROXY_DAEMONSET_LABEL,
    "job": mesh.PROXY_JOB_LABEL,
    "rollout": mesh.PROXY_ROLLOUT_LABEL,
}


@dataclass(frozen=True, slots=True)
class Workload:
    kind: str  # lower case: deployment, rollout, statefulset, ...; "" when no owner
    name: str
    replica_set: str = ""  # the ReplicaSet owning the pod (of a Deployment, a Rollout)


def owning_workload(metadata: Mapping[str, Any]) -> Workload:
    """The workload that owns a pod with this metadata (its controller owner first)."""
    owners = metadata.get("ownerReferences") or []
    owner = next((ref for ref in owners if ref.get("controller")), owners[0] if owners else None)
    if owner is None:
        return Workload("", "")
    kind, name = str(owner.get("kind", "")).lower(), str(owner.get("name", ""))
    if kind != "replicaset":
        return Workload(kind, name)
    labels = metadata.get("labels") or {}
    for label, parent in (
        (ROLLOUTS_POD_TEMPLATE_HASH_LABEL, "rollout"),
        (POD_TEMPLATE_HASH_LABEL, "deployment"),
    ):
        template_hash = labels.get(label)
        if template_hash and name.endswith(f"-{template_hash}"):
            return Workload(parent, name.removesuffix(f"-{template_hash}"), name)
    return Workload(kind, name, name)


def workload_labels(workload: Workload, namespace: str) -> dict[str, str]:
    """The labels injection puts on a meshed pod, which the shipped scrape config turns
    into the `deployment` (...) and `namespace` labels of its series. Only kinds
    Prometheus users query by get one (a CronJob's pods are labelled by their Job)."""
    labels = {mesh.WORKLOAD_NAMESPACE_LABEL: namespace} if namespace else {}
    label = _KIND_LABELS.get(workload.kind)
    if label and workload.name:
        labels[label] = workload.name
    return labels
