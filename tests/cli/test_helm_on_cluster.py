"""The charts on a fresh local cluster of their own (their webhook configurations are
cluster-wide), as the docs tell a user: `helm install` of weft-crds and
weft-control-plane gives a mesh `weft check` passes and meshed pods talk over mTLS;
`helm upgrade` of the running mesh keeps its trust anchors and issuer and drops no
meshed request while the control plane rolls; `helm uninstall` removes the control
plane, and the CRDs with their own release.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from helm_runner import CONTROL_PLANE_CHART, CRDS_CHART, Helm
from identity_files import identity_arguments, write_identity
from meshed_traffic import Traffic, call, start_pair, start_server, wait_until
from weft_runner import weft

from weft_api.identity import identity_name
from weft_cli import local_install, webhook_probes
from weft_localcluster.cluster import ClusterInfo, LocalCluster

WEFT = "weft"
PAIR = "pair"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterInfo]:
    local = LocalCluster(tmp_path_factory.mktemp("helm-cluster") / "state")
    try:
        yield local.up(api_port=0)
    finally:
        local.down()


@pytest.fixture(scope="module")
def helm(helm_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(helm_binary, tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_identity(tmp_path_factory.mktemp("identity"))


def mesh_identity(cluster: ClusterInfo) -> tuple[dict[str, str], dict[str, str]]:
    """The trust roots ConfigMap's data and the issuer Secret's data, as running."""
    roots = json.loads(
        local_install.kubectl(
            cluster, "get", "configmap", "weft-identity-trust-roots", "-n", WEFT, "-o", "json"
        )
    )
    issuer = json.loads(local_install.kubectl(
        cluster, "get", "secret", "weft-identity-issuer", "-n", WEFT, "-o", "json"))  # fmt: skip
    return roots["data"], issuer["data"]


def operator_pods(cluster: ClusterInfo) -> set[str]:
    listed = local_install.kubectl(
        cluster, "get", "pods", "-n", WEFT, "-l", "app.kubernetes.io/name=weft-operator",
        "-o", "jsonpath={.items[*].metadata.name}",
    )  # fmt: skip
    return set(listed.split())


def lease_holder(cluster: ClusterInfo) -> str:
    return local_install.kubectl_result(
        cluster, "get", "lease", "weft-operator", "-n", WEFT,
        "-o", "jsonpath={.spec.holderIdentity}",
    ).stdout.strip()  # fmt: skip


def check_passes(cluster: ClusterInfo) -> bool:
    return weft("check", kubeconfig=str(cluster.kubeconfig)).code == 0


def secured(cluster: ClusterInfo, source: str, destination: str) -> bool:
    """`weft edges` shows source -> destination over mTLS, with both identities."""
    ran = weft("edges", "-n", PAIR, "-o", "json", "-w", "5s", kubeconfig=str(cluster.kubeconfig))
    assert ran.code == 0, ran.stderr
    return any(
        row["src"] == f"deploy/{source}"
        and str(row["dst"]).startswith(f"deploy/{destination}")
        and row["secured"] is True
        and row["client_id"] == identity_name(source, PAIR)
        and row["server_id"] == identity_name(destination, PAIR)
        for row in json.loads(ran.stdout)
    )


def test_helm_install_of_both_charts_gives_a_working_mesh(
    fresh: ClusterInfo, helm: Helm, identity: dict[str, Path]
) -> None:
    kubeconfig = fresh.kubeconfig
    helm.ok("install", "weft-crds", str(CRDS_CHART), "-n", WEFT, "--create-namespace",
            "--wait", kubeconfig=kubeconfig)  # fmt: skip
    helm.ok("install", "weft-control-plane", str(CONTROL_PLANE_CHART), "-n", WEFT,
            *identity_arguments(identity), "--wait", "--timeout=5m",
            kubeconfig=kubeconfig)  # fmt: skip
    webhook_probes.wait_until_called(
        lambda *args, stdin=None: local_install.kubectl_result(fresh, *args, stdin=stdin), 120
    )
    wait_until("weft check passes", 120, lambda: check_passes(fresh))
    roots, issuer = mesh_identity(fresh)
    assert roots["ca-bundle.crt"] == identity["anchors"].read_text()  # the given anchors
    assert base64.b64decode(issuer["tls.key"]) == identity["key"].read_bytes()

    start_pair(fresh, PAIR)
    assert call(fresh, PAIR, "server") == "200"
    traffic = Traffic(fresh, PAIR)  # edges show what the proxies saw in the last seconds
    try:
        traffic.wait_for_more(3)
        wait_until("weft edges shows client -> server over mTLS", 90,
                   lambda: secured(fresh, "client", "server"))  # fmt: skip
    finally:
        traffic.stop()
    assert traffic.failures() == []


def test_helm_upgrade_keeps_the_identity_and_drops_no_meshed_request(
    fresh: ClusterInfo, helm: Helm
) -> None:
    """No identity values this time (as a GitOps repository without the key would
    sync): the chart stops rendering the identity, and Helm keeps it (resource-policy),
    so the operator rolled by the upgrade loads the same issuer."""
    before = mesh_identity(fresh)
    old_operators = operator_pods(fresh)
    traffic = Traffic(fresh, PAIR)
    try:
        traffic.wait_for_more(5)
        helm.ok("upgrade", "weft-control-plane", str(CONTROL_PLANE_CHART), "-n", WEFT,
                "--set", "operator.memoryLimit=600Mi", "--set", "webhooks.memoryLimit=300Mi",
                "--wait", "--timeout=5m", kubeconfig=fresh.kubeconfig)  # fmt: skip
        wait_until(
            "a new operator pod holds the Lease",
            120,
            lambda: lease_holder(fresh) in operator_pods(fresh) - old_operators,
        )
        wait_until("weft check passes", 120, lambda: check_passes(fresh))
        traffic.wait_for_more(5)
        # A pod started after the upgrade gets its certificate from the new operator:
        # the client, meshed before, trusts it (same anchors), and it answers over mTLS.
        # (Meshed endpoints are mTLS or nothing: a 200 is an mTLS handshake that worked.)
        start_server(fresh, PAIR, "after")
        assert call(fresh, PAIR, "after") == "200"
        wait_until("weft edges shows client -> server over mTLS after the upgrade", 90,
                   lambda: secured(fresh, "client", "server"))  # fmt: skip
        traffic.wait_for_more(5)
    finally:
        traffic.stop()
    assert traffic.failures() == []
    assert traffic.answered() >= 15
    assert mesh_identity(fresh) == before


def test_helm_uninstall_removes_the_control_plane_and_the_crds(
    fresh: ClusterInfo, helm: Helm
) -> None:
    helm.ok("uninstall", "weft-control-plane", "-n", WEFT, "--wait", kubeconfig=fresh.kubeconfig)
    left = local_install.kubectl(fresh, "get", "deployments,services", "-n", WEFT, "-o", "name")
    assert left.split() == []
    hooks = local_install.kubectl(
        fresh, "get", "mutatingwebhookconfigurations,validatingwebhookconfigurations", "-o", "name"
    )
    assert "weft-" not in hooks
    assert not check_passes(fresh)
    # The identity stays (a reinstall keeps the mesh's anchors); the namespace too.
    mesh_identity(fresh)
    helm.ok("uninstall", "weft-crds", "-n", WEFT, "--wait", kubeconfig=fresh.kubeconfig)
    crds = local_install.kubectl(fresh, "get", "crd", "-o", "name")
    assert "trafficsplits.split.smi-spec.io" not in crds
