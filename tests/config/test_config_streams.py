"""The config server and client over real gRPC streams on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from config_mesh import Mesh, endpoint_slice, soon, split, start_mesh

from weft_api.proto import discovery_pb2 as dpb
from weft_proxy.config_client.assembler import ProxySnapshot
from weft_proxy.config_client.client import ConfigClient

AUTHORITY = "web.shop.svc.cluster.local:80"
Run = Callable[[ConfigClient], ConfigClient]


def weights(snapshot: ProxySnapshot, target: str = AUTHORITY) -> dict[str, int]:
    service = snapshot.targets[target]
    assert service is not None
    return {backend.name: backend.weight for backend in service.backends}


async def test_subscribe_receive_ack(mesh: Mesh, running: Run) -> None:
    client = running(mesh.client())
    first = await asyncio.wait_for(client.store.wait_ready(), 5)
    assert client.ready
    assert first.config.inbound_default.port == 0
    assert first.targets == {}

    found = await asyncio.wait_for(client.outbound(AUTHORITY), 5)
    assert found is not None
    assert found.name == "web"
    (backend,) = found.backends
    assert [e.address for e in backend.ports[0].endpoints] == ["10.0.0.1"]

    by_ip = await asyncio.wait_for(client.outbound("10.96.0.11"), 5)
    assert by_ip is not None
    assert by_ip.name == "web-v1"
    assert await asyncio.wait_for(client.outbound("nothing.shop.svc.cluster.local"), 5) is None

    session = next(iter(mesh.hub.sessions.values()))
    await soon(lambda: session.sent is None, "the last ACK")
    assert session.acked is not None
    assert session.acked.version == client.store.current.version  # type: ignore[union-attr]


async def test_a_split_arrives_and_programmed_counts_the_ack(mesh: Mesh, running: Run) -> None:
    client = running(mesh.client())
    await asyncio.wait_for(client.outbound(AUTHORITY), 5)
    mesh.apply(split("web", **{"web-v1": 90, "web-v2": 10}))
    snapshot = await asyncio.wait_for(
        client.store.wait_for(lambda s: weights(s) == {"web-v1": 90, "web-v2": 10}), 5
    )
    split_key = next(key for key in mesh.hub.convergence() if key.kind == "TrafficSplit")
    converged = await soon(
        lambda: (c := mesh.hub.convergence()[split_key]).complete and c.total and c,
        "the split's convergence",
    )
    assert (converged.generation, converged.acked, converged.total) == (1, 1, 1)
    endpoints = {
        b.name: [e.address for e in b.ports[0].endpoints]
        for b in snapshot.targets[AUTHORITY].backends
    }  # type: ignore[union-attr]
    assert endpoints == {"web-v1": ["10.0.1.1", "10.0.1.2"], "web-v2": ["10.0.2.1"]}


async def test_a_bad_config_is_nacked_and_the_previous_one_kept(mesh: Mesh, running: Run) -> None:
    def no_canary_above_half(snapshot: ProxySnapshot) -> None:
        if snapshot.targets.get(AUTHORITY) and weights(snapshot).get("web-v2", 0) > 50:
            raise ValueError("canary weight above 50")

    client = running(mesh.client(validate=no_canary_above_half))
    mesh.apply(split("web", **{"web-v1": 90, "web-v2": 10}))
    await asyncio.wait_for(client.outbound(AUTHORITY), 5)
    good = client.store.current
    assert good is not None
    assert weights(good) == {"web-v1": 90, "web-v2": 10}
    session = next(iter(mesh.hub.sessions.values()))
    await soon(lambda: session.sent is None, "the ACK")
    pushed = session.acked.version  # type: ignore[union-attr]

    mesh.apply(split("web", generation=2, **{"web-v1": 10, "web-v2": 90}))
    await soon(lambda: session.rejected, "the NACK")
    assert "canary weight above 50" in session.last_error
    assert client.store.current is good  # the proxy keeps its last accepted config
    assert session.acked.version == pushed  # type: ignore[union-attr]
    await asyncio.sleep(0.2)
    assert session.sent is None  # the NACKed version is not sent again

    mesh.apply(split("web", generation=3, **{"web-v1": 60, "web-v2": 40}))
    fixed = await asyncio.wait_for(
        client.store.wait_for(lambda s: weights(s) == {"web-v1": 60, "web-v2": 40}), 5
    )
    assert fixed.version != good.version


async def test_endpoint_churn_travels_as_deltas(mesh: Mesh, running: Run) -> None:
    updates: list[dpb.ConfigUpdate] = []
    original = mesh.server._send

    def spy(outgoing, cause):  # type: ignore[no-untyped-def]
        updates.extend(item.update for item in outgoing)
        original(outgoing, cause)

    mesh.server._send = spy  # type: ignore[method-assign]
    client = running(mesh.client())
    await asyncio.wait_for(client.outbound("web-v1.shop.svc.cluster.local"), 5)
    updates.clear()
    mesh.apply(endpoint_slice("web-v1", "10.0.1.2", "10.0.1.3"))
    snapshot = await asyncio.wait_for(
        client.store.wait_for(
            lambda s: (
                [e.address for e in s.config.outbound[0].backends[0].ports[0].endpoints]
                == ["10.0.1.2", "10.0.1.3"]
            )
        ),
        5,
    )
    assert snapshot.config.outbound[0].name == "web-v1"
    (update,) = updates
    assert not update.full
    (resource,) = update.resources  # only the endpoints changed
    assert resource.name == "shop/web-v1:80"
    delta = resource.endpoints
    assert not delta.reset
    assert [e.address for e in delta.added] == ["10.0.1.3"]
    assert [(r.address, r.port) for r in delta.removed] == [("10.0.1.1", 8080)]


async def test_a_server_restart_reconnects_every_client_without_losing_its_config(
    running: Run,
) -> None:
    mesh = await start_mesh()
    clients = [running(mesh.client(pod=f"web-{i}")) for i in range(20)]
    for client in clients:
        client.subscribe(AUTHORITY)
    await asyncio.wait_for(
        asyncio.gather(*(c.store.wait_for(lambda s: AUTHORITY in s.targets) for c in clients)), 10
    )
    before = [c.store.current for c in clients]
    await mesh.server.stop(grace=None)

    await asyncio.sleep(0.3)  # clients retry against a closed port meanwhile
    assert [c.store.current for c in clients] == before  # last known good survives

    restarted = await start_mesh(port=mesh.port)
    try:
        restarted.apply(split("web", **{"web-v1": 50, "web-v2": 50}))
        await asyncio.wait_for(
            asyncio.gather(
                *(
                    c.store.wait_for(lambda s: weights(s) == {"web-v1": 50, "web-v2": 50})
                    for c in clients
                )
            ),
            10,
        )
        assert all(c.streams == 2 for c in clients)
        assert len(restarted.hub.sessions) == 20
    finally:
        await restarted.server.stop(grace=None)
