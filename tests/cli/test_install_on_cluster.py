"""`weft install | kubectl apply -f -` on a fresh local cluster of its own (its
webhook configurations are cluster-wide, so not on the suite's shared cluster), and
`weft check` before and after, as a user would run them: what is missing is named,
with the command that fixes it.

The control plane runs in the cluster, as pods of the installed Deployments: the node
agent's image table maps Weft's image to this machine's Python, and gives pods the API
server (the `kubernetes` Service) and their ServiceAccount's files (api_access.py).
`weft check` passes, and fails with the right hint once the operator is scaled to zero.

Then the bookshop sample, applied as its README says, runs meshed on that install: every
pod Ready 2/2, its calls mTLS with the callers' identities, and `kubectl logs`, `exec`
and `port-forward` reach a meshed pod. That is the README's path, checked end to end.
`weft tap` reaches its proxies over mTLS with the CLI's certificate, which RBAC grants,
and nothing else may tap them.
"""

from __future__ import annotations

import json
import selectors
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from meshed_traffic import Traffic
from weft_runner import Ran, weft

from weft_api import mesh
from weft_api.csr import certificate_request, new_key
from weft_api.identity import identity_name, spiffe_id
from weft_api.proto import identity_pb2, identity_pb2_grpc, tap_pb2, tap_pb2_grpc
from weft_cli import local_install, sample_app
from weft_localcluster.cluster import ClusterInfo, LocalCluster

ROOT = Path(__file__).resolve().parents[2]
BOOKSHOP = ROOT / "samples" / "01-bookshop" / "manifests"
SHOP = sample_app.NAMESPACE  # as the manifests are written


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
        "✔ Weft's CRDs are installed: 13 CRDs",
        "✔ the webhooks are registered: weft-proxy-injector, weft-validator",
    ):
        assert passed in ran.stdout.splitlines()
    assert any(
        line.startswith("✔ the operator is running: leader weft-operator-")
        for line in ran.stdout.splitlines()
    )
    pre = check(fresh, "--pre")
    assert failure(pre, "the control plane namespace is free")[0] == "namespace weft already exists"


def shop_pods(cluster: ClusterInfo) -> dict[str, str]:
    """Pod name -> READY, as `kubectl get pods` shows them to the user."""
    listed = local_install.kubectl(cluster, "get", "pods", "-n", SHOP, "--no-headers")
    return {line.split()[0]: line.split()[1] for line in listed.splitlines() if line.strip()}


def edges(cluster: ClusterInfo) -> list[dict[str, object]]:
    ran = weft("edges", "-n", SHOP, "-o", "json", "-w", "5s", kubeconfig=str(cluster.kubeconfig))
    assert ran.code == 0, ran.stderr
    rows: list[dict[str, object]] = json.loads(ran.stdout)
    return rows


def call_from(cluster: ClusterInfo, deployment: str, url: str) -> str:
    """`kubectl exec` into a meshed pod's app container: the status of a GET it makes
    (through its own proxy, as the app's calls go)."""
    script = (
        "import urllib.request, urllib.error\n"
        "try:\n"
        f"    print(urllib.request.urlopen({url!r}, timeout=10).status)\n"
        "except urllib.error.HTTPError as error:\n"
        "    print(error.code)\n"
    )
    return local_install.kubectl(
        cluster, "exec", "-n", SHOP, f"deploy/{deployment}", "-c", deployment, "--",
        "python3", "-c", script,
    ).strip()  # fmt: skip


def forwarded_port(process: subprocess.Popen[str], seconds: float) -> int:
    """The local port `kubectl port-forward ... :PORT` printed it listens on."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not selector.select(timeout=deadline - time.monotonic()):
                break
            line = process.stdout.readline()
            assert line, f"kubectl port-forward exited: {process.communicate()[1]}"
            if line.startswith("Forwarding from 127.0.0.1:"):
                return int(line.split(":", 1)[1].split()[0])
    raise AssertionError(f"kubectl port-forward printed no port within {seconds:.0f}s")


def test_the_bookshop_sample_is_meshed_with_mtls_and_kubectl_reaches_its_pods(
    fresh: ClusterInfo,
) -> None:
    """The README's path on the install above: `kubectl apply -f
    samples/01-bookshop/manifests/`. A proxy is Ready once it holds a certificate from
    the identity Service and its config from the config Service, both ClusterIPs in
    front of the operator's pod: before the node agent translated ClusterIPs in pods'
    namespaces, no proxy got either and no pod reached 2/2; before it served a kubelet
    API, `kubectl logs` and `exec` had nowhere to go."""
    local_install.kubectl(fresh, "apply", "-f", str(BOOKSHOP))
    docs = sample_app.documents()
    replicas = sum(doc["spec"].get("replicas", 1) for doc in docs if doc["kind"] == "Deployment")
    for name in sample_app.deployments(docs):
        rolled = local_install.kubectl_result(
            fresh, "rollout", "status", f"deployment/{name}", "-n", SHOP,
            f"--timeout={sample_app.ROLLOUT_TIMEOUT_S}s",
        )  # fmt: skip
        assert rolled.returncode == 0, sample_app.not_ready(fresh, SHOP)
    wait_until(
        "every bookshop pod Ready 2/2 (app and proxy)",
        60,
        lambda: list(shop_pods(fresh).values()) == ["2/2"] * replicas,
    )

    # mTLS between the pods, each side with its ServiceAccount's identity (the sample's
    # traffic pod calls web, web calls books and ratings).
    web, books = identity_name("web", SHOP), identity_name("books", SHOP)

    def web_to_books_over_mtls() -> bool:
        return any(
            row["src"] == "deploy/web"
            and str(row["dst"]).startswith("deploy/books-")
            and row["secured"] is True
            and row["client_id"] == web
            and row["server_id"] == books
            for row in edges(fresh)
        )

    wait_until("weft edges shows web -> books over mTLS", 90, web_to_books_over_mtls)
    # books admits only web's identity: the proxies check the peer's certificate.
    books_url = f"http://books.{SHOP}.svc.cluster.local:8080/books"
    assert call_from(fresh, "web", books_url) == "200"
    assert call_from(fresh, "traffic", books_url) == "403"  # meshed, not authorized
    books_ip = json.loads(
        local_install.kubectl(fresh, "get", "pods", "-n", SHOP, "-l", "app=books", "-o", "json")
    )["items"][0]["status"]["podIP"]
    with pytest.raises(urllib.error.HTTPError) as refused:  # the host: unmeshed, plaintext
        urllib.request.urlopen(f"http://{books_ip}:8080/books", timeout=10)
    assert refused.value.code == 403
    assert "unauthorized" in refused.value.headers["weft-proxy-error"]

    # kubectl logs, of the app and of its proxy, and port-forward to the app.
    wait_until(
        "kubectl logs shows web's first line",
        30,
        lambda: (
            "Running on"
            in local_install.kubectl(fresh, "logs", "-n", SHOP, "deploy/web", "-c", "web")
        ),
    )
    proxy_log = local_install.kubectl(fresh, "logs", "-n", SHOP, "deploy/web", "-c", "weft-proxy")
    assert f"proxy {SHOP}/web-" in proxy_log
    assert "listening" in proxy_log
    forward = subprocess.Popen(
        [str(Path(fresh.bin_dir) / "kubectl"), f"--kubeconfig={fresh.kubeconfig}",
         "port-forward", "-n", SHOP, "deploy/web", ":8080"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        port = forwarded_port(forward, 30)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/books", timeout=10) as page:
            assert page.status == 200
            assert json.load(page)["books"]
    finally:
        forward.terminate()
        forward.communicate(timeout=10)
    admin = local_install.kubectl(
        fresh, "exec", "-n", SHOP, "deploy/web", "-c", "web", "--",
        "python3", "-c",
        f"import urllib.request; print(urllib.request.urlopen("
        f"'http://127.0.0.1:{mesh.PROXY_ADMIN_PORT}/ready', timeout=10).status)",
    )  # fmt: skip
    assert admin.strip() == "200"  # exec runs in the pod's namespace, beside its proxy


def tap(cluster: ClusterInfo, kubeconfig: Path | None = None) -> Ran:
    return weft(
        "tap", "deploy/books-v1", "-n", SHOP, "--limit", "3", "-o", "json",
        kubeconfig=str(kubeconfig or cluster.kubeconfig),
    )  # fmt: skip


def tapped_events(ran: Ran) -> list[dict[str, object]]:
    assert ran.code == 0, ran.stderr
    return [json.loads(line) for line in ran.stdout.splitlines() if line.strip()]


def books_pod(cluster: ClusterInfo) -> dict[str, str]:
    pod = json.loads(
        local_install.kubectl(cluster, "get", "pods", "-n", SHOP, "-l", "app=books", "-o", "json")
    )["items"][0]
    return {"name": pod["metadata"]["name"], "ip": pod["status"]["podIP"]}


def trust_anchors(cluster: ClusterInfo) -> bytes:
    return local_install.kubectl(
        cluster, "get", "configmap", "weft-identity-trust-roots", "-n", "weft",
        "-o", "jsonpath={.data.ca-bundle\\.crt}",
    ).encode()  # fmt: skip


def leaf_of(cluster: ClusterInfo, account: str, namespace: str) -> tuple[bytes, bytes]:
    """(key, chain) PEM of a leaf the identity service issues for `account`, asked for
    as a proxy does (a token of audience identity.weft.dev), through kubectl port-forward."""
    token = local_install.kubectl(
        cluster, "create", "token", account, "-n", namespace,
        f"--audience={mesh.IDENTITY_TOKEN_AUDIENCE}", "--duration=10m",
    ).strip()  # fmt: skip
    forward = subprocess.Popen(
        [str(Path(cluster.bin_dir) / "kubectl"), f"--kubeconfig={cluster.kubeconfig}",
         "port-forward", "-n", "weft", "deploy/weft-operator", f":{mesh.IDENTITY_PORT}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        port = forwarded_port(forward, 30)
        key = new_key()
        identity = identity_name(account, namespace)
        request = identity_pb2.CertifyRequest(
            identity=identity,
            token=token,
            certificate_signing_request=certificate_request(
                key, identity, spiffe_id(account, namespace)
            ),
        )
        credentials = grpc.ssl_channel_credentials(root_certificates=trust_anchors(cluster))
        server = [("grpc.ssl_target_name_override", identity_name("weft-operator", "weft"))]
        with grpc.secure_channel(f"127.0.0.1:{port}", credentials, server) as channel:
            response = identity_pb2_grpc.IdentityStub(channel).Certify(request, timeout=30)
    finally:
        forward.terminate()
        forward.communicate(timeout=10)
    pem = serialization.Encoding.PEM
    chain = [response.leaf_certificate, *response.intermediate_certificates]
    return (
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        b"".join(x509.load_der_x509_certificate(der).public_bytes(pem) for der in chain),
    )


def observe_status(channel: grpc.Channel) -> tuple[grpc.StatusCode, str]:
    """What a real gRPC tap client gets from Tap.Observe: refused, or an event."""
    stream = tap_pb2_grpc.TapStub(channel).Observe(tap_pb2.ObserveRequest(limit=1), timeout=30)
    try:
        next(iter(stream))
    except grpc.RpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


def test_tap_over_mtls_admits_only_the_clis_identity(fresh: ClusterInfo) -> None:
    """Injection closes each proxy's tap port to all but `weft tap`'s certificate
    (the ServiceAccount weft/weft-cli's, obtained with the user's kube credentials):
    `weft tap` shows the requests; a client without a certificate, or with another
    identity's leaf, is refused."""
    events = tapped_events(tap(fresh))
    assert len(events) == 3, events
    assert any(event["source_identity"] == identity_name("web", SHOP) for event in events), events
    assert all(event["tls"] is True for event in events), events

    books = books_pod(fresh)
    address = f"{books['ip']}:{mesh.PROXY_TAP_PORT}"
    with grpc.insecure_channel(address) as plain:
        assert observe_status(plain)[0] == grpc.StatusCode.UNAVAILABLE  # no TLS
    anchors = trust_anchors(fresh)
    proxy = [("grpc.ssl_target_name_override", identity_name("books", SHOP))]
    anonymous = grpc.ssl_channel_credentials(root_certificates=anchors)
    with grpc.secure_channel(address, anonymous, proxy) as channel:
        assert observe_status(channel)[0] == grpc.StatusCode.UNAVAILABLE  # no certificate
    key, chain = leaf_of(fresh, "web", SHOP)
    as_web = grpc.ssl_channel_credentials(anchors, private_key=key, certificate_chain=chain)
    with grpc.secure_channel(address, as_web, proxy) as channel:
        code, details = observe_status(channel)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert identity_name("web", SHOP) in details, details
    assert "may not tap this proxy" in details, details


def test_tap_needs_the_rbac_that_grants_the_clis_token(fresh: ClusterInfo, tmp_path: Path) -> None:
    """A user who may read the namespace's pods but not create weft-cli's token gets a
    clear error naming the Role to ask for; once bound to it, they may tap."""
    local_install.kubectl(fresh, "create", "serviceaccount", "viewer", "-n", SHOP)
    local_install.kubectl(
        fresh, "create", "rolebinding", "viewer-view", "-n", SHOP,
        "--clusterrole=view", f"--serviceaccount={SHOP}:viewer",
    )  # fmt: skip
    token = local_install.kubectl(fresh, "create", "token", "viewer", "-n", SHOP).strip()
    config = yaml.safe_load(Path(fresh.kubeconfig).read_text())
    for user in config["users"]:
        user["user"] = {"token": token}
    viewer = tmp_path / "viewer.kubeconfig"
    viewer.write_text(yaml.safe_dump(config))

    refused = tap(fresh, viewer).one_line_error
    assert refused.startswith(
        "error: you may not tap: the API server refused a token of the ServiceAccount "
        "weft/weft-cli ("
    ), refused
    assert refused.endswith(
        "ask for the Role weft-tap: kubectl -n weft create rolebinding NAME --role=weft-tap "
        "--user=YOU"
    ), refused
    local_install.kubectl(
        fresh, "create", "rolebinding", "viewer-tap", "-n", "weft",
        "--role=weft-tap", f"--serviceaccount={SHOP}:viewer",
    )  # fmt: skip
    assert len(tapped_events(tap(fresh, viewer))) == 3


def running_identity(cluster: ClusterInfo) -> tuple[str, str]:
    """The trust roots ConfigMap's and the issuer Secret's data, as running."""
    return tuple(  # type: ignore[return-value]
        local_install.kubectl(cluster, "get", kind, name, "-n", "weft", "-o", "jsonpath={.data}")
        for kind, name in (
            ("configmap", "weft-identity-trust-roots"),
            ("secret", "weft-identity-issuer"),
        )
    )


def operator_pods(cluster: ClusterInfo) -> set[str]:
    return set(
        local_install.kubectl(
            cluster, "get", "pods", "-n", "weft", "-l", "app.kubernetes.io/name=weft-operator",
            "-o", "jsonpath={.items[*].metadata.name}",
        ).split()
    )  # fmt: skip


def test_weft_upgrade_keeps_the_identity_and_drops_no_meshed_request(fresh: ClusterInfo) -> None:
    """`weft upgrade | kubectl apply -f -` on the running mesh, with a changed value so
    the operator and the webhooks roll, while web calls books without pause. Re-applying
    `weft install` instead would replace the anchors, and the new operator's
    certificates would chain to roots the running proxies do not trust."""
    before = running_identity(fresh)
    old_operators = operator_pods(fresh)
    books_url = f"http://books.{SHOP}.svc.cluster.local:8080/books"
    traffic = Traffic(fresh, SHOP, client="web", target=books_url)
    try:
        traffic.wait_for_more(5)
        upgrade = weft(
            "upgrade", "--set", "operator.memoryLimit=600Mi", "--set", "webhooks.memoryLimit=300Mi",
            kubeconfig=str(fresh.kubeconfig),
        )  # fmt: skip
        assert upgrade.code == 0, upgrade.stderr
        assert "rendered with the running mesh's trust anchors and issuer" in upgrade.stderr
        local_install.kubectl(fresh, "apply", "-f", "-", stdin=upgrade.stdout)
        local_install.kubectl(
            fresh, "rollout", "status", "-n", "weft", "deployment/weft-operator",
            "deployment/weft-webhooks", "--timeout=180s",
        )  # fmt: skip
        wait_until(
            "a new operator pod holds the Lease",
            120,
            lambda: lease_holder(fresh) in operator_pods(fresh) - old_operators,
        )
        wait_until("weft check passes", 120, lambda: check(fresh).code == 0)
        traffic.wait_for_more(5)
        # A pod started now has its certificate from the new operator: web still
        # reaches it over mTLS (books admits only web's identity).
        local_install.kubectl(fresh, "rollout", "restart", "deployment/books-v2", "-n", SHOP)
        local_install.kubectl(
            fresh, "rollout", "status", "deployment/books-v2", "-n", SHOP, "--timeout=180s"
        )
        books_v2 = f"http://books-v2.{SHOP}.svc.cluster.local:8080/books"
        # The rollout ends when the new pod is ready; web's proxy learns its endpoint
        # (and that the old one is gone) a config push later.
        wait_until(
            "web reaches the restarted books-v2",
            60,
            lambda: call_from(fresh, "web", books_v2) == "200",
        )
        traffic.wait_for_more(5)
    finally:
        traffic.stop()
    assert traffic.failures() == []
    # An exec stream that ended (traffic.dropped) was the channel, not web: it never
    # restarted, so no request of it went unseen.
    assert container_restarts(fresh, SHOP, "web") == 0, traffic.dropped
    assert running_identity(fresh) == before


def container_restarts(cluster: ClusterInfo, namespace: str, app: str) -> int:
    pods = json.loads(
        local_install.kubectl(cluster, "get", "pods", "-n", namespace, "-l", f"app={app}",
                              "-o", "json")
    )["items"]  # fmt: skip
    return sum(
        status.get("restartCount", 0)
        for pod in pods
        for key in ("initContainerStatuses", "containerStatuses")  # the proxy is a sidecar
        for status in pod["status"].get(key, [])
    )


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
    assert len(left) == 13  # Weft's kinds, IdentityBinding included
    assert "weft-proxy-injector" not in local_install.kubectl(
        fresh, "get", "mutatingwebhookconfigurations"
    )
