"""`weft install | kubectl apply -f -` on a fresh local cluster of its own (its
webhook configurations are cluster-wide, so not on the suite's shared cluster), and
`weft check` before and after, as a user would run them: what is missing is named,
with the command that fixes it.

The control plane runs in the cluster, as pods of the installed Deployments: the node
agent's image table maps Weft's image to this machine's Python, and gives pods the API
server (the `kubernetes` Service) and their ServiceAccount's files (api_access.py).
`weft check` passes, and fails with the right hint once the operator is scaled to zero.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest
from weft_runner import Ran, weft

from weft_cli import local_install
from weft_localcluster.cluster import ClusterInfo, LocalCluster


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterInfo]:
    local = LocalCluster(tmp_path_factory.mktemp("fresh-cluster") / "state")
    try:
        yield local.up(api_port=0)
    finally:
        local.down()


def check(cluster: ClusterInfo, *args: str) -> Ran:
    return weft("check", *args, kubeconfig=str(cluster.kubeconfig))


def failure(ran: Ran, title: str) -> tuple[str, str]:
    """The detail and hint printed under a failed check."""
    lines = ran.stdout.splitlines()
    index = lines.index(f"✘ {title}")
    return lines[index + 1].strip(), lines[index + 2].strip()


def test_a_cluster_without_weft(fresh: ClusterInfo) -> None:
    ran = check(fresh)
    assert ran.code == 1
    detail, hint = failure(ran, "Weft's CRDs are installed")
    assert detail.startswith("missing: ")
    assert hint == "hint: install them: weft install --crds | kubectl apply -f -"
    stat = weft("stat", "ts", "-n", "default", kubeconfig=str(fresh.kubeconfig))
    assert stat.one_line_error == (
        "error: this cluster does not serve trafficsplits: install Weft's CRDs: "
        "weft install --crds | kubectl apply -f -"
    )
    pre = check(fresh, "--pre")
    assert pre.code == 0, pre.stdout
    assert "✔ can create Weft's objects: 14 kinds of objects" in pre.stdout


def wait_until(what: str, seconds: float, probe: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while not probe():
        assert time.monotonic() < deadline, f"not within {seconds:.0f}s: {what}"
        time.sleep(0.5)


def lease_holder(cluster: ClusterInfo) -> str:
    return local_install.kubectl_result(
        cluster,
        "get",
        "lease",
        "weft-operator",
        "-n",
        "weft",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ).stdout.strip()


def test_installed_control_plane_runs_as_pods_and_check_passes(fresh: ClusterInfo) -> None:
    manifests = weft("install").stdout
    applied = local_install.kubectl(fresh, "apply", "-f", "-", stdin=manifests)
    assert "deployment.apps/weft-operator created" in applied
    assert (
        "mutatingwebhookconfiguration.admissionregistration.k8s.io/weft-proxy-injector created"
        in applied
    )
    ha = weft("install", "--ha").stdout
    assert (
        "poddisruptionbudget.policy/weft-operator created (server dry run)"
        in local_install.kubectl(fresh, "apply", "--dry-run=server", "-f", "-", stdin=ha)
    )
    # The node agent runs the image's operator and webhooks as pods (its image table);
    # they reach the API server as in-cluster clients, with their ServiceAccounts.
    for deployment in ("weft-operator", "weft-webhooks"):
        local_install.kubectl(
            fresh,
            "wait",
            "-n",
            "weft",
            "--for=condition=Available",
            f"deployment/{deployment}",
            "--timeout=90s",
        )
    wait_until("the operator pod holds the Lease", 30, lambda: bool(lease_holder(fresh)))
    assert lease_holder(fresh).startswith("weft-operator-")  # POD_NAME: a pod leads
    # The operator writes the status of the mesh's resources.
    local_install.kubectl(fresh, "create", "namespace", "shop")
    split = {
        "apiVersion": "split.smi-spec.io/v1alpha4",
        "kind": "TrafficSplit",
        "metadata": {"name": "books", "namespace": "shop"},
        "spec": {"service": "books", "backends": [{"service": "books-v2", "weight": 1}]},
    }
    local_install.kubectl(fresh, "apply", "-f", "-", stdin=json.dumps(split))
    wait_until(
        "the operator wrote the TrafficSplit's status",
        30,
        lambda: bool(
            local_install.kubectl_result(
                fresh, "get", "ts", "books", "-n", "shop", "-o", "jsonpath={.status.conditions}"
            ).stdout.strip()
        ),
    )
    local_install.kubectl(fresh, "delete", "namespace", "shop", "--wait=false")
    # The webhooks publish their CA bundle once serving; `weft check` then passes.
    wait_until("weft check passes", 60, lambda: check(fresh).code == 0)
    ran = check(fresh)
    assert [line for line in ran.stdout.splitlines() if line.startswith("✘")] == []
    for passed in (
        "✔ Weft's CRDs are installed: 12 CRDs",
        "✔ the webhooks are registered: weft-proxy-injector, weft-validator",
    ):
        assert passed in ran.stdout.splitlines()
    assert any(
        line.startswith("✔ the operator is running: leader weft-operator-")
        for line in ran.stdout.splitlines()
    )
    pre = check(fresh, "--pre")
    assert failure(pre, "the control plane namespace is free")[0] == "namespace weft already exists"


def test_an_operator_scaled_to_zero(fresh: ClusterInfo) -> None:
    local_install.kubectl(
        fresh, "scale", "deployment", "weft-operator", "-n", "weft", "--replicas=0"
    )
    ran = check(fresh)
    assert ran.code == 1
    detail, hint = failure(ran, "the operator is running")
    assert detail == "the Deployment weft/weft-operator is scaled to 0"
    assert hint == "hint: scale it up: kubectl -n weft scale deployment weft-operator --replicas=1"


def test_uninstall_leaves_the_crds(fresh: ClusterInfo) -> None:
    deleted = local_install.kubectl(
        fresh, "delete", "--wait=false", "-f", "-", stdin=weft("uninstall").stdout
    )
    assert (
        'validatingwebhookconfiguration.admissionregistration.k8s.io "weft-validator" deleted'
        in deleted
    )
    left = json.loads(local_install.kubectl(fresh, "get", "crd", "-o", "json"))["items"]
    assert len(left) == 12
    assert "weft-proxy-injector" not in local_install.kubectl(
        fresh, "get", "mutatingwebhookconfigurations"
    )
