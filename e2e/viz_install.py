"""Fixtures of the dashboard's e2e tests: `weft viz install --tap | kubectl apply -f -`
on the local cluster beside the meshed bookshop, and `weft dashboard` port-forwarding
to it, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from meshed_bookshop import Bookshop

from weft_cli import local_install
from weft_viz.install import DASHBOARD, NAMESPACE, PROMETHEUS, PROMETHEUS_PORT

ROLLOUT_TIMEOUT = "180s"


def weft_env(shop: Bookshop) -> dict[str, str]:
    """The user's shell after `eval "$(weft cluster env)"`: its kubectl and kubeconfig."""
    path = f"{shop.cluster.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "KUBECONFIG": str(shop.cluster.kubeconfig), "PATH": path}


def weft(shop: Bookshop, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "weft_cli", *args],
        env=weft_env(shop), capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


@dataclass
class Viz:
    shop: Bookshop
    url: str  # the dashboard, through `weft dashboard`'s port-forward

    @property
    def prometheus(self) -> str:
        """Prometheus' pod, straight over the bridge (the host reaches pod IPs)."""
        listed = local_install.kubectl(
            self.shop.cluster, "-n", NAMESPACE, "get", "pods", "-o", "json",
            "-l", f"app.kubernetes.io/name={PROMETHEUS}",
        )  # fmt: skip
        (pod,) = [p for p in json.loads(listed)["items"] if p["status"].get("podIP")]
        return f"http://{pod['status']['podIP']}:{PROMETHEUS_PORT}"


def install(shop: Bookshop, *options: str) -> None:
    rendered = weft(shop, "viz", "install", *options)
    assert rendered.returncode == 0, rendered.stderr
    local_install.kubectl(shop.cluster, "apply", "-f", "-", stdin=rendered.stdout)
    for name in (PROMETHEUS, DASHBOARD):
        local_install.kubectl(
            shop.cluster, "-n", NAMESPACE, "rollout", "status", f"deployment/{name}",
            f"--timeout={ROLLOUT_TIMEOUT}",
        )  # fmt: skip


@pytest.fixture(scope="session")
def viz(bookshop: Bookshop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Viz]:
    install(bookshop, "--tap")
    forward = subprocess.Popen(
        [sys.executable, "-m", "weft_cli", "dashboard", "--no-browser", "--port", "0"],
        env=weft_env(bookshop), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert forward.stdout is not None
    line = forward.stdout.readline()  # the URL, once kubectl forwards
    try:
        assert line.startswith("Weft dashboard: http://127.0.0.1:"), (line, forward.stderr)
        yield Viz(bookshop, line.split()[2])
    finally:
        forward.terminate()
        forward.wait(timeout=15)
        uninstalled = weft(bookshop, "viz", "uninstall")
        local_install.kubectl(
            bookshop.cluster, "delete", "--wait=false", "--ignore-not-found", "-f", "-",
            stdin=uninstalled.stdout,
        )  # fmt: skip


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Screenshots of the browser tests: WEFT_TEST_ARTIFACTS, else a session folder."""
    chosen = os.environ.get("WEFT_TEST_ARTIFACTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("dashboard-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
