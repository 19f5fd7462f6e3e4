"""Fixtures of the dashboard's e2e tests: `weft viz install --tap --prometheus-url URL |
kubectl apply -f -` on the local cluster beside the meshed bookshop, and `weft
dashboard` port-forwarding to it, as a user runs them.

The Prometheus is "one of your own" (the install's `--prometheus-url`): Debian's, on the
host, listening on the bridge's address, scraping the bookshop's proxies with each
series labelled as the shipped scrape config labels it (namespace, pod, deployment).
The installed Prometheus needs Kubernetes discovery, which Debian's lacks, and the one
built from Go modules takes over 30 minutes to build on this machine;
e2e/test_prometheus_scrape.py runs the shipped config itself."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from meshed_bookshop import Bookshop

from weft_api import mesh
from weft_cli import local_install
from weft_localcluster import ports
from weft_viz.install import DASHBOARD, NAMESPACE

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
    prometheus: str  # what the dashboard reads, reachable from the host too


def scrape_targets(shop: Bookshop) -> list[dict[str, Any]]:
    """Each meshed pod's admin port, labelled as the shipped scrape config labels it
    (from the pod's `weft.dev/proxy-deployment` label, which injection wrote)."""
    listed = json.loads(shop.kubectl("get", "pods", "-o", "json"))
    targets = []
    for pod in listed["items"]:
        labels = pod["metadata"].get("labels") or {}
        if pod["status"].get("podIP") and mesh.PROXY_DEPLOYMENT_LABEL in labels:
            target = f"{pod['status']['podIP']}:{mesh.PROXY_ADMIN_PORT}"
            series_labels = {
                "namespace": pod["metadata"]["namespace"],
                "pod": pod["metadata"]["name"],
                "deployment": labels[mesh.PROXY_DEPLOYMENT_LABEL],
            }
            targets.append({"targets": [target], "labels": series_labels})
    return targets


@contextlib.contextmanager
def host_prometheus(shop: Bookshop, folder: Path) -> Iterator[str]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: `make test` installs it with apt-get"
    address = f"{local_install.pod_gateway(shop.cluster)}:{ports.pick_free()}"
    job = {"job_name": "weft-proxy", "static_configs": scrape_targets(shop)}
    config = folder / "prometheus.yml"
    config.write_text(json.dumps({"global": {"scrape_interval": "2s"}, "scrape_configs": [job]}))
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
         f"--web.listen-address={address}"],
        stdout=subprocess.DEVNULL, stderr=(folder / "prometheus.log").open("wb"),
    )  # fmt: skip
    try:
        yield f"http://{address}"
    finally:
        process.terminate()
        process.wait(timeout=15)


def install(shop: Bookshop, *options: str) -> None:
    rendered = weft(shop, "viz", "install", *options)
    assert rendered.returncode == 0, rendered.stderr
    local_install.kubectl(shop.cluster, "apply", "-f", "-", stdin=rendered.stdout)
    local_install.kubectl(
        shop.cluster, "-n", NAMESPACE, "rollout", "status", f"deployment/{DASHBOARD}",
        f"--timeout={ROLLOUT_TIMEOUT}",
    )  # fmt: skip


@pytest.fixture(scope="session")
def viz(bookshop: Bookshop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Viz]:
    with host_prometheus(bookshop, tmp_path_factory.mktemp("prometheus")) as prometheus:
        yield from _dashboard(bookshop, prometheus)


def _dashboard(bookshop: Bookshop, prometheus: str) -> Iterator[Viz]:
    install(bookshop, "--tap", f"--prometheus-url={prometheus}")
    forward = subprocess.Popen(
        [sys.executable, "-m", "weft_cli", "dashboard", "--no-browser", "--port", "0"],
        env=weft_env(bookshop), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert forward.stdout is not None
    line = forward.stdout.readline()  # the URL, once kubectl forwards
    try:
        assert line.startswith("Weft dashboard: http://127.0.0.1:"), (line, forward.stderr)
        yield Viz(bookshop, line.split()[2], prometheus)
    finally:
        forward.terminate()
        forward.wait(timeout=15)
        uninstalled = weft(bookshop, "viz", "uninstall", f"--prometheus-url={prometheus}")
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
