"""Injection labels a meshed pod with its workload, as Linkerd's injector does, so the
shipped scrape config can name the workload of every series (Flagger's queries select
by `deployment`)."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from weft_api import mesh
from weft_webhooks.injection import InjectorSettings, apply_patch, inject
from weft_webhooks.injection.manifests import inject_manifests

SETTINGS = InjectorSettings()
INJECTED_NAMESPACE = {mesh.INJECT_ANNOTATION: mesh.INJECT_ENABLED}


def pod_of(owner_kind: str, owner: str, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {
            "generateName": f"{owner}-",
            "namespace": "shop",  # as the admission review gives it
            "labels": dict(labels),
            "ownerReferences": [{"kind": owner_kind, "name": owner, "controller": True}],
        },
        "spec": {"containers": [{"name": "app", "image": "example/app:1"}]},
    }


def labels_after(pod: dict[str, Any]) -> dict[str, str]:
    result = copy.deepcopy(pod)
    apply_patch(result, inject(pod, INJECTED_NAMESPACE, SETTINGS).patch)
    labels: dict[str, str] = result["metadata"].get("labels") or {}
    return labels


def test_a_deployments_pod_is_labelled_with_the_deployment_from_its_replica_set() -> None:
    pod = pod_of("ReplicaSet", "books-v1-7d4b9c", **{"pod-template-hash": "7d4b9c"})
    labels = labels_after(pod)
    assert labels[mesh.PROXY_DEPLOYMENT_LABEL] == "books-v1"
    assert labels[mesh.WORKLOAD_NAMESPACE_LABEL] == "shop"
    assert mesh.PROXY_REPLICASET_LABEL not in labels
    assert labels["pod-template-hash"] == "7d4b9c"  # the pod's own labels stay


def test_other_owners_name_their_own_kind() -> None:
    assert labels_after(pod_of("StatefulSet", "db"))[mesh.PROXY_STATEFULSET_LABEL] == "db"
    assert labels_after(pod_of("DaemonSet", "agent"))[mesh.PROXY_DAEMONSET_LABEL] == "agent"
    assert labels_after(pod_of("Job", "migrate"))[mesh.PROXY_JOB_LABEL] == "migrate"
    # A ReplicaSet of no Deployment (its name has no template hash) is the workload.
    assert labels_after(pod_of("ReplicaSet", "bare"))[mesh.PROXY_REPLICASET_LABEL] == "bare"
    rollout = pod_of("ReplicaSet", "books-5f6c", **{"rollouts-pod-template-hash": "5f6c"})
    assert labels_after(rollout)[mesh.PROXY_ROLLOUT_LABEL] == "books"


def test_a_pod_of_no_workload_gets_only_its_namespace() -> None:
    pod = {
        "metadata": {"name": "alone", "namespace": "shop"},
        "spec": {"containers": [{"name": "a", "image": "i"}]},
    }
    assert labels_after(pod) == {mesh.WORKLOAD_NAMESPACE_LABEL: "shop"}


def test_a_pod_not_injected_gets_no_label() -> None:
    pod = pod_of("ReplicaSet", "web-1a2b", **{"pod-template-hash": "1a2b"})
    assert inject(pod, {}, SETTINGS).patch == ()


def test_a_pod_from_an_offline_injected_template_gets_its_labels_from_the_webhook() -> None:
    """`weft inject` puts the proxy in the template; the webhook then leaves the
    containers alone but still adds what only the created pod can say (its owner)."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "books-v1", "namespace": "shop"},
        "spec": {"template": {"metadata": {}, "spec": copy.deepcopy(pod_of("", "")["spec"])}},
    }
    (offline,), _ = inject_manifests([deployment], SETTINGS)
    template = offline["spec"]["template"]
    pod = {
        **copy.deepcopy(template),
        "metadata": {
            **template["metadata"],
            "namespace": "shop",
            "labels": {"pod-template-hash": "9f8e"},
            "ownerReferences": [
                {"kind": "ReplicaSet", "name": "books-v1-9f8e", "controller": True}
            ],
        },
    }
    labels = labels_after(pod)
    assert labels[mesh.PROXY_DEPLOYMENT_LABEL] == "books-v1"
    assert labels[mesh.WORKLOAD_NAMESPACE_LABEL] == "shop"
    # Nothing is added twice: the pod as labelled gets an empty patch.
    pod["metadata"]["labels"] = labels
    assert inject(pod, INJECTED_NAMESPACE, SETTINGS).patch == ()
    assert yaml.safe_dump(offline)  # still a manifest
