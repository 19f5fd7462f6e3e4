"""`kubectl logs` as the node agent serves it: which file, which lines, how long (no cluster)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from weft_api import pki
from weft_localcluster import build, ports, streaming_build
from weft_localcluster.nodeagent import kubelet_api
from weft_localcluster.nodeagent.container_logs import LogNotFound, LogQuery, pick_run, tail_offset
from weft_localcluster.waiting import eventually


def tail(path: Path, lines: int) -> bytes:
    return path.read_bytes()[tail_offset(path, lines) :]


@pytest.mark.parametrize(
    ("text", "lines", "expected"),
    [
        (b"a\nb\nc\n", 2, b"b\nc\n"),
        (b"a\nb\nc\n", 3, b"a\nb\nc\n"),
        (b"a\nb\nc\n", 10, b"a\nb\nc\n"),
        (b"a\nb\nc", 1, b"c"),  # an unfinished last line counts
        (b"a\nb\nc\n", 0, b""),
        (b"", 5, b""),
    ],
)
def test_tail_lines(tmp_path: Path, text: bytes, lines: int, expected: bytes) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(text)
    assert tail(path, lines) == expected


def test_tail_lines_across_blocks(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    lines = [f"line {n:06d} {'x' * 50}\n".encode() for n in range(5000)]
    path.write_bytes(b"".join(lines))
    assert tail(path, 3000) == b"".join(lines[-3000:])


def test_the_current_run_is_the_newest_and_previous_the_one_before(tmp_path: Path) -> None:
    for run in (0, 1, 2, 10):
        (tmp_path / f"{run}.log").write_text("")
    assert pick_run(tmp_path, "p", "c", previous=False) == 10
    assert pick_run(tmp_path, "p", "c", previous=True) == 2


def test_missing_runs_are_named_as_the_kubelet_names_them(tmp_path: Path) -> None:
    with pytest.raises(LogNotFound, match='container "c" in pod "p" is waiting to start'):
        pick_run(tmp_path, "p", "c", previous=False)
    (tmp_path / "0.log").write_text("")
    with pytest.raises(LogNotFound, match='previous terminated container "c" in pod "p"'):
        pick_run(tmp_path, "p", "c", previous=True)


def test_query_parameters() -> None:
    query = LogQuery.from_params({"follow": "true", "tailLines": "5", "limitBytes": "9"})
    assert query == LogQuery(follow=True, previous=False, tail_lines=5, limit_bytes=9)
    with pytest.raises(ValueError, match="tailLines must not be negative"):
        LogQuery.from_params({"tailLines": "-1"})


def test_only_the_api_servers_certificate_or_an_admin_is_admitted() -> None:
    def subject(cn: str, *orgs: str) -> dict[str, Any]:
        names = [(("commonName", cn),), *((("organizationName", o),) for o in orgs)]
        return {"subject": tuple(names)}

    assert kubelet_api.admitted(subject("kube-apiserver-kubelet-client"))
    assert kubelet_api.admitted(subject("weft-admin", "system:masters"))
    assert not kubelet_api.admitted(subject("system:node:weft-local", "system:nodes"))
    assert not kubelet_api.admitted(None)


# -- the server, over a fake pod worker --------------------------------------------------
@dataclass
class FakeState:
    name: str
    restart_count: int = 0
    running_since: float | None = 1.0


@dataclass
class FakeSupervisor:
    state: FakeState
    plan: Any = None


@dataclass
class FakeWorker:
    logs_dir: Path
    supervisors: list[Any] = field(default_factory=list)
    sandbox: Any = None


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as out:
        out.write(data)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], FakeWorker]]:
    worker = FakeWorker(tmp_path / "ns_p_uid", [FakeSupervisor(FakeState("c"))])
    (worker.logs_dir / "c").mkdir(parents=True)

    def find(namespace: str, pod: str) -> Any:
        return worker if (namespace, pod) == ("ns", "p") else None

    app = web.Application()
    app.add_routes(kubelet_api.public_routes(tmp_path, find))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client, worker


async def test_follow_streams_until_the_run_ends(
    served: tuple[TestClient[Any, Any], FakeWorker],
) -> None:
    test_client, worker = served
    log = worker.logs_dir / "c" / "0.log"
    log.write_bytes(b"first\n")
    response = await test_client.get("/containerLogs/ns/p/c?follow=true")
    assert response.status == 200
    assert await response.content.readline() == b"first\n"
    append(log, b"second\n")
    assert await asyncio.wait_for(response.content.readline(), 10) == b"second\n"
    append(log, b"last words\n")
    worker.supervisors[0].state.running_since = None  # the run ended
    assert await asyncio.wait_for(response.content.read(), 10) == b"last words\n"


async def test_limit_bytes_and_unknown_names(
    served: tuple[TestClient[Any, Any], FakeWorker],
) -> None:
    test_client, worker = served
    (worker.logs_dir / "c" / "0.log").write_bytes(b"0123456789\n")
    response = await test_client.get("/containerLogs/ns/p/c?limitBytes=4")
    assert await response.read() == b"0123"
    response = await test_client.get("/containerLogs/ns/p/other")
    assert response.status == 404
    response = await test_client.get("/containerLogs/ns/nope/c")
    assert response.status == 404


# -- the streaming server's build --------------------------------------------------------
def test_the_streaming_build_is_cached_by_source_hash(tmp_path: Path) -> None:
    for name in streaming_build.SOURCES:
        (tmp_path / name).write_text(name)
    first = streaming_build.bundle_name(tmp_path)
    (tmp_path / "main.go").write_text("package main // changed")
    assert streaming_build.bundle_name(tmp_path) != first
    assert first.startswith("kubelet-streaming-")


def test_the_checked_in_sources_pin_the_kubernetes_staging_version() -> None:
    go_mod = (streaming_build.SOURCE_DIR / "go.mod").read_text()
    staging = build.versions.staging_version(build.versions.KUBERNETES_VERSION)
    assert f"k8s.io/cri-streaming {staging}" in go_mod
    assert (streaming_build.SOURCE_DIR / "go.sum").read_text()


def test_a_failed_streaming_build_leaves_the_cluster_without_exec(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WEFT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", "/nonexistent")
    assert streaming_build.try_streaming() is None
    assert not list(tmp_path.rglob(streaming_build.BINARY))


async def test_without_the_streaming_server_the_agent_serves_logs_over_tls(
    served: tuple[TestClient[Any, Any], FakeWorker], tmp_path: Path
) -> None:
    _, worker = served
    (worker.logs_dir / "c" / "0.log").write_bytes(b"over tls\n")
    ca = pki.new_ca("test-ca")
    ca_file, _ = ca.write(tmp_path, "ca")
    port = ports.pick_free()
    settings = kubelet_api.KubeletSettings(
        address=ports.HOST, state_dir=tmp_path / "agent", client_ca=ca_file, node_name="n",
        port=port,
    )  # fmt: skip

    def find(namespace: str, pod: str) -> Any:
        return worker if (namespace, pod) == ("ns", "p") else None

    def client_tls(cn: str) -> ssl.SSLContext:
        cert, key = pki.issue(ca, cn, client=True).write(tmp_path, cn)
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        context.load_cert_chain(cert, key)
        return context

    async def get(cn: str) -> tuple[int, bytes]:
        url = f"https://{ports.HOST}:{port}/containerLogs/ns/p/c"
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, ssl=client_tls(cn)) as response,
        ):
            return response.status, await response.read()

    async def answers() -> tuple[int, bytes] | None:
        try:
            return await get("kube-apiserver-kubelet-client")
        except aiohttp.ClientConnectionError:
            return None  # not listening yet

    serving = asyncio.create_task(kubelet_api.serve(settings, tmp_path, find))
    try:
        assert await eventually(answers, "the kubelet API", within=10) == (200, b"over tls\n")
        assert (await get("system:node:n"))[0] == 403
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
