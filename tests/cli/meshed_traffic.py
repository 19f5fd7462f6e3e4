"""A meshed pair on an installed cluster, and a client calling through it without
pause while the control plane is upgraded: what a user watches to know an upgrade
dropped nothing.

The pair is two Deployments of the `python` image in a namespace with injection on:
`server` (http.server on 8080, behind a Service) and `client` (idle). The traffic is a
loop run by `kubectl exec` in the client's app container, so every request leaves
through the client's proxy and reaches the server's over mTLS; it prints one line per
request, and stops when told on its stdin.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from weft_api import mesh
from weft_cli import local_install, sample_app
from weft_localcluster.cluster import ClusterInfo

PORT = 8080
IDLE = ["python3", "-c", "import signal; signal.pause()"]
# IPv4 on purpose: http.server's default may pick IPv6, which pods' namespaces lack.
SERVE = ["python3", "-m", "http.server", str(PORT), "--bind", "0.0.0.0"]


def wait_until(what: str, seconds: float, probe: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while not probe():
        assert time.monotonic() < deadline, f"not within {seconds:.0f}s: {what}"
        time.sleep(0.5)


def _deployment(namespace: str, name: str, command: list[str]) -> list[dict[str, Any]]:
    labels = {"app": name}
    container: dict[str, Any] = {
        "name": name,
        "image": "python",
        "command": command,  # no workingDir: the node agent runs it in a folder of its own
    }
    if command == SERVE:
        container["ports"] = [{"name": "http", "containerPort": PORT}]
        container["readinessProbe"] = {"tcpSocket": {"port": PORT}, "periodSeconds": 2}
    account = {"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": name, "namespace": namespace}}  # fmt: skip
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"serviceAccountName": name, "containers": [container]},
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": PORT}]},
    }
    return [account, deployment] + ([service] if command == SERVE else [])


def namespace_manifest(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace, "annotations": {mesh.INJECT_ANNOTATION: "enabled"}},
    }


def apply(cluster: ClusterInfo, *objects: dict[str, Any]) -> None:
    items = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    local_install.kubectl(cluster, "apply", "-f", "-", stdin=json.dumps(items))


def start_server(cluster: ClusterInfo, namespace: str, name: str) -> None:
    """A meshed server Deployment and its Service, rolled out 2/2 (app and proxy)."""
    apply(cluster, *_deployment(namespace, name, SERVE))
    rolled_out(cluster, namespace, name)


def start_pair(cluster: ClusterInfo, namespace: str) -> None:
    apply(cluster, namespace_manifest(namespace), *_deployment(namespace, "client", IDLE))
    start_server(cluster, namespace, "server")
    rolled_out(cluster, namespace, "client")


def rolled_out(cluster: ClusterInfo, namespace: str, name: str) -> None:
    rolled = local_install.kubectl_result(
        cluster, "rollout", "status", f"deployment/{name}", "-n", namespace, "--timeout=240s"
    )
    assert rolled.returncode == 0, sample_app.not_ready(cluster, namespace)
    pods = json.loads(
        local_install.kubectl(cluster, "get", "pods", "-n", namespace, "-l", f"app={name}",
                              "-o", "json")
    )["items"]  # fmt: skip
    containers = [c["name"] for pod in pods for c in pod["spec"].get("initContainers", [])]
    assert mesh.PROXY_CONTAINER in containers, f"{name} is not meshed: {pods}"


def url(namespace: str, service: str = "server") -> str:
    return f"http://{service}.{namespace}.svc.cluster.local:{PORT}/"


def call(cluster: ClusterInfo, namespace: str, service: str) -> str:
    """One GET from the client's app container: its status, or the error."""
    script = (
        "import urllib.request\n"
        "try:\n"
        f"    print(urllib.request.urlopen({url(namespace, service)!r}, timeout=10).status)\n"
        "except Exception as error:\n"
        "    print(repr(error))\n"
    )
    return local_install.kubectl(
        cluster, "exec", "-n", namespace, "deploy/client", "-c", "client", "--",
        "python3", "-c", script,
    ).strip()  # fmt: skip


MAX_DROPPED_STREAMS = 3

_LOOP = """\
import select, sys, urllib.request
while not select.select([sys.stdin], [], [], 0)[0]:
    try:
        status = urllib.request.urlopen({url!r}, timeout=10).status
        print("ok" if status == 200 else f"failed: HTTP {{status}}", flush=True)
    except Exception as error:
        print(f"failed: {{error!r}}", flush=True)
print("stopped", flush=True)
"""


class Traffic:
    """A meshed client (by default the pair's) calling a URL (the pair's server) without
    pause, from its app container; `lines` holds one per request."""

    def __init__(
        self, cluster: ClusterInfo, namespace: str, client: str = "client", target: str = ""
    ) -> None:
        kubectl = Path(cluster.bin_dir) / "kubectl"
        self._command = [
            str(kubectl), f"--kubeconfig={cluster.kubeconfig}", "exec", "-i", "-n", namespace,
            f"deploy/{client}", "-c", client, "--", "python3", "-u", "-c",
            _LOOP.format(url=target or url(namespace)),
        ]  # fmt: skip
        self.lines: list[str] = []
        # Exec streams that ended under the client (kubectl's own error for each): the
        # stream is the harness's channel, not a meshed request, so it is opened again.
        self.dropped: list[str] = []
        self._start()

    def _start(self) -> None:
        self.process = subprocess.Popen(
            self._command,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _running(self) -> bool:
        """Whether the client still runs; one whose exec stream ended is started again."""
        if self.process.poll() is None:
            return True
        self._reader.join(timeout=10)
        assert self.process.stderr is not None
        self.dropped.append(self.process.stderr.read().strip() or f"exit {self.process.returncode}")
        if len(self.dropped) > MAX_DROPPED_STREAMS:
            return False
        self._start()
        return True

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.strip())

    def answered(self) -> int:
        return sum(line == "ok" for line in self.lines)

    def failures(self) -> list[str]:
        return [line for line in self.lines if line.startswith("failed")]

    def wait_for_more(self, count: int, seconds: float = 120) -> None:
        """Until `count` more requests than now were answered."""
        target = self.answered() + count
        wait_until(
            f"{count} more meshed requests answered (so far: {self.lines[-3:]})",
            seconds,
            lambda: self.answered() >= target or not self._running(),
        )
        assert self.answered() >= target, f"the client stopped: {self.dropped}"

    def stop(self) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write("stop\n")
            self.process.stdin.close()
            self.process.wait(timeout=60)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=10)
