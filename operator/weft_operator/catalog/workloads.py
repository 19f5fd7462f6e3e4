"""What the catalog reads from pods: meshed or not, workload names, default policy."""

from __future__ import annotations

from weft_api.config import DefaultPolicy
from weft_api.mesh import (
    ACCESS_MODEL_ANNOTATION,
    ACCESS_MODEL_SMI,
    ACCESS_MODELS,
    DEFAULT_INBOUND_POLICY_ANNOTATION,
    PROXY_CONTAINER,
    PROXY_VERSION_ANNOTATION,
)
from weft_operator.catalog.settings import MeshSettings
from weft_operator.index.store import MeshIndex
from weft_resources.core import Namespace, Pod

_POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
_POLICY_NAMES = frozenset(policy.value for policy in DefaultPolicy)


def is_meshed(pod: Pod) -> bool:
    """Injected pods carry the proxy-version annotation and the proxy container
    (a sidecar, or a native sidecar among the init containers)."""
    containers = (*pod.spec.containers, *pod.spec.init_containers)
    return PROXY_VERSION_ANNOTATION in pod.meta.annotations or any(
        container.name == PROXY_CONTAINER for container in containers
    )


def workload_labels(pod: Pod) -> list[tuple[str, str]]:
    """Linkerd's `dst_*` metric labels for an endpoint on this pod."""
    labels = [("dst_pod", pod.name), ("dst_serviceaccount", pod.spec.service_account_name)]
    workload = _owning_workload(pod)
    if workload is not None:
        kind, name = workload
        labels.append((f"dst_{kind}", name))
    return labels


def default_inbound_policy(
    index: MeshIndex, namespace: str, pod: Pod | None, settings: MeshSettings
) -> DefaultPolicy:
    """The pod's annotation, else its namespace's, else deny where the namespace's
    access model (else the cluster's) is SMI's, else the cluster's default. A value
    that names no policy or model is skipped."""
    namespace_object = index.get(Namespace, "", namespace)
    for annotated in (pod, namespace_object):
        if annotated is None:
            continue
        value = annotated.meta.annotations.get(DEFAULT_INBOUND_POLICY_ANNOTATION, "")
        if value in _POLICY_NAMES:
            return DefaultPolicy(value)
    model = settings.access_model
    if namespace_object is not None:
        written = namespace_object.meta.annotations.get(ACCESS_MODEL_ANNOTATION, "")
        model = written if written in ACCESS_MODELS else model
    if model == ACCESS_MODEL_SMI:
        return DefaultPolicy.DENY
    return settings.default_inbound_policy


def _owning_workload(pod: Pod) -> tuple[str, str] | None:
    owners = pod.meta.owner_references
    owner = next((ref for ref in owners if ref.controller), owners[0] if owners else None)
    if owner is None:
        return None
    if owner.kind == "ReplicaSet":
        # A Deployment names its ReplicaSets `<deployment>-<pod-template-hash>`.
        template_hash = pod.meta.labels.get(_POD_TEMPLATE_HASH_LABEL)
        if template_hash and owner.name.endswith(f"-{template_hash}"):
            return "deployment", owner.name.removesuffix(f"-{template_hash}")
    return owner.kind.lower(), owner.name
