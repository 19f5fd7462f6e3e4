"""`weft install | kubectl apply -f -` on a fresh local cluster of its own (its
webhook configurations are cluster-wide, so not on the suite's shared cluster), and
`weft check` before and after, as a user would run them: what is missing is named,
with the command that fixes it.

The control plane's image is not one the local node agent can run, so the operator
Deployment never becomes ready here: `weft check` says so, and says it differently
once the Deployment is scaled to zero.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

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


def test_installed_manifests_apply_and_check_names_what_does_not_run(fresh: ClusterInfo) -> None:
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
    ran = check(fresh)
    assert ran.code == 1
    for passed in (
        "✔ Weft's CRDs are installed: 12 CRDs",
        "✔ the webhooks are registered: weft-proxy-injector, weft-validator",
    ):
        assert passed in ran.stdout.splitlines()
    assert any(
        line.startswith("✔ the issuer is valid and signed by them")
        for line in ran.stdout.splitlines()
    )
    detail, hint = failure(ran, "the operator is running")
    assert detail == "no operator holds the Lease weft/weft-operator"
    assert "kubectl -n weft logs deploy/weft-operator" in hint
    detail, hint = failure(ran, "their CA bundles are present and valid")
    assert "has no valid caBundle" in detail
    assert "kubectl -n weft logs deploy/weft-webhooks" in hint
    assert "--pre" not in ran.stdout
    pre = check(fresh, "--pre")
    assert failure(pre, "the control plane namespace is free")[0] == "namespace weft already exists"


def test_an_operator_scaled_to_zero(fresh: ClusterInfo) -> None:
    local_install.kubectl(
        fresh, "scale", "deployment", "weft-operator", "-n", "weft", "--replicas=0"
    )
    detail, hint = failure(check(fresh), "the operator is running")
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
