"""Tap: watchers get the events their filter matches, a slow watcher loses events
(counted) instead of slowing traffic, and the gRPC stream delivers them."""

from __future__ import annotations

import time

import grpc

from weft_api.proto import tap_pb2, tap_pb2_grpc
from weft_localcluster.waiting import eventually
from weft_proxy.tap.hub import BUFFER, TapEvent, TapFilter, TapHub
from weft_proxy.tap.service import TapService


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
    server = grpc.aio.server()
    tap_pb2_grpc.add_TapServicer_to_server(TapService(hub), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
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
        await server.stop(None)
