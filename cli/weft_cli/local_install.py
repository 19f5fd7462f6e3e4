"""Install Weft on the local cluster and run its control plane as cluster processes.

The operator runs with its own ServiceAccount's token and the least-privilege RBAC
shipped in the install manifests, never as the cluster admin, so the demo and the
tests prove those manifests suffice.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import time
from pathlib import Path

from weft_cli import manifests, webhook_probes
from weft_localcluster import ports, processes
from weft_localcluster.cluster import ClusterInfo
from weft_localcluster.kubeconfig import write_kubeconfig
from weft_webhooks import cabundle
from weft_webhooks.endpoints import (
    CONVERTED_CRDS,
    MUTATING_CONFIGURATION,
    VALIDATING_CONFIGURATION,
)

OPERATOR = "weft-operator"
WEBHOOKS = "weft-webhooks"
WEBHOOKS_START_TIMEOUT = 60.0


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


def install_crds(info: ClusterInfo) -> None:
    kubectl(info, "apply", "-f", str(manifests.crd_dir()))
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
) -> processes.ProcessRecord:
    """Install what the operator needs and start it; `weft cluster down` stops it.
    With a `config_port` or an `identity_port`, those servers listen there on loopback
    (0: none)."""
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
        "--config-addr=127.0.0.1",
        f"--identity-port={identity_port}",
        "--identity-addr=127.0.0.1",
        "--generate-identity",  # the local cluster has no `weft install` to make the issuer
    ]
    return processes.start(name, argv, Path(info.state_dir))


def start_webhooks(
    info: ClusterInfo, namespace: str, port: int, name: str = WEBHOOKS
) -> processes.ProcessRecord:
    """Start the webhooks on loopback, register them, and return once the API server
    calls all three; `stop_webhooks` undoes it (so does `weft cluster down`)."""
    state = Path(info.state_dir)
    for previous in processes.read_records(state):  # a second `weft demo`: replace it
        if previous.name == name:
            processes.stop(previous, state)
    install_crds(info)
    kubectl(info, "apply", "-f", "-", stdin=manifests.webhooks_rbac(namespace))
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
            raise InstallError(
                f"{record.name} exited during start; its log ({record.log}) ends with:\n"
                f"{processes.log_tail(record)}"
            )
        if bundle_file.exists():
            return bundle_file.read_bytes()
        time.sleep(0.1)
    raise InstallError(f"{record.name} did not start in time; see {record.log}")
