"""Install Weft on the local cluster as a user does, and, for tests that need it, run
its control plane as host processes instead.

`install` is the user's path: `weft install | kubectl apply -f -`, the operator and the
webhooks as pods of the installed Deployments (the node agent's image table runs Weft's
image), reached through their ClusterIP Services (the node agent translates them in
each pod's namespace, as kube-proxy would). `weft demo` and the e2e suite use it.

The host-process control plane (`start_operator`, `start_mesh_control_plane`,
`start_webhooks`) remains for component tests that need what pods do not give them:
an operator started, killed and restarted at will within a test (leader election, two
operators in one namespace), with its log file and coverage on the host, in a
namespace of the test's own on the suite's shared cluster. The operator runs with its
own ServiceAccount's token and the least-privilege RBAC shipped in the install
manifests, never as the cluster admin, so those tests prove the manifests suffice.
Meshed pods reach such an operator's config and identity servers at the bridge's
address in the root namespace, by the Service names injection gives their proxies
(`expose_control_plane`). No route, forwarding or NAT is involved: the bridge's
address is the host's own, one hop from every pod.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from weft_api import mesh
from weft_api.identity import DEFAULT_TRUST_DOMAIN
from weft_api.mesh import ISSUER_SECRET, TRUST_ROOTS, TRUST_ROOTS_KEY
from weft_cli import manifests, webhook_probes
from weft_cli.install import identity as mesh_identity
from weft_cli.install import render, values
from weft_localcluster import ports, processes
from weft_localcluster.cluster import ClusterInfo
from weft_localcluster.kubeconfig import write_kubeconfig
from weft_localcluster.nodeagent import locate
from weft_localcluster.nodeagent.hosts import SERVICE_NAME_LABEL
from weft_webhooks import cabundle
from weft_webhooks.endpoints import (
    CONVERTED_CRDS,
    MUTATING_CONFIGURATION,
    VALIDATING_CONFIGURATION,
)

OPERATOR = "weft-operator"
WEBHOOKS = "weft-webhooks"
WEBHOOKS_START_TIMEOUT = 60.0
# Covers a Lease a killed operator left behind (15 s) and the operator's own start.
OPERATOR_START_TIMEOUT = 60.0
# The installed Deployments: pods scheduled, Weft's image started, probes passed.
ROLLOUT_TIMEOUT_S = 180
CONTROL_PLANE_DEPLOYMENTS = (OPERATOR, WEBHOOKS)


class InstallError(RuntimeError):
    pass


def kubectl_result(
    info: ClusterInfo, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the cluster's own kubectl (its version matches the API server's)."""
    cmd = [str(Path(info.bin_dir) / "kubectl"), f"--kubeconfig={info.kubeconfig}", *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)


def kubectl(info: ClusterInfo, *args: str, stdin: str | None = None) -> str:
    result = kubectl_result(info, *args, stdin=stdin)
    if result.returncode != 0:
        raise InstallError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def install_manifests(info: ClusterInfo, namespace: str, chosen: Sequence[str] = ()) -> str:
    """What `weft install --weft-namespace=NAMESPACE` prints. On a cluster Weft is
    installed on already (a second `weft demo`), the mesh identity there is kept, as
    `weft install --set-file identity...=` with the issuer's files would: a new one would
    leave running proxies with certificates no peer trusts."""
    settings = [f"{key}={pem}" for key, pem in installed_identity(info, namespace).items()]
    resolved = values.resolve(False, [*settings, *chosen])
    made = mesh_identity.from_values(resolved, datetime.datetime.now(datetime.UTC))
    return render.install(namespace, resolved, made)


def installed_identity(info: ClusterInfo, namespace: str) -> dict[str, str]:
    """The issuer Secret's PEMs as `weft install` values; empty if there is none."""
    found = kubectl_result(
        info, "get", "secret", ISSUER_SECRET, "-n", namespace, "-o", "json", "--ignore-not-found"
    )
    if found.returncode != 0:
        raise InstallError(f"cannot read the issuer Secret: {found.stderr.strip()}")
    if not found.stdout.strip():
        return {}
    data = json.loads(found.stdout).get("data", {})
    pems = {
        key: base64.b64decode(data.get(field, "")).decode()
        for key, field in zip(
            mesh_identity.ISSUER_KEYS, ("ca.crt", "tls.crt", "tls.key"), strict=True
        )
    }
    return pems if all(pems.values()) else {}


def install(info: ClusterInfo, namespace: str, chosen: Sequence[str] = ()) -> None:
    """`weft install [--set KEY=VALUE for each of chosen] | kubectl apply -f -`, then
    wait as a user would: the operator and webhook Deployments rolled out, and the API
    server calling every webhook (pods created before injection answers would run
    unmeshed)."""
    kubectl(info, "apply", "-f", "-", stdin=install_manifests(info, namespace, chosen))
    kubectl(
        info, "rollout", "status", "-n", namespace,
        *(f"deployment/{name}" for name in CONTROL_PLANE_DEPLOYMENTS),
        f"--timeout={ROLLOUT_TIMEOUT_S}s",
    )  # fmt: skip
    try:
        webhook_probes.wait_until_called(
            functools.partial(kubectl_result, info), WEBHOOKS_START_TIMEOUT
        )
    except TimeoutError as error:
        raise InstallError(
            f"{error}; see kubectl -n {namespace} logs deployment/{WEBHOOKS}"
        ) from None


def uninstall(info: ClusterInfo, namespace: str) -> None:
    """`weft uninstall | kubectl delete -f -`, then the CRDs back to no conversion
    webhook (`weft install --crds | kubectl apply -f -`), as `weft uninstall` advises.
    Users' resources and the CRDs stay."""
    listed = render.uninstall(namespace, values.defaults(), include_crds=False)
    kubectl(info, "delete", "--ignore-not-found", "--wait=false", "-f", "-", stdin=listed)
    kubectl(info, "apply", "-f", "-", stdin=render.crds_only())


def install_crds(info: ClusterInfo) -> None:
    """Apply the CRDs, new schemas included. A CRD already switched to the conversion
    webhook (`register_webhooks`) keeps that: applying the file's `strategy: None` over
    it would be refused (the webhook's client config may only go with Webhook)."""
    listed = json.loads(kubectl(info, "get", "crd", "-o", "json"))["items"]
    registered = {
        crd["metadata"]["name"]: crd["spec"]["conversion"]
        for crd in listed
        if crd["spec"].get("conversion", {}).get("strategy") == "Webhook"
    }
    documents = []
    for path in manifests.crd_files():
        for document in yaml.safe_load_all(path.read_text()):
            if document and document["metadata"]["name"] in registered:
                document["spec"]["conversion"] = registered[document["metadata"]["name"]]
            if document:
                documents.append(document)
    kubectl(info, "apply", "-f", "-", stdin=yaml.safe_dump_all(documents))
    kubectl(info, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")


def install_operator_rbac(info: ClusterInfo, namespace: str) -> None:
    kubectl(info, "apply", "-f", "-", stdin=manifests.operator_rbac(namespace))


def operator_kubeconfig(info: ClusterInfo, namespace: str) -> Path:
    return service_account_kubeconfig(info, namespace, OPERATOR)


def service_account_kubeconfig(info: ClusterInfo, namespace: str, account: str) -> Path:
    """A kubeconfig holding a token of a ServiceAccount (TokenRequest API)."""
    token = kubectl(info, "create", "token", account, "-n", namespace, "--duration=24h").strip()
    ca_pem = (Path(info.state_dir) / "pki" / "ca.crt").read_bytes()
    path = Path(info.state_dir) / f"{account}-{namespace}.kubeconfig"
    return write_kubeconfig(path, info.server, ca_pem, token)


def start_operator(
    info: ClusterInfo,
    namespace: str,
    metrics_port: int,
    name: str = OPERATOR,
    config_port: int = 0,
    identity_port: int = 0,
    address: str = ports.HOST,
) -> processes.ProcessRecord:
    """Install what the operator needs and start it; `weft cluster down` stops it.
    With a `config_port` or an `identity_port`, those servers listen there on `address`
    (0: none); loopback unless pods must reach them (`start_mesh_control_plane`)."""
    install_crds(info)
    install_operator_rbac(info, namespace)
    argv = [
        sys.executable,
        "-m",
        "weft_operator",
        f"--kubeconfig={operator_kubeconfig(info, namespace)}",
        f"--namespace={namespace}",
        f"--metrics-port={metrics_port}",
        "--metrics-addr=127.0.0.1",
        f"--config-port={config_port}",
        f"--config-addr={address}",
        f"--identity-port={identity_port}",
        f"--identity-addr={address}",
        "--generate-identity",  # the local cluster has no `weft install` to make the issuer
    ]
    return processes.start(name, argv, Path(info.state_dir))


def pod_gateway(info: ClusterInfo) -> str:
    """The bridge's address in the root namespace: where the cluster's pods reach the
    host. Each cluster has its own bridge, so fixed ports on it do not collide."""
    try:
        return locate.node_network(Path(info.state_dir)).gateway
    except LookupError as error:  # no node agent has claimed a bridge: no pods either
        raise InstallError(f"{error}; is the node agent running (`weft cluster status`)?") from None


def start_mesh_control_plane(
    info: ClusterInfo, namespace: str, metrics_port: int, name: str = OPERATOR
) -> processes.ProcessRecord:
    """The operator as meshed pods need it: its config and identity servers on the
    bridge's gateway at the mesh's ports, behind the names injection gives proxies.
    Returns once both listen. The metrics stay on loopback: only the host reads them."""
    state = Path(info.state_dir)
    _stop_previous(state, name)  # a second `weft demo`: the ports are fixed
    gateway = expose_control_plane(info, namespace)
    record = start_operator(
        info,
        namespace,
        metrics_port,
        name,
        config_port=mesh.CONFIG_PORT,
        identity_port=mesh.IDENTITY_PORT,
        address=gateway,
    )
    try:
        for port in (mesh.IDENTITY_PORT, mesh.CONFIG_PORT):
            _wait_for_listener(record, gateway, port, OPERATOR_START_TIMEOUT)
    except BaseException:
        processes.stop(record, state)
        raise
    return record


def _stop_previous(state: Path, name: str) -> None:
    for previous in processes.read_records(state):
        if previous.name == name:
            processes.stop(previous, state)


def expose_control_plane(info: ClusterInfo, namespace: str) -> str:
    """Name the config and identity servers for pods: headless Services without a
    selector (mesh.CONFIG_SERVICE, mesh.IDENTITY_SERVICE in `namespace`), each with an
    EndpointSlice holding the bridge's gateway, which the node agent writes into pods'
    hosts files (no kube-proxy: a ClusterIP would lead nowhere). Returns the gateway."""
    gateway = pod_gateway(info)
    objects: list[dict[str, Any]] = []
    for service, port in (
        (mesh.CONFIG_SERVICE, mesh.CONFIG_PORT),
        (mesh.IDENTITY_SERVICE, mesh.IDENTITY_PORT),
    ):
        objects += _host_service(namespace, service, port, gateway)
    listed = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    kubectl(
        info, "apply", "-f", "-", stdin=f"{manifests.namespace_manifest(namespace)}---\n{listed}"
    )
    return gateway


def _host_service(namespace: str, name: str, port: int, address: str) -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/part-of": "weft"}
    grpc_port = {"name": "grpc", "port": port, "protocol": "TCP"}
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"clusterIP": "None", "ports": [{**grpc_port, "targetPort": port}]},
    }
    endpoints = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{name}-host",
            "namespace": namespace,
            # No managed-by label: the EndpointSlice controllers leave this one alone.
            "labels": {**labels, SERVICE_NAME_LABEL: name},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [grpc_port],
    }
    return [service, endpoints]


def _wait_for_listener(
    record: processes.ProcessRecord, host: str, port: int, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not processes.alive(record):
            raise _exited(record)
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise InstallError(f"{record.name} did not listen on {host}:{port} in time; see {record.log}")


def install_mesh_identity(
    info: ClusterInfo, namespace: str, trust_domain: str = DEFAULT_TRUST_DOMAIN
) -> None:
    """The trust anchors and issuer, as `weft install` ships them, unless `namespace`
    has an issuer already (an operator with --generate-identity may have made it).
    Injection needs the anchors before any operator has run."""
    made = mesh_identity.generate(trust_domain, datetime.datetime.now(datetime.UTC))
    rendered = manifests.render(
        "identity",
        namespace=namespace,
        trust_roots={"name": TRUST_ROOTS, "key": TRUST_ROOTS_KEY},
        issuer_secret=ISSUER_SECRET,
        trust_anchors_pem=made.trust_anchors_pem,
        issuer_crt_pem=made.issuer_crt_pem,
        issuer_key_pem=made.issuer_key_pem,
        issuer_external=False,
    )
    by_kind = {doc["kind"]: doc for doc in yaml.safe_load_all(rendered) if doc}
    # The Secret first, as the operator does: whoever creates it publishes the roots.
    created = kubectl_result(info, "create", "-f", "-", stdin=json.dumps(by_kind["Secret"]))
    if created.returncode != 0:
        if "AlreadyExists" in created.stderr:
            return
        raise InstallError(f"cannot create the issuer Secret: {created.stderr.strip()}")
    kubectl(info, "apply", "-f", "-", stdin=json.dumps(by_kind["ConfigMap"]))


def start_webhooks(
    info: ClusterInfo, namespace: str, port: int, name: str = WEBHOOKS
) -> processes.ProcessRecord:
    """Start the webhooks on loopback, register them, and return once the API server
    calls all three; `stop_webhooks` undoes it (so does `weft cluster down`)."""
    state = Path(info.state_dir)
    _stop_previous(state, name)  # a second `weft demo`: replace it
    install_crds(info)
    kubectl(info, "apply", "-f", "-", stdin=manifests.webhooks_rbac(namespace))
    install_mesh_identity(info, namespace)
    bundle_file = state / f"{name}-ca.crt"
    bundle_file.unlink(missing_ok=True)
    argv = [
        sys.executable,
        "-m",
        "weft_webhooks",
        f"--kubeconfig={service_account_kubeconfig(info, namespace, WEBHOOKS)}",
        f"--listen-address={ports.HOST}",
        f"--port={port}",
        f"--serving-ip={ports.HOST}",
        f"--ca-bundle-file={bundle_file}",
        f"--control-plane-namespace={namespace}",
    ]
    record = processes.start(name, argv, state)
    try:
        bundle = _wait_for_bundle(record, bundle_file)
        register_webhooks(info, namespace, f"https://{ports.HOST}:{port}", bundle)
        webhook_probes.wait_until_called(
            functools.partial(kubectl_result, info), WEBHOOKS_START_TIMEOUT
        )
    except TimeoutError as error:
        stop_webhooks(info, record)
        raise InstallError(f"{error}; see {record.log}") from None
    except BaseException:
        stop_webhooks(info, record)
        raise
    return record


def register_webhooks(info: ClusterInfo, namespace: str, url: str, bundle_pem: bytes) -> None:
    """The API server calls `url` to inject, validate and convert, trusting `bundle_pem`."""
    ca_bundle = cabundle.encode(bundle_pem)
    configurations = manifests.webhook_configurations(namespace, url, ca_bundle)
    kubectl(info, "apply", "-f", "-", stdin=configurations)
    conversion = json.dumps(manifests.crd_conversion(url, ca_bundle))
    for crd in CONVERTED_CRDS:
        kubectl(info, "patch", "crd", crd, "--type=merge", "-p", conversion)


def stop_webhooks(info: ClusterInfo, record: processes.ProcessRecord) -> None:
    """Unregister first, so that the API server never calls a stopped server."""
    kubectl(
        info,
        "delete",
        f"mutatingwebhookconfiguration/{MUTATING_CONFIGURATION}",
        f"validatingwebhookconfiguration/{VALIDATING_CONFIGURATION}",
        "--ignore-not-found",
    )
    no_conversion = json.dumps({"spec": {"conversion": {"strategy": "None", "webhook": None}}})
    for crd in CONVERTED_CRDS:
        kubectl(info, "patch", "crd", crd, "--type=merge", "-p", no_conversion)
    processes.stop(record, Path(info.state_dir))


def _wait_for_bundle(record: processes.ProcessRecord, bundle_file: Path) -> bytes:
    """The server writes its CA bundle once it listens."""
    deadline = time.monotonic() + WEBHOOKS_START_TIMEOUT
    while time.monotonic() < deadline:
        if not processes.alive(record):
            raise _exited(record)
        if bundle_file.exists():
            return bundle_file.read_bytes()
        time.sleep(0.1)
    raise InstallError(f"{record.name} did not start in time; see {record.log}")


def _exited(record: processes.ProcessRecord) -> InstallError:
    return InstallError(
        f"{record.name} exited during start; its log ({record.log}) ends with:\n"
        f"{processes.log_tail(record)}"
    )
