"""A pod's workload from its own metadata, as injection labels it and the CLI groups it."""

from __future__ import annotations

from weft_api import mesh
from weft_api.workload import Workload, owning_workload, workload_labels


def owned(kind: str, name: str, **labels: str) -> dict[str, object]:
    owners = [{"kind": "Other", "name": "x"}, {"kind": kind, "name": name, "controller": True}]
    return {"labels": labels, "ownerReferences": owners}


def test_the_controller_owner_names_the_workload() -> None:
    assert owning_workload(owned("StatefulSet", "db")) == Workload("statefulset", "db")
    deployment = owned("ReplicaSet", "web-abc12", **{"pod-template-hash": "abc12"})
    assert owning_workload(deployment) == Workload("deployment", "web", "web-abc12")
    rollout = owned("ReplicaSet", "web-9z", **{"rollouts-pod-template-hash": "9z"})
    assert owning_workload(rollout) == Workload("rollout", "web", "web-9z")
    # A hash that is not the name's suffix leaves the ReplicaSet as the workload.
    other = owned("ReplicaSet", "web-abc12", **{"pod-template-hash": "zzz"})
    assert owning_workload(other) == Workload("replicaset", "web-abc12", "web-abc12")
    assert owning_workload({}) == Workload("", "")


def test_labels_name_the_kind_and_namespace() -> None:
    assert workload_labels(Workload("deployment", "web", "web-abc12"), "shop") == {
        mesh.PROXY_DEPLOYMENT_LABEL: "web",
        mesh.WORKLOAD_NAMESPACE_LABEL: "shop",
    }
    assert workload_labels(Workload("cronjob", "nightly"), "") == {}
