"""Tap: watchers get the events their filter matches, a slow watcher loses events
(counted) instead of slowing traffic, and the gRPC stream delivers them."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time

import grpc
from cryptography import x509
from mesh_ca import MeshCa

from weft_api.proto import tap_pb2, tap_pb2_grpc
from weft_localcluster.waiting import eventually
from weft_proxy.identity.credentials import Credentials
from weft_proxy.tap.hub import BUFFER, TapEvent, TapFilter, TapHub
from weft_proxy.tap.service import TapService, start_tap_server, tap_server_context


def event(path: str = "/books/1", method: str = "GET", direction: str = "outbound") -> TapEvent:
    return TapEvent(
        direction=direction,
        method=method,
        authority="books.shop.svc.cluster.local",
        path=path,
        status=200,
        latency_ms=1.5,
        tls=True,
        source="10.244.0.5:40000",
        destination="10.244.0.7:8080",
        destination_service="shop/books",
        timestamp=time.time(),
    )


async def test_watchers_get_only_what_their_filter_matches() -> None:
    hub = TapHub()
    assert not hub.watched  # the stacks skip building events
    posts = hub.watch(TapFilter(method="POST"))
    books = hub.watch(TapFilter(path_prefix="/books", destination="shop/books"))
    hub.publish(event("/books/1"))
    hub.publish(event("/authors", method="POST"))
    assert (await books.next())[0].path == "/books/1"
    assert (await posts.next())[0].path == "/authors"
    assert not books.buffer
    hub.unwatch(posts)
    hub.unwatch(books)
    assert not hub.watched


async def test_a_slow_watcher_drops_the_oldest_and_learns_how_many() -> None:
    hub = TapHub()
    watcher = hub.watch(TapFilter())
    for i in range(BUFFER + 10):
        hub.publish(event(f"/{i}"))  # never blocks
    first, dropped = await watcher.next()
    assert first.path == "/10"
    assert dropped == 10


async def test_the_grpc_stream_delivers_matching_events() -> None:
    hub = TapHub()
    server, port = await start_tap_server(TapService(hub), "127.0.0.1", 0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stream = tap_pb2_grpc.TapStub(channel).Observe(
                tap_pb2.ObserveRequest(direction="inbound", limit=2)
            )

            async def watching() -> bool:
                return hub.watched

            await eventually(watching, "the stream to register its watcher", within=5)
            hub.publish(event("/skipped", direction="outbound"))
            hub.publish(event("/a", direction="inbound"))
            hub.publish(event("/b", direction="inbound"))
            received = [message async for message in stream]
        assert [m.path for m in received] == ["/a", "/b"]
        assert received[0].destination_service == "shop/books"
        assert not hub.watched  # the watcher left with the stream
    finally:
        server.close()
        await server.wait_closed()


def serial(credentials: Credentials) -> int:
    return x509.load_der_x509_certificate(credentials.leaf_der).serial_number


def handshake(port: int, context: ssl.SSLContext, server_name: str) -> tuple[int, bytes]:
    """The serial of the leaf the tap port presents, and what it sends first once
    connected: its HTTP/2 settings, or b"" (TLS 1.3 reports a refused client
    certificate after the handshake, by closing). Blocking: run it in a thread."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        try:
            first = tls.recv(1)
        except (ssl.SSLError, ConnectionResetError):
            first = b""
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number, first


async def test_the_tap_port_presents_the_renewed_leaf_to_new_connections() -> None:
    """The proxy's leaf is renewed in place: the next handshake presents the new one."""
    ca = MeshCa()
    leaves = [ca.credentials("web")]
    cli = ca.credentials("weft-cli", "weft")
    server, port = await start_tap_server(
        TapService(TapHub(), frozenset({cli.identity})),
        "127.0.0.1",
        0,
        tap_server_context(lambda: leaves[-1]),
    )
    try:
        name, client = leaves[0].identity, cli.client_context()
        first, answer = await asyncio.to_thread(handshake, port, client, name)
        assert (first, answer) == (serial(leaves[0]), b"\x00")  # a frame's length
        leaves.append(ca.credentials("web"))  # renewed
        second, _ = await asyncio.to_thread(handshake, port, client, name)
        assert second == serial(leaves[1]) != first
        stranger = ssl.create_default_context(cadata=ca.root_pem.decode())  # no client leaf
        assert (await asyncio.to_thread(handshake, port, stranger, name))[1] == b""
    finally:
        server.close()
        await server.wait_closed()
