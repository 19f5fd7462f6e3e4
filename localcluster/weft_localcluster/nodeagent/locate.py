"""Where a pod of the local cluster lives on this machine: for tests, e2e and debugging.

`ip netns exec $(...) curl ...` reaches a pod's view of the network; its containers'
output is in the cluster's state folder, which `kubectl logs` reads (kubelet_api.py).
"""

from __future__ import annotations

from pathlib import Path

from weft_localcluster.nodeagent.addressing import NodeNetwork

AGENT_DIR = "node-agent"  # in the cluster's state folder
POD_LOGS = "pods"  # in the agent's folder: <namespace>_<name>_<uid>/<container>/<run>.log


def agent_dir(cluster_state: Path) -> Path:
    return cluster_state / AGENT_DIR


def node_network(cluster_state: Path) -> NodeNetwork:
    network = NodeNetwork.read(agent_dir(cluster_state))
    if network is None:
        raise LookupError(f"no node agent network recorded in {agent_dir(cluster_state)}")
    return network


def pod_netns(cluster_state: Path, namespace: str, name: str, uid: str) -> str:
    """The network namespace of a pod (`ip netns exec NAME ...`)."""
    return node_network(cluster_state).netns(namespace, name, uid)


def container_log(cluster_state: Path, namespace: str, name: str, uid: str, container: str) -> Path:
    """The log of the container's latest run (logs are kept per restart: 0.log, 1.log...)."""
    folder = agent_dir(cluster_state) / POD_LOGS / f"{namespace}_{name}_{uid}" / container
    runs = sorted(folder.glob("*.log"), key=lambda path: int(path.stem))
    if not runs:
        raise LookupError(f"container {container} of {namespace}/{name} has no log yet")
    return runs[-1]
