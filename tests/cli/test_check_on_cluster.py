"""`weft check` on the real local cluster, as a user runs it: it passes with the operator
and webhooks running (as `weft demo` runs them: processes with their ServiceAccounts'
tokens), says which resources are not Ready, and fails with the right hint once the
operator has stopped.

The operator generates the identity (trust anchor ConfigMap, issuer Secret) at its first
start, as `weft demo` runs it; test_install_on_cluster.py checks `weft install`'s own.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from weft_runner import Ran, weft

from weft_api import mesh
from weft_api.mesh import ISSUER_SECRET
from weft_cli import local_install
from weft_localcluster import ports, processes
from weft_localcluster.cluster import ClusterInfo

LEASE_SECONDS = 15  # the operator's Lease duration


class ControlPlane:
    def __init__(self, cluster: ClusterInfo, namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace
        self.operator: processes.ProcessRecord | None = None

    def check(self, *args: str) -> Ran:
        return weft(
            "check",
            "--weft-namespace",
            self.namespace,
            *args,
            kubeconfig=str(self.cluster.kubeconfig),
        )

    def stop_operator(self) -> None:
        if self.operator is not None:
            processes.stop(self.operator, Path(self.cluster.state_dir))
            self.operator = None


@pytest.fixture(scope="module")
def control_plane(cluster: ClusterInfo) -> Iterator[ControlPlane]:
    plane = ControlPlane(cluster, f"weft-check-{uuid.uuid4().hex[:6]}")
    plane.operator = local_install.start_operator(
        cluster,
        plane.namespace,
        ports.pick_free(),
        name="weft-operator-check",
        identity_port=ports.pick_free(),
    )
    webhooks = local_install.start_webhooks(
        cluster, plane.namespace, ports.pick_free(), name="weft-webhooks-check"
    )
    # The operator serving identity generates the trust anchor and issuer at first start.
    deadline = time.monotonic() + 60
    while not local_install.kubectl_result(
        cluster, "get", "secret", ISSUER_SECRET, "-n", plane.namespace
    ).stdout:
        assert time.monotonic() < deadline, "the operator made no issuer Secret"
        time.sleep(0.5)
    try:
        yield plane
    finally:
        plane.stop_operator()
        local_install.stop_webhooks(cluster, webhooks)


def lines(ran: Ran) -> list[str]:
    return ran.stdout.splitlines()


def test_check_passes_on_a_working_control_plane(
    control_plane: ControlPlane, namespace: str
) -> None:
    ran = control_plane.check("-n", namespace)
    assert ran.code == 0, ran.stdout
    assert [line for line in lines(ran) if line.startswith("✘")] == []
    assert any(line.startswith("✔ the operator is running: leader ") for line in lines(ran))
    for webhook in ("injection", "validation", "conversion"):
        assert f"✔ the API server calls the {webhook} webhook" in lines(ran)
    assert any(
        line.startswith("✔ the issuer is valid and signed by them: valid until ")
        for line in lines(ran)
    )
    assert lines(ran)[-1].startswith("all ")
    assert lines(ran)[-1].endswith("checks passed")
    assert "\x1b[" not in ran.stdout  # piped: no colors


def test_check_names_a_resource_that_is_not_ready(
    control_plane: ControlPlane, namespace: str
) -> None:
    split = {
        "apiVersion": "split.smi-spec.io/v1alpha4",
        "kind": "TrafficSplit",
        "metadata": {"name": "books", "namespace": namespace},
        "spec": {"service": "books", "backends": [{"service": "books-v2", "weight": 1}]},
    }
    local_install.kubectl(control_plane.cluster, "apply", "-f", "-", stdin=json.dumps(split))
    deadline = time.monotonic() + 30
    while True:  # until the operator has written its status
        ran = control_plane.check("-n", namespace, "-o", "json")
        config = next(c for c in json.loads(ran.stdout)["checks"] if c["category"] == "weft-config")
        if "no status yet" not in config["detail"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert ran.code == 1
    assert config["status"] == "fail"
    assert f"trafficsplit {namespace}/books: Ready is False" in config["detail"]
    assert "books-v2" in config["detail"]
    assert "kubectl describe" in config["hint"]


def test_check_proxy_reports_injected_pods(control_plane: ControlPlane, namespace: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-0",
            "namespace": namespace,
            "annotations": {mesh.INJECT_ANNOTATION: mesh.INJECT_ENABLED},
        },
        "spec": {"containers": [{"name": "web", "image": "ghcr.io/example/web:1.0"}]},
    }
    local_install.kubectl(control_plane.cluster, "apply", "-f", "-", stdin=json.dumps(pod))
    ran = control_plane.check("--proxy", "-n", namespace)
    assert f"✔ meshed pods: 1 of 1 pods in namespace {namespace}" in lines(ran)
    assert f"✔ proxies run the current version: all at {mesh.PROXY_VERSION}" in lines(ran)
    # No node runs pods yet on the local cluster: the proxy is not ready, and check says so.
    assert "✘ proxies are ready" in lines(ran)
    assert f"    proxy not ready: {namespace}/web-0 (Pending)" in lines(ran)
    assert ran.code == 1


def test_check_fails_with_a_hint_once_the_operator_stopped(
    control_plane: ControlPlane, namespace: str
) -> None:
    control_plane.stop_operator()
    deadline = time.monotonic() + LEASE_SECONDS + 30
    while True:  # until the Lease lapses: nobody renews it
        ran = control_plane.check("-n", namespace)
        if "✘ the operator is running" in lines(ran) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert ran.code == 1
    index = lines(ran).index("✘ the operator is running")
    detail, hint = lines(ran)[index + 1 : index + 3]
    assert f"the Lease {control_plane.namespace}/weft-operator was last renewed" in detail
    assert "no operator is running" in detail
    assert hint.startswith("    hint: ")
    assert "weft demo" in hint
    assert lines(ran)[-1].endswith("checks failed")


def test_an_unreachable_cluster_is_one_line(tmp_path: Path, cluster: ClusterInfo) -> None:
    unreachable = tmp_path / "kubeconfig"
    text = cluster.kubeconfig.read_text().replace(
        cluster.server, f"https://127.0.0.1:{ports.pick_free()}"
    )
    unreachable.write_text(text)
    ran = weft("stat", "ts", "-n", "default", kubeconfig=str(unreachable))
    assert "cannot reach the Kubernetes API at https://127.0.0.1:" in ran.one_line_error
    checked = weft("check", kubeconfig=str(unreachable))
    assert checked.code == 1
    assert "✘ can reach the Kubernetes API" in checked.stdout
    assert "is the cluster up" in checked.stdout


def test_unknown_resources_are_one_line(
    control_plane: ControlPlane, cluster: ClusterInfo, namespace: str
) -> None:
    ran = weft("stat", "ts", "nothing", "-n", namespace, kubeconfig=str(cluster.kubeconfig))
    assert ran.one_line_error == f"error: trafficsplit nothing not found in namespace {namespace}"
    ran = weft("routes", "nothing", "-n", namespace, kubeconfig=str(cluster.kubeconfig))
    assert f"serviceprofile nothing.{namespace}.svc.cluster.local not found" in ran.one_line_error
    ran = weft("stat", "deploy", "nothing", "-n", namespace, kubeconfig=str(cluster.kubeconfig))
    assert ran.one_line_error == f"error: no pods of deployment nothing in namespace {namespace}"
