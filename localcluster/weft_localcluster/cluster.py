"""Bring a real Kubernetes control plane up on loopback, report on it, take it down.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler run as processes of
their own, bound to 127.0.0.1, with state (PKI, kubeconfigs, etcd data, logs, pid files)
in one folder. The cluster is ephemeral: `down` stops exactly the processes `up` started
and removes the folder.
"""

from __future__ import annotations

import json
import shutil
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console

from weft_api import pki
from weft_localcluster import ports, processes, versions
from weft_localcluster.build import Binaries, ensure_binaries
from weft_localcluster.go_tools import HELM
from weft_localcluster.kubeconfig import write_kubeconfig
from weft_localcluster.nodeagent import cleanup as nodeagent_cleanup
from weft_localcluster.nodeagent import locate

SERVICE_CIDR = "10.96.0.0/16"
FIRST_SERVICE_IP = "10.96.0.1"
DEFAULT_API_PORT = 6443
NODE_NAME = "weft-local"
START_TIMEOUT = 180.0
# Start order; `down` stops in reverse.
COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "weft-node-agent",  # runs the pods as processes (needs root: network namespaces)
)


class ClusterError(RuntimeError):
    """The cluster cannot be brought up or down; the message names the cause and the fix."""


@dataclass(frozen=True)
class ClusterInfo:
    """What a running cluster's clients need, saved as cluster.json in the state folder."""

    state_dir: str
    api_port: int
    etcd_port: int
    etcd_peer_port: int
    controller_manager_port: int
    scheduler_port: int
    kubernetes_version: str
    etcd_version: str
    bin_dir: str

    @property
    def server(self) -> str:
        return f"https://{ports.HOST}:{self.api_port}"

    @property
    def kubeconfig(self) -> Path:
        return Path(self.state_dir) / "kubeconfig"


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int | None
    running: bool
    healthy: bool
    log: str | None


class LocalCluster:
    def __init__(self, state_dir: Path, console: Console | None = None) -> None:
        self.state = state_dir
        self.console = console or Console(stderr=True)

    # -- paths ------------------------------------------------------------------
    @property
    def pki_dir(self) -> Path:
        return self.state / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def node_agent_dir(self) -> Path:
        """The node agent's network record and its pods' logs."""
        return locate.agent_dir(self.state)

    @property
    def info_file(self) -> Path:
        return self.state / "cluster.json"

    def info(self) -> ClusterInfo | None:
        try:
            return ClusterInfo(**json.loads(self.info_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    # -- up ---------------------------------------------------------------------
    def up(self, api_port: int = DEFAULT_API_PORT, timeout: float = START_TIMEOUT) -> ClusterInfo:
        """Start the cluster, or return the running one. `api_port=0` picks a free port."""
        binaries = ensure_binaries(self.console)
        running = self._check_previous_state()
        if running is not None:
            self.console.print(f"cluster already running at {running.server}")
            return running
        if api_port and not ports.is_free(api_port):
            holder = ports.owner(api_port)
            raise ClusterError(
                f"port {api_port} on {ports.HOST} is in use"
                + (f" by {holder}" if holder else "")
                + ". Stop that process, or choose another port: weft cluster up --port N."
            )
        started = time.monotonic()
        info = ClusterInfo(
            state_dir=str(self.state),
            api_port=api_port or ports.pick_free(),
            etcd_port=ports.pick_free(),
            etcd_peer_port=ports.pick_free(),
            controller_manager_port=ports.pick_free(),
            scheduler_port=ports.pick_free(),
            kubernetes_version=versions.KUBERNETES_VERSION,
            etcd_version=versions.ETCD_VERSION,
            bin_dir=str(binaries.kubernetes_dir),
        )
        self.state.mkdir(parents=True, exist_ok=True)
        self._write_pki(info)
        try:
            self._start_all(info, binaries, timeout)
        except BaseException:
            self._stop_all()  # keep the logs: the error names them
            raise
        self.info_file.write_text(json.dumps(asdict(info), indent=2))
        self.console.print(
            f"[green]cluster ready[/] at {info.server} "
            f"(Kubernetes {info.kubernetes_version}) in {time.monotonic() - started:.1f}s"
        )
        return info

    def _check_previous_state(self) -> ClusterInfo | None:
        records = processes.read_records(self.state)
        if not records:
            if self.state.exists():  # leftovers of a failed or killed start: nothing runs
                self._remove_state()
            return None
        alive = {r.name for r in records if processes.alive(r)}
        dead = [r.name for r in records if r.name not in alive]
        missing = dead + [c for c in COMPONENTS if c not in alive and c not in dead]
        info = self.info()
        if not missing and info is not None:
            return info
        raise ClusterError(
            f"stale cluster state in {self.state}: {', '.join(missing)} not running "
            "(a previous run was killed or crashed). Clean it with `weft cluster down`, "
            "then run `weft cluster up` again."
        )

    def _write_pki(self, info: ClusterInfo) -> None:
        folder = self.pki_dir
        folder.mkdir(parents=True, exist_ok=True)
        ca = pki.new_ca("weft-local-ca")
        ca.write(folder, "ca")
        pki.issue(
            ca,
            "kube-apiserver",
            dns_names=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            ips=(ports.HOST, FIRST_SERVICE_IP),
            server=True,
        ).write(folder, "apiserver")
        # Aggregated API servers (Weft's TrafficMetrics, later) trust requests the API
        # server proxies to them through this separate front-proxy CA.
        front_proxy = pki.new_ca("weft-local-front-proxy-ca")
        front_proxy.write(folder, "front-proxy-ca")
        pki.issue(front_proxy, "front-proxy-client", client=True).write(
            folder, "front-proxy-client"
        )
        # The API server's identity towards the node's kubelet API (logs, exec,
        # port-forward); the node agent admits this name (nodeagent/kubelet_api.py).
        pki.issue(ca, "kube-apiserver-kubelet-client", client=True).write(
            folder, "apiserver-kubelet-client"
        )
        private, public = pki.new_signing_key()
        (folder / "sa.key").write_bytes(private)
        (folder / "sa.pub").write_bytes(public)
        clients = {
            "admin": ("weft-admin", ("system:masters",)),
            "controller-manager": ("system:kube-controller-manager", ()),
            "scheduler": ("system:kube-scheduler", ()),
            # The node agent is the node's kubelet (the Node authorizer grants what its
            # own pods need) and its kube-proxy (Services and EndpointSlices, for names).
            "node-agent": (f"system:node:{NODE_NAME}", ("system:nodes",)),
            "node-proxy": ("system:kube-proxy", ()),
        }
        for stem, (cn, orgs) in clients.items():
            pair = pki.issue(ca, cn, organizations=orgs, client=True)
            pair.write(folder, stem)
            target = self.kubeconfig if stem == "admin" else self.state / f"{stem}.kubeconfig"
            write_kubeconfig(target, info.server, ca.cert_pem(), pair)

    def _argv(self, info: ClusterInfo, binaries: Binaries) -> dict[str, list[str]]:
        p = self.pki_dir
        host = ports.HOST
        etcd_url = f"http://{host}:{info.etcd_port}"
        peer_url = f"http://{host}:{info.etcd_peer_port}"
        kcm_kubeconfig = str(self.state / "controller-manager.kubeconfig")
        sched_kubeconfig = str(self.state / "scheduler.kubeconfig")
        return {
            "etcd": [
                str(binaries.etcd),
                "--name=weft-local",
                f"--data-dir={self.state / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=weft-local={peer_url}",
                "--unsafe-no-fsync=true",  # an ephemeral dev cluster: speed over durability
                "--log-level=warn",
            ],
            "kube-apiserver": [
                str(binaries.kube_apiserver),
                f"--etcd-servers={etcd_url}",
                f"--bind-address={host}",
                f"--advertise-address={host}",
                f"--secure-port={info.api_port}",
                f"--cert-dir={p}",
                f"--tls-cert-file={p / 'apiserver.crt'}",
                f"--tls-private-key-file={p / 'apiserver.key'}",
                f"--client-ca-file={p / 'ca.crt'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={p / 'sa.pub'}",
                f"--service-account-signing-key-file={p / 'sa.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                f"--requestheader-client-ca-file={p / 'front-proxy-ca.crt'}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={p / 'front-proxy-client.crt'}",
                f"--proxy-client-key-file={p / 'front-proxy-client.key'}",
                f"--kubelet-client-certificate={p / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={p / 'apiserver-kubelet-client.key'}",
                # The node's Hostname resolves nowhere: dial its InternalIP (the bridge).
                "--kubelet-preferred-address-types=InternalIP",
                # The `kubernetes` Service cannot point at loopback; pods reach the API
                # server another way (see the node agent), so no endpoint is published.
                "--endpoint-reconciler-type=none",
                # No kube-proxy: ClusterIPs lead nowhere from the API server either. With
                # this flag it dials a Service's endpoints (pod IPs, reachable over the
                # node's bridge) for admission webhooks and aggregated APIs alike, so the
                # webhooks can run as a pod behind their Service, as `weft install` has it.
                "--enable-aggregator-routing=true",
                "--allow-privileged=true",
                "--profiling=false",
            ],
            "kube-controller-manager": [
                str(binaries.kube_controller_manager),
                f"--kubeconfig={kcm_kubeconfig}",
                f"--authentication-kubeconfig={kcm_kubeconfig}",
                f"--authorization-kubeconfig={kcm_kubeconfig}",
                f"--bind-address={host}",
                f"--secure-port={info.controller_manager_port}",
                f"--cert-dir={self.state / 'controller-manager'}",
                f"--service-account-private-key-file={p / 'sa.key'}",
                f"--root-ca-file={p / 'ca.crt'}",
                f"--cluster-signing-cert-file={p / 'ca.crt'}",
                f"--cluster-signing-key-file={p / 'ca.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--use-service-account-credentials=true",
                "--leader-elect=false",
                "--profiling=false",
            ],
            "kube-scheduler": [
                str(binaries.kube_scheduler),
                f"--kubeconfig={sched_kubeconfig}",
                f"--authentication-kubeconfig={sched_kubeconfig}",
                f"--authorization-kubeconfig={sched_kubeconfig}",
                f"--bind-address={host}",
                f"--secure-port={info.scheduler_port}",
                f"--cert-dir={self.state / 'scheduler'}",
                "--leader-elect=false",
                "--profiling=false",
            ],
            "weft-node-agent": [
                sys.executable,
                "-m",
                "weft_localcluster.nodeagent",
                f"--kubeconfig={self.state / 'node-agent.kubeconfig'}",
                f"--proxy-kubeconfig={self.state / 'node-proxy.kubeconfig'}",
                f"--node-name={NODE_NAME}",
                f"--state-dir={self.node_agent_dir}",
                f"--kubernetes-version={info.kubernetes_version}",
                f"--service-cidr={SERVICE_CIDR}",
                f"--client-ca-file={p / 'ca.crt'}",
                *(
                    [f"--streaming-binary={binaries.kubelet_streaming}"]
                    if binaries.kubelet_streaming
                    else []
                ),
            ],
        }

    def _health_checks(self, info: ClusterInfo) -> dict[str, Callable[[], bool]]:
        host = ports.HOST
        return {
            "etcd": lambda: _get(f"http://{host}:{info.etcd_port}/health", None) is not None,
            "kube-apiserver": lambda: _get(f"{info.server}/readyz", self._admin_tls()) == "ok",
            "kube-controller-manager": lambda: (
                _get(f"https://{host}:{info.controller_manager_port}/healthz", _insecure_tls())
                == "ok"
            ),
            "kube-scheduler": lambda: (
                _get(f"https://{host}:{info.scheduler_port}/healthz", _insecure_tls()) == "ok"
            ),
            "weft-node-agent": lambda: _node_ready(
                _get(f"{info.server}/api/v1/nodes/{NODE_NAME}", self._admin_tls())
            ),
        }

    def _admin_tls(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki_dir / "ca.crt"))
        ctx.load_cert_chain(self.pki_dir / "admin.crt", self.pki_dir / "admin.key")
        return ctx

    def _start_all(self, info: ClusterInfo, binaries: Binaries, timeout: float) -> None:
        argv = self._argv(info, binaries)
        checks = self._health_checks(info)
        deadline = time.monotonic() + timeout
        for name in COMPONENTS:
            with self.console.status(f"starting {name} ..."):
                record = processes.start(name, argv[name], self.state)
                self._wait_healthy(record, checks[name], deadline)
            self.console.print(f"  {name} ready (pid {record.pid})")

    def _wait_healthy(
        self, record: processes.ProcessRecord, check: Callable[[], bool], deadline: float
    ) -> None:
        while time.monotonic() < deadline:
            if not processes.alive(record):
                code = processes.exit_code(record)
                raise ClusterError(
                    f"{record.name} exited during start"
                    + (f" with code {code}" if code is not None else "")
                    + f". Its log ({record.log}) ends with:\n{processes.log_tail(record)}\n"
                    "Fix the cause above, then run `weft cluster down` and `weft cluster up`."
                )
            if check():
                return
            time.sleep(0.25)
        raise ClusterError(
            f"{record.name} did not become healthy in time. Its log ({record.log}) ends with:\n"
            f"{processes.log_tail(record)}"
        )

    # -- down, status, env ------------------------------------------------------
    def _stop_all(self) -> list[str]:
        stopped = []
        # Reverse start order; add-ons started on top of the cluster (the operator) first.
        order = {name: i for i, name in enumerate(COMPONENTS)}
        records = processes.read_records(self.state)
        for record in sorted(records, key=lambda r: -order.get(r.name, len(COMPONENTS))):
            if processes.alive(record):
                stopped.append(record.name)
            processes.stop(record, self.state)
        nodeagent_cleanup.sweep(self.node_agent_dir)
        return stopped

    def down(self) -> list[str]:
        """Stop the processes we started and remove the state; return what was running."""
        stopped = self._stop_all()
        self._remove_state()
        return stopped

    def _remove_state(self) -> None:
        # Pods' namespaces, veths and bridge outlive a killed node agent: remove them too.
        nodeagent_cleanup.sweep(self.node_agent_dir)
        if self.state.exists():
            shutil.rmtree(self.state)

    def status(self) -> list[ComponentStatus]:
        info = self.info()
        checks = self._health_checks(info) if info else {}
        records = {r.name: r for r in processes.read_records(self.state)}
        result = []
        for name in COMPONENTS:
            record = records.get(name)
            running = record is not None and processes.alive(record)
            healthy = running and name in checks and checks[name]()
            result.append(
                ComponentStatus(
                    name=name,
                    pid=record.pid if record else None,
                    running=running,
                    healthy=healthy,
                    log=record.log if record else None,
                )
            )
        return result

    def env(self) -> str:
        info = self.info()
        if info is None:
            raise ClusterError(f"no cluster in {self.state}: start one with `weft cluster up`.")
        # `helm` beside kubectl, once built (weft cluster build)
        folders = [info.bin_dir] + ([str(HELM.folder)] if HELM.binary.exists() else [])
        return f"export KUBECONFIG={info.kubeconfig}\nexport PATH={':'.join(folders)}:$PATH\n"


def _insecure_tls() -> ssl.SSLContext:
    # kube-controller-manager and kube-scheduler serve /healthz with a self-signed
    # certificate they make at start; only liveness is read from it.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _node_ready(node_json: str | None) -> bool:
    try:
        conditions = json.loads(node_json or "{}").get("status", {}).get("conditions", [])
    except ValueError:
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _get(url: str, tls: ssl.SSLContext | None) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2, context=tls) as response:
            body: bytes = response.read()
            return body.decode(errors="replace").strip()
    except (urllib.error.URLError, OSError, ValueError):
        return None
