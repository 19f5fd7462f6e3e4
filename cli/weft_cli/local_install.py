"""Install Weft on the local cluster and run its control plane as cluster processes.

The operator runs with its own ServiceAccount's token and the least-privilege RBAC
shipped in the install manifests, never as the cluster admin, so the demo and the
tests prove those manifests suffice.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from weft_cli import manifests
from weft_localcluster import processes
from weft_localcluster.cluster import ClusterInfo
from weft_localcluster.kubeconfig import write_kubeconfig

OPERATOR = "weft-operator"


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
    """A kubeconfig holding a token of the operator's ServiceAccount (TokenRequest API)."""
    token = kubectl(info, "create", "token", OPERATOR, "-n", namespace, "--duration=24h").strip()
    ca_pem = (Path(info.state_dir) / "pki" / "ca.crt").read_bytes()
    path = Path(info.state_dir) / f"{OPERATOR}-{namespace}.kubeconfig"
    return write_kubeconfig(path, info.server, ca_pem, token)


def start_operator(
    info: ClusterInfo, namespace: str, metrics_port: int, name: str = OPERATOR
) -> processes.ProcessRecord:
    """Install what the operator needs and start it; `weft cluster down` stops it."""
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
    ]
    return processes.start(name, argv, Path(info.state_dir))
