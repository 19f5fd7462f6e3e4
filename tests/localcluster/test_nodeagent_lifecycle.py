"""The kubelet's rules, pure: restart decisions and backoff, probe thresholds, pod
phase and conditions, the informer's cache, admission, the gRPC probe's encoding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from weft_localcluster.nodeagent.admission import admission_failure
from weft_localcluster.nodeagent.cache import ObjectCache
from weft_localcluster.nodeagent.commands import tool
from weft_localcluster.nodeagent.grpc_health import SERVING, decode_status, encode_request
from weft_localcluster.nodeagent.launch import Identity
from weft_localcluster.nodeagent.mounts import Mount
from weft_localcluster.nodeagent.probes import (
    Exec,
    Grpc,
    HttpGet,
    ProbeResult,
    ProbeSpec,
    TcpSocket,
    probe_spec,
)
from weft_localcluster.nodeagent.restarts import CrashBackoff, Kind, should_restart
from weft_localcluster.nodeagent.runtime import exit_code, in_pod
from weft_localcluster.nodeagent.status import (
    ContainerState,
    Terminated,
    initial_states,
    phase,
    pod_status,
)


@pytest.mark.parametrize(
    ("kind", "policy", "code", "restart"),
    [
        (Kind.MAIN, "Always", 0, True),
        (Kind.MAIN, "OnFailure", 0, False),
        (Kind.MAIN, "OnFailure", 1, True),
        (Kind.MAIN, "Never", 1, False),
        (Kind.INIT, "Always", 0, False),
        (Kind.INIT, "Always", 1, True),
        (Kind.INIT, "Never", 1, False),
        (Kind.SIDECAR, "Never", 0, True),
    ],
)
def test_restart_policy(kind: Kind, policy: str, code: int, restart: bool) -> None:
    assert should_restart(kind, policy, code) is restart


def test_crash_backoff_is_immediate_then_doubles_to_five_minutes_then_resets() -> None:
    backoff = CrashBackoff()
    delays = [backoff.delay_after_exit(now) for now in range(0, 90, 10)]
    assert delays == [0, 10, 20, 40, 80, 160, 300, 300, 300]
    assert backoff.delay_after_exit(80 + 601) == 0  # quiet for ten minutes: start over


def test_probe_results_flip_after_consecutive_thresholds() -> None:
    spec = ProbeSpec(TcpSocket(80), success_threshold=2, failure_threshold=3)
    result = ProbeResult(spec, ok=False)
    assert [result.record(True), result.record(True)] == [False, True]
    assert result.ok
    assert [result.record(False) for _ in range(3)] == [False, False, True]
    assert not result.ok


def test_probe_specs_resolve_named_ports() -> None:
    container = {"name": "app", "ports": [{"name": "http", "containerPort": 8080}]}
    probe = {
        "httpGet": {"path": "/ready", "port": "http", "httpHeaders": [{"name": "X", "value": "1"}]},
        "periodSeconds": 2,
    }
    spec = probe_spec(probe, container)
    assert spec.action == HttpGet(port=8080, path="/ready", headers=(("X", "1"),))
    assert (spec.period, spec.timeout, spec.failure_threshold) == (2, 1, 3)
    assert probe_spec({"grpc": {"port": 8090}}, container).action == Grpc(8090)
    assert probe_spec({"exec": {"command": ["true"]}}, container).action == Exec(("true",))


def terminated(code: int) -> Terminated:
    return Terminated(code, "Completed" if code == 0 else "Error", 1.0, 2.0, "weft://x")


def state(name: str, kind: Kind, **fields: Any) -> ContainerState:
    return ContainerState(name, "python", kind, **fields)


def test_phase_follows_the_kubelet() -> None:
    done_init = state("init", Kind.INIT, terminated=terminated(0))
    sidecar = state("proxy", Kind.SIDECAR, running_since=1.0, started=True)
    running = state("app", Kind.MAIN, running_since=1.0)
    assert phase("Always", [state("init", Kind.INIT), running], False) == "Pending"
    assert phase("Never", [state("i", Kind.INIT, terminated=terminated(1)), running], False) == (
        "Failed"
    )
    assert phase("Always", [done_init, state("proxy", Kind.SIDECAR), running], False) == "Pending"
    assert phase("Always", [done_init, sidecar, running], True) == "Running"
    # A sidecar restarting later does not make an initialized pod pending again.
    assert phase("Always", [done_init, state("proxy", Kind.SIDECAR), running], True) == "Running"
    crash_looping = state("app", Kind.MAIN, last_terminated=terminated(1))
    assert phase("Always", [crash_looping], True) == "Running"
    assert phase("Never", [state("app", Kind.MAIN, terminated=terminated(0))], True) == "Succeeded"
    assert phase("Never", [state("app", Kind.MAIN, terminated=terminated(2))], True) == "Failed"
    assert phase("OnFailure", [crash_looping], True) == "Running"
    assert phase("Always", [state("app", Kind.MAIN)], True) == "Pending"


def test_pod_status_conditions_and_their_transition_times() -> None:
    pod = {
        "spec": {
            "initContainers": [{"name": "proxy", "image": "p", "restartPolicy": "Always"}],
            "containers": [{"name": "app", "image": "a"}],
        }
    }
    states = initial_states(pod)
    assert [(s.kind, s.waiting_reason) for s in states] == [
        (Kind.SIDECAR, "ContainerCreating"),
        (Kind.MAIN, "PodInitializing"),
    ]
    common: dict[str, Any] = {"pod_ip": "10.244.0.2", "host_ip": "10.244.0.1", "start_time": 0.0}
    first = pod_status(
        pod,
        states,
        previous_conditions=[],
        sandbox_ready=True,
        initialized=False,
        now=100.0,
        **common,
    )
    conditions = {c["type"]: c for c in first["conditions"]}
    assert conditions["Initialized"]["status"] == "False"
    assert conditions["Initialized"]["message"] == "containers with incomplete status: [proxy]"
    assert conditions["Ready"]["message"] == "containers with unready status: [proxy app]"
    assert first["phase"] == "Pending"
    assert first["initContainerStatuses"][0]["state"] == {
        "waiting": {"reason": "ContainerCreating"}
    }

    for s in states:
        s.running_since, s.started, s.ready = 150.0, True, True
    second = pod_status(
        pod,
        states,
        previous_conditions=first["conditions"],
        sandbox_ready=True,
        initialized=True,
        now=200.0,
        **common,
    )
    conditions = {c["type"]: c for c in second["conditions"]}
    assert second["phase"] == "Running"
    assert conditions["Ready"]["status"] == "True"
    assert conditions["Ready"]["reason"] is None  # a strategic merge removes the old reason
    assert conditions["Ready"]["lastTransitionTime"] == "1970-01-01T00:03:20Z"
    assert conditions["PodReadyToStartContainers"]["lastTransitionTime"] == "1970-01-01T00:01:40Z"
    assert second["containerStatuses"][0]["state"] == {
        "running": {"startedAt": "1970-01-01T00:02:30Z"}
    }


def test_readiness_gates_hold_ready_back() -> None:
    pod = {
        "spec": {"readinessGates": [{"conditionType": "example.com/gate"}], "containers": []},
        "status": {"conditions": [{"type": "example.com/gate", "status": "False"}]},
    }
    status = pod_status(
        pod,
        [],
        previous_conditions=[],
        pod_ip="",
        host_ip="10.244.0.1",
        start_time=0,
        sandbox_ready=True,
        initialized=True,
        now=0,
    )
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "ReadinessGatesNotReady")
    assert "podIP" not in status  # not before the pod has one


def test_the_cache_turns_a_relist_into_events() -> None:
    def obj(name: str, version: str) -> dict[str, Any]:
        return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": version}}

    cache = ObjectCache()
    cache.apply("ADDED", obj("a", "1"))
    cache.apply("ADDED", obj("b", "1"))
    events = cache.replace([obj("b", "2"), obj("c", "1")])
    assert [(kind, o["metadata"]["name"]) for kind, o in events] == [
        ("DELETED", "a"),
        ("MODIFIED", "b"),
        ("ADDED", "c"),
    ]
    cache.apply("DELETED", obj("b", "3"))
    assert sorted(cache.objects) == [("ns", "c")]


def test_pods_sharing_the_node_s_namespaces_are_refused() -> None:
    assert admission_failure({"spec": {}}) is None
    failure = admission_failure({"spec": {"hostNetwork": True}})
    assert failure is not None
    assert "hostNetwork" in failure[1]


def test_containers_run_in_the_pod_namespace_as_their_user() -> None:
    root = in_pod("weft0-ns-pod-1", ["python", "app.py"], Identity())
    assert root[1:4] == ["netns", "exec", "weft0-ns-pod-1"]
    assert root[4:] == ["python", "app.py"]
    proxy = in_pod("ns", ["proxy"], Identity(uid=2102, gid=2102, no_new_privileges=True))
    for flag in (
        "--reuid=2102",
        "--clear-groups",
        "--no-new-privs",
        "--ambient-caps=+dac_read_search",
    ):
        assert flag in proxy
    assert proxy[-2:] == ["--", "proxy"]
    assert exit_code(3) == (3, None)
    assert exit_code(-15) == (143, 15)


def test_grpc_health_messages() -> None:
    assert encode_request("") == b""
    assert encode_request("bookshop.Ratings") == b"\x0a\x10bookshop.Ratings"
    assert decode_status(b"\x08\x01") == SERVING
    assert decode_status(b"") == 0
    assert decode_status(b"\x12\x02hi\x08\x02") == 2  # unknown fields skipped


def test_the_service_account_volume_is_bound_at_its_path_before_the_user_is_taken() -> None:
    bind = Mount("/var/run/secrets/kubernetes.io/serviceaccount", Path("/run/weft/x/vol"))
    command = in_pod("ns", ["python"], Identity(uid=2102, gid=2102), (bind,))
    at = command.index("-c")
    assert command[at + 3 :][:4] == [tool("mount"), "/run/weft/x/vol", bind.container_path, "--"]
    assert command.index("--reuid=2102") > command.index(bind.container_path)
    assert command[-1] == "python"
