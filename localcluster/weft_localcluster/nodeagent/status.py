"""Pod status from container states (pure): phase, conditions, container statuses.

Follows the kubelet: init containers gate everything (a sidecar counts once started),
a container waiting to restart counts as stopped, and Ready needs every container,
sidecars included, ready, plus the pod's readiness gates.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from weft_localcluster.nodeagent.restarts import Kind

Conditions = list[dict[str, Any]]


def timestamp(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Terminated:
    exit_code: int
    reason: str  # Completed, Error
    started_at: float
    finished_at: float
    container_id: str
    signal: int | None = None
    message: str = ""

    def to_api(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "exitCode": self.exit_code,
            "reason": self.reason,
            "startedAt": timestamp(self.started_at),
            "finishedAt": timestamp(self.finished_at),
            "containerID": self.container_id,
        }
        if self.signal is not None:
            state["signal"] = self.signal
        if self.message:
            state["message"] = self.message
        return state


@dataclass
class ContainerState:
    """One container as the node sees it; the pod worker updates it in place."""

    name: str
    image: str
    kind: Kind
    waiting_reason: str = "ContainerCreating"
    waiting_message: str = ""
    running_since: float | None = None
    container_id: str | None = None
    terminated: Terminated | None = None
    last_terminated: Terminated | None = None
    restart_count: int = 0
    ready: bool = False
    started: bool = False

    def to_api(self) -> dict[str, Any]:
        if self.running_since is not None:
            state: dict[str, Any] = {"running": {"startedAt": timestamp(self.running_since)}}
        elif self.terminated is not None:
            state = {"terminated": self.terminated.to_api()}
        else:
            waiting = {"reason": self.waiting_reason}
            if self.waiting_message:
                waiting["message"] = self.waiting_message
            state = {"waiting": waiting}
        status: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "ready": self.ready,
            "restartCount": self.restart_count,
            "started": self.started,
            "state": state,
            "lastState": (
                {"terminated": self.last_terminated.to_api()} if self.last_terminated else {}
            ),
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status

    @property
    def completed(self) -> bool:
        """An init container that ran to success (and is not running again)."""
        return self.terminated is not None and self.terminated.exit_code == 0


def incomplete_init(containers: Sequence[ContainerState]) -> list[str]:
    """Init containers yet to succeed, and sidecars yet to start."""
    return [
        c.name
        for c in containers
        if (c.kind is Kind.INIT and not c.completed) or (c.kind is Kind.SIDECAR and not c.started)
    ]


def phase(restart_policy: str, containers: Sequence[ContainerState], initialized: bool) -> str:
    """`initialized`: the containers have started once; a sidecar restarting later does
    not make the pod pending again."""
    for init in (c for c in containers if c.kind is not Kind.MAIN and not initialized):
        if init.kind is Kind.SIDECAR and not init.started:
            return "Pending"
        if init.kind is Kind.INIT and not init.completed:
            crashed = init.terminated is not None and init.terminated.exit_code != 0
            return "Failed" if crashed and restart_policy == "Never" else "Pending"
    waiting = running = failed = 0
    for main in (c for c in containers if c.kind is Kind.MAIN):
        last = main.terminated or main.last_terminated
        if main.running_since is not None:
            running += 1
        elif last is not None:  # exited, and may be waiting to restart
            failed += int(last.exit_code != 0)
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if restart_policy == "Always":
        return "Running"
    if failed == 0:
        return "Succeeded"
    return "Failed" if restart_policy == "Never" else "Running"


def conditions(
    pod: Mapping[str, Any],
    containers: Sequence[ContainerState],
    pod_phase: str,
    sandbox_ready: bool,
    initialized: bool,
    previous: Iterable[Mapping[str, Any]],
    now: float,
) -> Conditions:
    incomplete = [] if initialized else incomplete_init(containers)
    unready = [c.name for c in containers if c.kind is not Kind.INIT and not c.ready]
    terminal = pod_phase in ("Succeeded", "Failed")
    ready = _readiness(unready, terminal)
    wanted: list[tuple[str, bool, str, str]] = [
        ("PodReadyToStartContainers", sandbox_ready, "", ""),
        (
            "Initialized",
            not incomplete,
            "ContainersNotInitialized",
            _listing("incomplete", incomplete),
        ),
        ("ContainersReady", ready[0], ready[1], ready[2]),
        ("Ready", *_with_gates(pod, ready)),
    ]
    before = {c.get("type"): c for c in previous}
    result = []
    for kind, ok, reason, message in wanted:
        status = "True" if ok else "False"
        old = before.get(kind) or {}
        changed = old.get("status") != status
        condition: dict[str, Any] = {
            "type": kind,
            "status": status,
            "lastProbeTime": None,
            "lastTransitionTime": timestamp(now) if changed else old.get("lastTransitionTime"),
        }
        # A strategic merge keeps fields the patch leaves out: None deletes them.
        failing = not ok and reason
        condition.update(reason=reason if failing else None, message=message if failing else None)
        result.append(condition)
    return result


def _readiness(unready: list[str], terminal: bool) -> tuple[bool, str, str]:
    if terminal:
        return False, "PodCompleted", ""
    if unready:
        return False, "ContainersNotReady", _listing("unready", unready)
    return True, "", ""


def _with_gates(pod: Mapping[str, Any], ready: tuple[bool, str, str]) -> tuple[bool, str, str]:
    if not ready[0]:
        return ready
    gates = [g["conditionType"] for g in (pod.get("spec") or {}).get("readinessGates") or []]
    current = {
        c.get("type"): c.get("status") for c in (pod.get("status") or {}).get("conditions") or []
    }
    missing = [gate for gate in gates if current.get(gate) != "True"]
    if missing:
        return False, "ReadinessGatesNotReady", f"readiness gates not True: {missing}"
    return ready


def _listing(what: str, names: list[str]) -> str:
    return f"containers with {what} status: [{' '.join(names)}]"


def initial_states(pod: Mapping[str, Any]) -> list[ContainerState]:
    """Every container of the pod, init containers first, none started yet."""
    spec = pod.get("spec") or {}
    states = [
        ContainerState(
            c["name"], c["image"], Kind.SIDECAR if c.get("restartPolicy") == "Always" else Kind.INIT
        )
        for c in spec.get("initContainers") or []
    ]
    waiting = "PodInitializing" if states else "ContainerCreating"
    states += [
        ContainerState(c["name"], c["image"], Kind.MAIN, waiting_reason=waiting)
        for c in spec.get("containers") or []
    ]
    return states


def pod_status(
    pod: Mapping[str, Any],
    containers: Sequence[ContainerState],
    *,
    previous_conditions: Iterable[Mapping[str, Any]],
    pod_ip: str,
    host_ip: str,
    start_time: float,
    sandbox_ready: bool,
    initialized: bool,
    now: float,
) -> dict[str, Any]:
    restart_policy = (pod.get("spec") or {}).get("restartPolicy", "Always")
    pod_phase = phase(restart_policy, containers, initialized)
    status: dict[str, Any] = {
        "phase": pod_phase,
        "conditions": conditions(
            pod, containers, pod_phase, sandbox_ready, initialized, previous_conditions, now
        ),
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": timestamp(start_time),
        "initContainerStatuses": [c.to_api() for c in containers if c.kind is not Kind.MAIN],
        "containerStatuses": [c.to_api() for c in containers if c.kind is Kind.MAIN],
    }
    if pod_ip:  # once the sandbox has one; kept after it is gone, as Kubernetes does
        status.update(podIP=pod_ip, podIPs=[{"ip": pod_ip}])
    return status


def rejected_status(reason: str, message: str) -> dict[str, Any]:
    """A pod the node cannot run at all, as the kubelet reports an admission failure."""
    return {"phase": "Failed", "reason": reason, "message": message}
