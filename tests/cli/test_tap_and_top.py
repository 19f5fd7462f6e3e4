"""`weft tap` and `weft top` against the proxies' real Tap gRPC service on loopback.

The events are published into each service's hub by the test, as the proxy's stacks
publish them; the filters are applied by the service, as in a proxy. (Tests of the
proxy itself cover its hub and service; these cover the CLI's streams, merging,
filters and output.)
"""

from __future__ import annotations

import asyncio
import datetime
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from grpclib.server import Server
from weft_runner import Ran, weft_async

from weft_api import mesh
from weft_api.csr import certificate_request, new_key
from weft_api.identity import identity_name, spiffe_id
from weft_api.mesh_ca import KeyPair, issue_leaf, new_issuer, new_trust_anchor
from weft_api.proto.tap_pb2 import ObserveRequest
from weft_cli.observe import tap_stream
from weft_cli.observe.pods import PodInfo
from weft_cli.observe.sources import ProxyUnreachable
from weft_cli.observe.tap_events import Observed
from weft_cli.observe.tap_identity import TapCredentials
from weft_proxy.identity.credentials import Credentials
from weft_proxy.tap.hub import TapEvent, TapHub
from weft_proxy.tap.service import TapService, start_tap_server, tap_server_context

DOMAIN = "cluster.local"


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class TappedProxy:
    pod: str
    hub: TapHub
    server: Server
    port: int


@pytest.fixture
async def tapped() -> AsyncIterator[list[TappedProxy]]:
    proxies = []
    for pod in ("web-0", "books-0"):
        hub = TapHub()
        server, port = await start_tap_server(TapService(hub), "127.0.0.1", 0)
        proxies.append(TappedProxy(pod, hub, server, port))
    yield proxies
    for proxy in proxies:
        proxy.server.close()
        await proxy.server.wait_closed()


def proxies_file(path: Path, proxies: list[TappedProxy], tap_port: int | None = None) -> Path:
    entries = [
        {
            "namespace": "shop",
            "pod": proxy.pod,
            "deployment": proxy.pod.rsplit("-", 1)[0],
            "admin": "127.0.0.1:1",
            "tap": f"127.0.0.1:{tap_port or proxy.port}",
        }
        for proxy in proxies
    ]
    path.write_text(yaml.safe_dump({"proxies": entries}))
    return path


def request(
    path: str, method: str = "GET", status: int = 200, direction: str = "outbound"
) -> TapEvent:
    return TapEvent(
        direction=direction,
        method=method,
        authority="books.shop.svc.cluster.local",
        path=path,
        status=status,
        latency_ms=2.5,
        tls=False,
        source="10.244.0.5:40000",
        destination="10.244.0.7:8080",
        destination_service="shop/books",
        timestamp=time.time(),
    )


async def publish_while(
    command: asyncio.Task[Ran], proxies: list[TappedProxy], *events: TapEvent
) -> Ran:
    """Once every proxy has a watcher, publish the events (again and again, as traffic
    would) until the command ends."""
    while not command.done():
        if all(proxy.hub.watched for proxy in proxies):
            for proxy in proxies:
                for event in events:
                    proxy.hub.publish(event)
        await asyncio.sleep(0.05)
    return await command


async def test_tap_streams_the_filtered_requests_of_every_proxy(
    tapped: list[TappedProxy], tmp_path: Path
) -> None:
    file = proxies_file(tmp_path / "proxies.yaml", tapped)
    command = asyncio.create_task(
        weft_async(
            "tap",
            "-n",
            "shop",
            "--proxies-file",
            str(file),
            "--method",
            "get",
            "--limit",
            "6",
            "-o",
            "json",
        )
    )
    ran = await publish_while(command, tapped, request("/books", "POST"), request("/books/1"))
    assert ran.code == 0, ran.stderr
    events = [json.loads(line) for line in ran.stdout.splitlines()]
    assert len(events) == 6
    assert {event["method"] for event in events} == {"GET"}  # POSTs filtered at the proxies
    assert {event["proxy"] for event in events} == {"shop/web-0", "shop/books-0"}
    assert events[0]["time"].endswith("Z")


async def test_tap_to_a_service_and_from_an_account(
    tapped: list[TappedProxy], tmp_path: Path
) -> None:
    file = proxies_file(tmp_path / "proxies.yaml", tapped[:1])
    elsewhere = request("/authors")
    elsewhere.destination_service = "shop/authors"
    command = asyncio.create_task(
        weft_async(
            "tap",
            "deploy/web",
            "-n",
            "shop",
            "--proxies-file",
            str(file),
            "--to",
            "books",
            "--limit",
            "3",
        )
    )
    ran = await publish_while(
        command, tapped[:1], elsewhere, request("/books/2"), request("/in", direction="inbound")
    )
    assert ran.code == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert len(lines) == 3
    assert all("outbound GET books.shop.svc.cluster.local/books/2 -> 200" in line for line in lines)
    assert all("svc=shop/books" in line for line in lines)


async def test_top_counts_the_busiest_paths(tapped: list[TappedProxy], tmp_path: Path) -> None:
    file = proxies_file(tmp_path / "proxies.yaml", tapped)
    command = asyncio.create_task(
        weft_async(
            "top", "-n", "shop", "--proxies-file", str(file), "--duration", "2s", "-o", "json"
        )
    )
    ran = await publish_while(
        command, tapped, request("/books"), request("/books"), request("/fail", status=503)
    )
    assert ran.code == 0, ran.stderr
    busiest, failing = json.loads(ran.stdout)
    assert (busiest["path"], busiest["destination"], busiest["success"]) == (
        "/books",
        "shop/books",
        1.0,
    )
    # Two /books per /fail in every batch; the window may end mid-batch, once per proxy.
    assert 2 * failing["count"] <= busiest["count"] <= 2 * failing["count"] + 2 * len(tapped)
    assert (failing["path"], failing["success"]) == ("/fail", 0.0)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_proxy_that_cannot_be_tapped_is_one_line(
    tapped: list[TappedProxy], tmp_path: Path
) -> None:
    file = proxies_file(tmp_path / "proxies.yaml", tapped[:1], tap_port=closed_port())
    ran = await weft_async("tap", "-n", "shop", "--proxies-file", str(file), "--limit", "1")
    error = ran.one_line_error
    assert "cannot tap the proxy of pod shop/web-0" in error
    assert "port-forward" in error


async def test_tap_refuses_contradicting_and_unknown_targets(
    tmp_path: Path, tapped: list[TappedProxy]
) -> None:
    file = proxies_file(tmp_path / "proxies.yaml", tapped)
    ran = await weft_async(
        "tap", "--proxies-file", str(file), "-n", "shop", "--to", "books", "--direction", "inbound"
    )
    assert "--to watches outbound requests" in ran.one_line_error
    ran = await weft_async("tap", "svc/books", "--proxies-file", str(file), "-n", "shop")
    assert "is not deploy/NAME, rollout/NAME, rs/NAME, pod/NAME or ns/NAME" in ran.one_line_error
    ran = await weft_async("tap", "deploy/nothing", "--proxies-file", str(file), "-n", "shop")
    assert "no running meshed pods in deploy/nothing" in ran.one_line_error


def mesh_leaf(
    issuer: KeyPair, roots: bytes, account: str, namespace: str
) -> tuple[Credentials, TapCredentials]:
    """A leaf the mesh issuer signs for `account`, as the proxy and as the CLI hold it."""
    key = new_key()
    identity, spiffe = identity_name(account, namespace), spiffe_id(account, namespace)
    leaf = issue_leaf(issuer, certificate_request(key, identity, spiffe), identity, spiffe, now())
    der = serialization.Encoding.DER
    proxy = Credentials(
        identity,
        KeyPair(leaf, key).key_pem(),
        leaf.public_bytes(der),
        (issuer.cert.public_bytes(der),),
        roots,
        leaf.not_valid_after_utc.timestamp(),
    )
    cli = TapCredentials(identity, proxy.key_pem, proxy.certificates_pem(), roots, DOMAIN)
    return proxy, cli


async def first_event(events: AsyncIterator[Observed], hub: TapHub) -> Observed:
    """The first event the CLI's stream yields, publishing requests while it watches."""
    first = asyncio.ensure_future(anext(events))
    while not first.done():
        if hub.watched:
            hub.publish(request("/books/1"))
        await asyncio.sleep(0.05)
    return first.result()


async def test_an_mtls_tap_port_is_tapped_with_the_clis_leaf_and_must_prove_the_pods_identity() -> (
    None
):
    """A proxy whose tap port is mTLS (a real TapService on the proxy's leaf, admitting
    only the CLI's identity) streams to the CLI's leaf; a pod whose proxy cannot prove its
    ServiceAccount's identity is not tapped."""
    anchor = new_trust_anchor(DOMAIN, now())
    issuer = new_issuer(anchor, DOMAIN, now())
    roots = anchor.cert.public_bytes(serialization.Encoding.PEM)
    books, _ = mesh_leaf(issuer, roots, "books", "shop")
    _, cli = mesh_leaf(issuer, roots, mesh.TAP_CLIENT_SERVICE_ACCOUNT, "weft")
    hub = TapHub()
    service = TapService(hub, frozenset({cli.identity}))
    server, port = await start_tap_server(
        service, "127.0.0.1", 0, tap_server_context(lambda: books)
    )
    certified: list[str] = []

    async def certify() -> TapCredentials:
        certified.append(cli.identity)
        return cli

    def pod(account: str) -> PodInfo:
        return PodInfo(
            "shop", "books-0", service_account=account, proxy_version="0.1.0",
            phase="Running", tap_address=f"127.0.0.1:{port}", tap_tls=True,
        )  # fmt: skip

    try:
        events = tap_stream.observe([pod("books")], ObserveRequest(limit=1), pytest.fail, certify)
        assert (await first_event(events, hub)).path == "/books/1"
        await events.aclose()
        assert certified == [cli.identity]

        impostor = tap_stream.observe([pod("web")], ObserveRequest(limit=1), pytest.fail, certify)
        with pytest.raises(ProxyUnreachable, match="cannot tap the proxy of pod shop/books-0"):
            await first_event(impostor, hub)
    finally:
        server.close()
        await server.wait_closed()
