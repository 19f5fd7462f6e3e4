"""Fixtures shared by tests/ and e2e/: the real local cluster, a namespace per test, and
a real Prometheus (Debian's) for tests that check queries over the proxies' metrics.

The cluster comes up once per session, from the cached binaries (built on first use),
on free loopback ports and in a state folder of its own, so it never collides with a
cluster the developer runs for the demo. If it cannot start, every test that needs it
errors: the suite fails, it does not skip.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.api_client import ApiClient

from weft_localcluster import ports
from weft_localcluster.cluster import ClusterInfo, LocalCluster

StartPrometheus = Callable[[list[dict[str, Any]]], str]
StartPrometheusWith = Callable[..., str]  # (configuration, binary=None) -> URL

# Hypothesis fails an example that takes over 200 ms: a timed assertion, which a loaded
# machine breaks (a property test failed so beside a second `make test`).
settings.register_profile("weft", deadline=None)
settings.load_profile("weft")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterInfo]:
    local = LocalCluster(tmp_path_factory.mktemp("cluster") / "state")
    try:
        yield local.up(api_port=0)
    finally:
        local.down()


@pytest.fixture(scope="session")
def helm_binary() -> Path:
    """helm, built from Go modules on first use (weft_localcluster.go_tools)."""
    from weft_localcluster.go_tools import HELM, ensure_tool

    return ensure_tool(HELM)


@pytest.fixture(scope="session")
def kubeconfig(cluster: ClusterInfo) -> Path:
    return cluster.kubeconfig


@pytest.fixture(scope="session")
async def api(cluster: ClusterInfo) -> AsyncIterator[ApiClient]:
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(cluster.kubeconfig), client_configuration=configuration
    )
    async with ApiClient(configuration) as api_client:
        yield api_client


@pytest.fixture
async def namespace(api: ApiClient, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A fresh namespace, ready for pods (its `default` ServiceAccount exists)."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{slug}-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    for _ in range(200):  # the controller-manager creates it within a second or so
        accounts = await core.list_namespaced_service_account(name)
        if any(sa.metadata.name == "default" for sa in accounts.items):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"ServiceAccount default never appeared in namespace {name}")
    yield name
    await core.delete_namespace(name)


PROMETHEUS_START_S = 120.0


def _until_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Until Prometheus answers /-/ready (a loaded machine takes seconds to open its
    storage): a query sent before that is refused, as a user's would be."""
    deadline = time.monotonic() + PROMETHEUS_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"prometheus exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:  # not listening yet, or 503 while it starts
            pass
        time.sleep(0.1)
    raise AssertionError(
        f"prometheus not ready in {PROMETHEUS_START_S}s: {log.read_text()[-2000:]}"
    )


@pytest.fixture
def prometheus_with(tmp_path: Path) -> Iterator[StartPrometheusWith]:
    """Starts Prometheus with a whole configuration (`global`, `scrape_configs`); its
    URL. It stops with the test. Debian's by default; `binary` for another (Debian's
    has no Kubernetes discovery: the local cluster builds one that has)."""
    debian = shutil.which("prometheus")
    started: list[subprocess.Popen[bytes]] = []

    def start(configuration: dict[str, Any], binary: str | None = None) -> str:
        binary = binary or debian
        assert binary, "prometheus is missing: `make test` installs it with apt-get"
        folder = tmp_path / f"prometheus-{len(started)}"
        folder.mkdir()
        config_file = folder / "prometheus.yml"
        config_file.write_text(json.dumps(configuration))
        port = ports.pick_free()
        started.append(
            subprocess.Popen(
                [
                    binary,
                    f"--config.file={config_file}",
                    f"--storage.tsdb.path={folder / 'data'}",
                    f"--web.listen-address={ports.HOST}:{port}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=(folder / "prometheus.log").open("wb"),
            )
        )
        url = f"http://{ports.HOST}:{port}"
        _until_ready(started[-1], url, folder / "prometheus.log")
        return url

    yield start
    for process in started:
        process.terminate()
    for process in started:
        process.wait(timeout=15)


@pytest.fixture
def prometheus(prometheus_with: StartPrometheusWith) -> StartPrometheus:
    """Starts Prometheus scraping static targets every second (each `{"targets": [...],
    "labels": {...}}`, as Kubernetes service discovery would label pods); its URL. It
    stops with the test."""

    def start(static_configs: list[dict[str, Any]]) -> str:
        scrape = {"job_name": "weft-proxy", "static_configs": static_configs}
        return prometheus_with({"global": {"scrape_interval": "1s"}, "scrape_configs": [scrape]})

    return start
