"""`weft stat`, `weft edges` on real proxies with real traffic: the CLI runs as a
subprocess and scrapes the proxies' admin ports twice, a window apart, while this
test's event loop serves the proxies and sends the requests (see live_mesh.py).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from live_mesh import LiveMesh, live_mesh
from weft_runner import Ran, weft_async

from weft_cli import local_install
from weft_localcluster.cluster import ClusterInfo

WINDOW = "2s"


@pytest.fixture
async def mesh() -> AsyncIterator[LiveMesh]:
    async with live_mesh("shop") as running:
        yield running


async def with_traffic(mesh: LiveMesh, *args: str, kubeconfig: str | None = None) -> Ran:
    """Run the command while requests flow through the mesh."""
    stop = asyncio.Event()
    traffic = asyncio.create_task(mesh.traffic(stop))
    try:
        return await weft_async(*args, kubeconfig=kubeconfig)
    finally:
        stop.set()
        assert await traffic > 0


def rows(ran: Ran) -> list[dict[str, Any]]:
    assert ran.code == 0, ran.stderr
    found: list[dict[str, Any]] = json.loads(ran.stdout)
    return found


async def test_stat_deploy_shows_each_workloads_served_traffic(
    mesh: LiveMesh, tmp_path: Path
) -> None:
    proxies = mesh.write_proxies_file(tmp_path / "proxies.yaml")
    ran = await with_traffic(
        mesh,
        "stat",
        "deploy",
        "-n",
        "shop",
        "--proxies-file",
        str(proxies),
        "-w",
        WINDOW,
        "-o",
        "json",
    )
    by_name = {row["name"]: row for row in rows(ran)}
    assert set(by_name) == {"web", "books-stable", "books-canary"}
    assert by_name["web"]["success"] is None  # web serves nothing: it only calls
    stable, canary = by_name["books-stable"], by_name["books-canary"]
    assert stable["success"] == 1.0
    assert 0.65 <= canary["success"] <= 0.85  # its app fails one request in four
    assert stable["rps"] > canary["rps"] > 0
    assert 0 < stable["latency_ms_p50"] <= stable["latency_ms_p99"] < 1000
    assert stable["meshed_pods"] == stable["pods"] == 1


async def test_stat_table_reads_well_when_piped(mesh: LiveMesh, tmp_path: Path) -> None:
    proxies = mesh.write_proxies_file(tmp_path / "proxies.yaml")
    ran = await with_traffic(
        mesh,
        "stat",
        "deploy",
        "books-canary",
        "-n",
        "shop",
        "--proxies-file",
        str(proxies),
        "-w",
        WINDOW,
    )
    assert ran.code == 0, ran.stderr
    header, row = ran.stdout.splitlines()
    assert header.split() == [
        "NAME",
        "MESHED",
        "SUCCESS",
        "RPS",
        "LATENCY_P50",
        "LATENCY_P95",
        "LATENCY_P99",
        "TCP_CONN",
    ]
    cells = row.split()
    assert cells[:2] == ["books-canary", "1/1"]
    assert cells[2].endswith("%")
    assert "\x1b[" not in ran.stdout  # no colors in a pipe


@pytest.fixture
async def split(cluster: ClusterInfo, namespace: str) -> str:
    """A Flagger-style v1alpha1 TrafficSplit of `books`, 800m / 200m, as the proxy splits."""
    await asyncio.to_thread(local_install.install_crds, cluster)
    body = {
        "apiVersion": "split.smi-spec.io/v1alpha1",
        "kind": "TrafficSplit",
        "metadata": {"name": "books", "namespace": namespace},
        "spec": {
            "service": "books",
            "backends": [
                {"service": "books-stable", "weight": "800m"},
                {"service": "books-canary", "weight": "200m"},
            ],
        },
    }
    await asyncio.to_thread(
        local_install.kubectl, cluster, "apply", "-f", "-", stdin=json.dumps(body)
    )
    return namespace


async def test_stat_ts_shows_the_split_matching_real_traffic(
    cluster: ClusterInfo, split: str, tmp_path: Path
) -> None:
    async with live_mesh(split) as running:
        proxies = running.write_proxies_file(tmp_path / "proxies.yaml")
        args = ("stat", "ts", "books", "-n", split, "--proxies-file", str(proxies), "-w", WINDOW)
        ran = await with_traffic(running, *args, "-o", "json", kubeconfig=str(cluster.kubeconfig))
        stable, canary = rows(ran)
        assert (stable["backend"], stable["weight"], stable["weight_share"]) == (
            "books-stable",
            "800m",
            0.8,
        )
        assert (canary["backend"], canary["weight"], canary["weight_share"]) == (
            "books-canary",
            "200m",
            0.2,
        )
        assert 0.7 <= stable["traffic_share"] <= 0.9
        assert abs(stable["traffic_share"] + canary["traffic_share"] - 1) < 1e-9
        assert stable["success"] == 1.0
        assert 0.6 <= canary["success"] <= 0.9
        table = await with_traffic(running, *args, kubeconfig=str(cluster.kubeconfig))
    lines = table.stdout.splitlines()
    assert lines[0].split()[:5] == ["TRAFFICSPLIT", "APEX", "BACKEND", "WEIGHT", "TRAFFIC"]
    assert "200m (20.00%)" in lines[2]


async def test_edges_show_who_called_whom(mesh: LiveMesh, tmp_path: Path) -> None:
    proxies = mesh.write_proxies_file(tmp_path / "proxies.yaml")
    ran = await with_traffic(
        mesh, "edges", "-n", "shop", "--proxies-file", str(proxies), "-w", WINDOW, "-o", "json"
    )
    found = {(row["src"], row["dst"]) for row in rows(ran)}
    assert found == {("deploy/web", "deploy/books-stable"), ("deploy/web", "deploy/books-canary")}
    assert all(not row["secured"] for row in rows(ran))  # no mTLS on loopback tests yet


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def proxies_file(path: Path, *entries: tuple[str, str]) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "proxies": [
                    {"namespace": "shop", "pod": pod, "deployment": "web", "admin": admin}
                    for pod, admin in entries
                ]
            }
        )
    )
    return path


async def test_a_proxy_that_does_not_answer_is_one_line_and_a_failure(tmp_path: Path) -> None:
    dead = proxies_file(tmp_path / "dead.yaml", ("web-0", f"127.0.0.1:{closed_port()}"))
    ran = await weft_async("stat", "pod", "-n", "shop", "--proxies-file", str(dead), "-w", "1s")
    assert "the proxy of pod shop/web-0 did not answer" in ran.one_line_error


async def test_one_silent_proxy_among_others_is_a_warning(mesh: LiveMesh, tmp_path: Path) -> None:
    both = proxies_file(
        tmp_path / "both.yaml",
        ("web-0", mesh.web.admin_address),
        ("web-1", f"127.0.0.1:{closed_port()}"),
    )
    ran = await weft_async(
        "stat", "pod", "-n", "shop", "--proxies-file", str(both), "-w", "1s", "-o", "json"
    )
    assert ran.code == 0
    assert "warning: the proxy of pod shop/web-1 did not answer" in ran.stderr
    assert {row["name"] for row in rows(ran)} == {"web-0", "web-1"}


async def test_bad_options_are_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("hello: world\n")
    ran = await weft_async("stat", "pod", "--proxies-file", str(empty))
    assert "is not a proxies file: it needs a `proxies:` list" in ran.one_line_error
    ran = await weft_async("stat", "pod", "--proxies-file", str(empty), "-w", "soon")
    assert "--window 'soon' is not a duration" in ran.one_line_error
    ran = await weft_async(
        "stat",
        "deploy",
        "nothing",
        "-n",
        "shop",
        "--proxies-file",
        str(proxies_file(tmp_path / "p.yaml", ("web-0", "127.0.0.1:1"))),
    )
    assert "no pods of deployment nothing in namespace shop" in ran.one_line_error
