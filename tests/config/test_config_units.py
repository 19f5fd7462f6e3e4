"""The small pure pieces: targets, backoff, the store, the assembler's checks."""

from __future__ import annotations

import asyncio
import random

import pytest

from weft_api.config import ProxyIdentity
from weft_api.proto import discovery_pb2 as dpb
from weft_operator.config_server.targets import ClusterIp, ServiceName, parse_target
from weft_proxy.config_client.assembler import ConfigAssembler, UpdateRejected
from weft_proxy.config_client.backoff import Backoff
from weft_proxy.config_client.store import ConfigStore


@pytest.mark.parametrize(
    ("target", "parsed"),
    [
        ("web.shop.svc.cluster.local", ServiceName("shop", "web")),
        ("Web.Shop.svc.cluster.local.:8080", ServiceName("shop", "web")),
        ("10.96.0.10", ClusterIp("10.96.0.10")),
        ("10.96.0.10:80", ClusterIp("10.96.0.10")),
        ("[fd00::0a]:80", ClusterIp("fd00::a")),
        ("fd00::a", ClusterIp("fd00::a")),
        ("web.shop", None),
        ("web.shop.svc.example.org", None),
        ("example.com:443", None),
    ],
)
def test_targets_are_authorities_or_cluster_ips(target: str, parsed: object) -> None:
    assert parse_target(target, "cluster.local") == parsed


def test_backoff_grows_with_jitter_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(base=0.1, cap=1.0, rng=random.Random(7))
    delays = [backoff.next() for _ in range(8)]
    assert 0.05 <= delays[0] <= 0.1
    assert all(0.5 <= d <= 1.0 for d in delays[4:])
    backoff.reset()
    assert backoff.next() <= 0.1


async def test_the_store_hands_the_newest_snapshot_and_waits_for_the_first() -> None:
    store: ConfigStore[str] = ConfigStore()
    waiting = asyncio.ensure_future(store.wait_ready())
    await asyncio.sleep(0)
    assert not waiting.done()
    store.publish("a")
    store.publish("b")
    assert await waiting == "b"  # newest wins
    seen = store.updates()
    assert await anext(seen) == "b"
    store.publish("c")
    store.publish("d")
    assert await anext(seen) == "d"  # a slow reader skips to the newest


def test_the_assembler_rejects_what_it_cannot_apply_whole() -> None:
    assembler = ConfigAssembler(ProxyIdentity("p", "shop", "web"))
    with pytest.raises(UpdateRejected, match="before any full one"):
        assembler.apply(dpb.ConfigUpdate(version="1"))
    with pytest.raises(UpdateRejected, match="no inbound policy"):
        assembler.apply(dpb.ConfigUpdate(version="1", full=True))
    unknown = dpb.ConfigUpdate(version="1", full=True, resources=[dpb.Resource(name="x")])
    with pytest.raises(UpdateRejected, match="of a type this proxy does not know"):
        assembler.apply(unknown)
    delta = dpb.Resource(
        name="shop/web:80",
        endpoints=dpb.Endpoints(removed=[dpb.EndpointAddress(address="10.0.0.1", port=80)]),
    )
    with pytest.raises(UpdateRejected, match="a delta for a set not held"):
        assembler.apply(dpb.ConfigUpdate(version="1", full=True, resources=[delta]))
