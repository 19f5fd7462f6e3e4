"""Bad input and faults: the server ends only the offending stream, says why, and keeps
no state for proxies that are gone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from config_mesh import Mesh, soon, start_mesh
from grpc import aio

from weft_api import config_proto
from weft_api.config import ProxyIdentity
from weft_api.proto import config_pb2 as pb
from weft_api.proto import discovery_pb2 as dpb
from weft_proxy.config_client.client import ConfigClient

Run = Callable[[ConfigClient], ConfigClient]
METHOD = "/weft.config.v1.ConfigDiscovery/Stream"
HELLO = dpb.ProxyRequest(
    hello=dpb.Hello(
        identity=config_proto.identity_to_proto(ProxyIdentity("raw-0", "shop", "web")),
        proxy_version="test",
    )
)


@pytest.fixture
async def raw(mesh: Mesh) -> AsyncIterator[aio.StreamStreamMultiCallable]:
    """A stream that sends whatever bytes a test gives it."""
    async with aio.insecure_channel(mesh.address) as channel:
        yield channel.stream_stream(
            METHOD,
            request_serializer=lambda message: message,
            response_deserializer=dpb.ConfigUpdate.FromString,
        )


async def ended(call: aio.StreamStreamCall) -> aio.AioRpcError:  # type: ignore[type-arg]
    with pytest.raises(aio.AioRpcError) as caught:
        await asyncio.wait_for(_drain(call), 5)
    return caught.value


async def _drain(call: aio.StreamStreamCall) -> None:  # type: ignore[type-arg]
    while await call.read() is not aio.EOF:
        pass


async def still_serves(mesh: Mesh, running: Run) -> None:
    client = running(mesh.client(pod="healthy-0"))
    await asyncio.wait_for(client.store.wait_ready(), 5)


async def test_malformed_bytes_end_only_that_stream(
    mesh: Mesh, raw: aio.StreamStreamMultiCallable, running: Run
) -> None:
    call = raw()
    await call.write(b"\xff\xff\xff\xff not protobuf")
    error = await ended(call)
    assert error.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT)
    await still_serves(mesh, running)


async def test_a_stream_must_open_with_a_hello(
    mesh: Mesh, raw: aio.StreamStreamMultiCallable, caplog: pytest.LogCaptureFixture
) -> None:
    call = raw()
    await call.write(dpb.ProxyRequest(ack=dpb.Ack(nonce="1")).SerializeToString())
    error = await ended(call)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "the first request must be a hello" in error.details()
    assert "the first request must be a hello" in caplog.text
    bad_identity = dpb.ProxyRequest(hello=dpb.Hello(identity=pb.ProxyIdentity(pod="p")))
    call = raw()
    await call.write(bad_identity.SerializeToString())
    assert "identity.namespace" in (await ended(call)).details()
    assert not mesh.hub.sessions


async def test_unknown_requests_and_resource_types_are_refused_and_the_stream_goes_on(
    mesh: Mesh, raw: aio.StreamStreamMultiCallable, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    call = raw()
    await call.write(HELLO.SerializeToString())
    first = await asyncio.wait_for(call.read(), 5)
    assert first.full
    await call.write(
        dpb.ProxyRequest(ack=dpb.Ack(nonce=first.nonce, version=first.version)).SerializeToString()
    )
    await call.write(dpb.ProxyRequest().SerializeToString())  # a kind from a newer proxy
    inbound = dpb.Subscribe(type=dpb.RESOURCE_TYPE_INBOUND, names=["x"])
    await call.write(dpb.ProxyRequest(subscribe=inbound).SerializeToString())
    unknown = dpb.Subscribe(type=42, names=["x"])  # type: ignore[arg-type]
    await call.write(dpb.ProxyRequest(subscribe=unknown).SerializeToString())
    outbound = dpb.Subscribe(type=dpb.RESOURCE_TYPE_OUTBOUND, names=["10.96.0.10"])
    await call.write(dpb.ProxyRequest(subscribe=outbound).SerializeToString())
    update = await asyncio.wait_for(call.read(), 5)
    assert [r.name for r in update.resources if r.HasField("outbound")] == ["10.96.0.10"]
    assert "a request of no kind this server knows" in caplog.text
    assert "only OUTBOUND resources are subscribed to, not RESOURCE_TYPE_INBOUND" in caplog.text
    assert "not 42" in caplog.text

    with contextlib.suppress(aio.AioRpcError):  # the server may end it before the tenth
        for _ in range(10):  # a stream that keeps sending nonsense is ended
            await call.write(dpb.ProxyRequest().SerializeToString())
    await ended(call)
    assert "ending the config stream" in caplog.text
    assert "10 refused requests" in caplog.text
    await soon(lambda: not mesh.hub.sessions, "the session to go")


async def test_a_proxy_that_never_acks_is_disconnected(
    raw_mesh_never_acks: tuple[Mesh, aio.StreamStreamMultiCallable],
    caplog: pytest.LogCaptureFixture,
) -> None:
    mesh, raw_call = raw_mesh_never_acks
    call = raw_call()
    await call.write(HELLO.SerializeToString())
    await asyncio.wait_for(call.read(), 5)  # and no ACK
    assert len(mesh.hub.sessions) == 1
    error = await ended(call)
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "no ACK or NACK within 0.3s" in caplog.text
    assert not mesh.hub.sessions
    assert len(mesh.hub.cache) == 0


@pytest.fixture
async def raw_mesh_never_acks() -> AsyncIterator[tuple[Mesh, aio.StreamStreamMultiCallable]]:
    mesh = await start_mesh(ack_timeout=0.3)
    async with aio.insecure_channel(mesh.address) as channel:
        yield (
            mesh,
            channel.stream_stream(
                METHOD,
                request_serializer=lambda message: message,
                response_deserializer=dpb.ConfigUpdate.FromString,
            ),
        )
    await mesh.server.stop(grace=None)


async def test_a_proxy_vanishing_mid_stream_leaves_nothing_behind(mesh: Mesh) -> None:
    channel = aio.insecure_channel(mesh.address)
    call = channel.stream_stream(
        METHOD, request_serializer=lambda m: m, response_deserializer=dpb.ConfigUpdate.FromString
    )()
    await call.write(HELLO.SerializeToString())
    await asyncio.wait_for(call.read(), 5)  # an update in flight, never answered
    subscribe = dpb.Subscribe(type=dpb.RESOURCE_TYPE_OUTBOUND, names=["10.96.0.10"])
    await call.write(dpb.ProxyRequest(subscribe=subscribe).SerializeToString())
    await channel.close(grace=None)  # gone, without a goodbye
    await soon(lambda: not mesh.hub.sessions, "the server to forget the proxy")
    assert len(mesh.hub.cache) == 0
    assert not mesh.server._connections


async def test_many_streams_reconnecting_at_once(running: Run) -> None:
    mesh = await start_mesh()
    clients = [running(mesh.client(pod=f"web-{i}")) for i in range(200)]
    for i, client in enumerate(clients):
        client.subscribe("10.96.0.10" if i % 2 else "web.shop.svc.cluster.local")
    await asyncio.wait_for(asyncio.gather(*(c.store.wait_ready() for c in clients)), 20)
    entries = len(mesh.hub.cache)
    await mesh.server.stop(grace=None)  # every stream drops at once

    restarted = await start_mesh(port=mesh.port)
    try:
        await soon(lambda: all(c.streams == 2 for c in clients), "every client back", within=20)
        assert len(restarted.hub.sessions) == 200
        # bounded: an inbound entry per pod, one for `web` (both targets resolve to it),
        # and the cluster IP table
        assert len(restarted.hub.cache) == entries == 200 + 2
        assert all(c.store.current is not None for c in clients)
    finally:
        await restarted.server.stop(grace=None)
