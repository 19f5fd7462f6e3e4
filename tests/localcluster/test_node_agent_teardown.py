"""`down` leaves nothing of a cluster's pods behind, whether its node agent stops
gracefully or was killed: no process, network namespace, veth, bridge or folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from weft_localcluster import processes
from weft_localcluster.cluster import LocalCluster
from weft_localcluster.nodeagent import locate
from weft_localcluster.nodeagent.addressing import RUNTIME_ROOT, NodeNetwork

IGNORES_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
)


def pod(name: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "terminationGracePeriodSeconds": 30,
                "containers": [
                    {
                        "name": "app",
                        "image": "python:3.11",
                        "command": ["python", "-c", IGNORES_SIGTERM],
                    }
                ],
            },
        }
    )


def apply(kubectl: list[str], manifest: str) -> None:
    """Retried while the fresh cluster makes the namespace's default ServiceAccount."""
    deadline = time.monotonic() + 30
    while True:
        result = subprocess.run(
            [*kubectl, "apply", "-f", "-"],
            input=manifest,
            text=True,
            capture_output=True,
            check=False,
        )
        if result.returncode == 0:
            return
        assert time.monotonic() < deadline, result.stderr
        time.sleep(0.2)


def ours(network: NodeNetwork) -> list[str]:
    """Network namespaces, links and /etc/netns folders of this node, on the machine
    (other clusters, the session's or other people's, may come and go meanwhile)."""
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    links = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True, check=True)
    etc = Path("/etc/netns")
    names = [line.split()[0] for line in netns.stdout.splitlines() if line.strip()]
    names += [link["ifname"] for link in json.loads(links.stdout)]
    names += [p.name for p in etc.iterdir()] if etc.exists() else []
    prefixes = (network.netns_prefix, network.veth_prefix)
    return [name for name in names if name == network.bridge or name.startswith(prefixes)]


def nat_rules(netns: str | None = None) -> list[str]:
    """iptables-save's rules, in a pod's namespace or (None) the machine's own."""
    prefix = ["ip", "netns", "exec", netns] if netns else []
    out = subprocess.run([*prefix, "iptables-save"], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if line.startswith("-A ")]


def running(pid: int) -> bool:
    """Alive and not a zombie (a killed agent's orphans wait for init to reap them)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def pids_in(netns: str) -> list[int]:
    out = subprocess.run(
        ["ip", "netns", "pids", netns], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in out.stdout.split()]


@pytest.mark.parametrize("agent_killed_first", [False, True], ids=["graceful", "agent-killed"])
def test_down_removes_every_pod_process_namespace_veth_and_the_bridge(
    tmp_path: Path, agent_killed_first: bool
) -> None:
    root_rules = nat_rules()
    cluster = LocalCluster(tmp_path / "state")
    info = cluster.up(api_port=0)
    try:
        kubectl = [f"{info.bin_dir}/kubectl", f"--kubeconfig={info.kubeconfig}"]
        for name in ("one", "two"):
            apply(kubectl, pod(name))
        subprocess.run(
            [*kubectl, "wait", "--for=condition=Ready", "pod/one", "pod/two", "--timeout=60s"],
            check=True, capture_output=True,
        )  # fmt: skip
        network = locate.node_network(Path(info.state_dir))
        namespaces = [name for name in ours(network) if name.startswith(network.netns_prefix)]
        assert len(set(namespaces)) == 2  # each with its /etc/netns folder
        pids = [pid for ns in set(namespaces) for pid in pids_in(ns)]
        assert pids
        assert network.runtime_dir.exists()
        # ClusterIPs are translated in the pods' namespaces (the `kubernetes` Service to
        # the API relay), never in the machine's.
        relay = f"--to-destination {network.gateway}:443"
        assert all(any(relay in r for r in nat_rules(ns)) for ns in set(namespaces))
        assert nat_rules() == root_rules
        if agent_killed_first:
            (agent,) = [
                r for r in processes.read_records(cluster.state) if r.name == "weft-node-agent"
            ]
            os.kill(agent.pid, signal.SIGKILL)
    finally:
        cluster.down()
    assert ours(network) == []
    assert [pid for pid in pids if running(pid)] == []
    assert not network.runtime_dir.exists()
    assert nat_rules() == root_rules  # nothing of the cluster's in the machine's tables
    assert not RUNTIME_ROOT.exists() or network.bridge not in os.listdir(RUNTIME_ROOT)
