"""`weft cluster up | env | status | down` as a user runs them, on a cluster of its own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from weft_localcluster import processes

WEFT = str(Path(sys.executable).with_name("weft"))


def weft(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [WEFT, "cluster", "--state-dir", str(state), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def shell_env(exports: str) -> dict[str, str]:
    env = dict(os.environ)
    for line in exports.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value.replace("$PATH", env["PATH"])
    return env


def test_up_env_kubectl_crash_status_and_down_leave_nothing_behind(tmp_path: Path) -> None:
    state = tmp_path / "state"
    up = weft("up", "--port", "0", state=state)
    assert up.returncode == 0, up.stderr
    assert "cluster ready" in up.stderr
    records = processes.read_records(state)
    assert sorted(r.name for r in records) == sorted(
        ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "weft-node-agent"]
    )

    env = weft("env", state=state)
    assert env.returncode == 0
    assert f"export KUBECONFIG={state / 'kubeconfig'}" in env.stdout
    kubectl = subprocess.run(
        ["kubectl", "get", "ns", "-o", "name"],
        capture_output=True,
        text=True,
        env=shell_env(env.stdout),
        check=False,
    )
    assert kubectl.returncode == 0, kubectl.stderr
    assert "namespace/default" in kubectl.stdout.split()

    healthy = weft("status", state=state)
    assert healthy.returncode == 0
    assert healthy.stdout.count("healthy") == 5

    (scheduler,) = [r for r in records if r.name == "kube-scheduler"]
    os.kill(scheduler.pid, signal.SIGKILL)
    crashed = weft("status", state=state)
    assert crashed.returncode == 1
    assert "crashed" in crashed.stdout

    again = weft("up", "--port", "0", state=state)
    assert again.returncode == 1
    assert "stale cluster state" in again.stderr
    assert "kube-scheduler not running" in again.stderr
    assert "weft cluster down" in again.stderr

    down = weft("down", state=state)
    assert down.returncode == 0
    assert not any(processes.alive(r) for r in records)
    assert not state.exists()


def test_a_port_in_use_is_named_with_its_holder_and_the_fix(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = weft("up", "--port", str(port), state=tmp_path / "state")
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert f"port {port} on 127.0.0.1 is in use by pid {os.getpid()}" in message
    assert "--port N" in message


def test_env_without_a_cluster_says_how_to_start_one(tmp_path: Path) -> None:
    result = weft("env", state=tmp_path / "none")
    assert result.returncode == 1
    assert "weft cluster up" in result.stderr
