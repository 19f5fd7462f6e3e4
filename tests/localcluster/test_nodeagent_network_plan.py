"""The node's network plan and the pods' name resolution, without touching the network."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest

from weft_localcluster.nodeagent.addressing import (
    AddressPool,
    NodeNetwork,
    PoolExhausted,
    free_indexes,
)
from weft_localcluster.nodeagent.hosts import RESOLV_CONF, render_hosts, service_addresses
from weft_localcluster.nodeagent.network import _networks_in_use


def net(cidr: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(cidr)


def test_a_node_takes_the_first_bridge_and_subnet_nothing_uses() -> None:
    assert free_indexes([], [])[0] == NodeNetwork(0)
    taken = free_indexes(["weft0"], [net("10.244.1.0/24"), net("192.168.0.0/16")])
    assert taken[0] == NodeNetwork(2)
    assert free_indexes([], [net("10.244.0.0/16")]) == []  # someone routes all of it


def test_names_derive_from_the_bridge_and_fit_linux_limits() -> None:
    network = NodeNetwork(99)
    uid = "1a2b3c4d-0000-4000-8000-000000000000"
    assert (network.bridge, network.gateway, str(network.subnet)) == (
        "weft99",
        "10.244.99.1",
        "10.244.99.0/24",
    )
    assert network.netns("shop", "books-v1-7c9d", uid) == "weft99-shop-books-v1-7c9d-1a2b3c4d"
    assert len(network.host_veth(uid)) <= 15
    assert network.host_veth(uid).startswith(network.veth_prefix)
    assert network.runtime_dir == Path("/run/weft/weft99")


def test_the_network_record_round_trips(tmp_path: Path) -> None:
    assert NodeNetwork.read(tmp_path) is None
    (tmp_path / "network.json").write_text(NodeNetwork(3).to_json())
    assert NodeNetwork.read(tmp_path) == NodeNetwork(3)


def test_pod_addresses_go_round_robin_and_skip_those_in_use() -> None:
    pool = AddressPool(net("10.244.0.0/24"))
    first, second = pool.allocate(), pool.allocate()
    assert (first, second) == ("10.244.0.2", "10.244.0.3")
    pool.release(first)
    assert pool.allocate() == "10.244.0.4"  # a freed address rests a while
    small = AddressPool(net("10.0.0.0/29"))  # .2 to .6
    assert [small.allocate() for _ in range(5)] == [f"10.0.0.{i}" for i in range(2, 7)]
    with pytest.raises(PoolExhausted):
        small.allocate()
    small.release("10.0.0.4")
    assert small.allocate() == "10.0.0.4"


def test_addresses_and_routes_in_use_are_read_from_ip_json() -> None:
    addresses = [{"addr_info": [{"local": "192.0.2.2", "prefixlen": 24}]}]
    routes = [{"dst": "default"}, {"dst": "10.244.5.0/24"}, {"dst": "172.17.0.1"}]
    assert _networks_in_use(json.dumps(addresses), json.dumps(routes)) == [
        net("192.0.2.0/24"),
        net("10.244.5.0/24"),
        net("172.17.0.1/32"),
    ]


def service(namespace: str, name: str, cluster_ip: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"clusterIP": cluster_ip, **spec},
    }


def endpoint_slice(namespace: str, service_name: str, *ready: tuple[str, bool]) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "endpoints": [
            {"addresses": [address], "conditions": {"ready": ok}} for address, ok in ready
        ],
    }


SERVICES = [
    service("shop", "books", "10.96.0.20"),
    service("shop", "db", "None"),
    service("other", "books", "10.96.0.30"),
    service("shop", "mail", "", type="ExternalName", externalName="mail.example.com"),
]
SLICES = [endpoint_slice("shop", "db", ("10.244.0.5", True), ("10.244.0.6", False))]


def test_cluster_ips_and_ready_endpoints_of_headless_services() -> None:
    found = {(s.namespace, s.name): s.addresses for s in service_addresses(SERVICES, SLICES)}
    assert found == {
        ("other", "books"): ("10.96.0.30",),
        ("shop", "books"): ("10.96.0.20",),
        ("shop", "db"): ("10.244.0.5",),
    }


def test_hosts_give_full_names_everywhere_and_short_names_at_home() -> None:
    pod = {"metadata": {"namespace": "shop", "name": "web-1"}, "spec": {}}
    text = render_hosts(pod, "10.244.0.9", service_addresses(SERVICES, SLICES), "cluster.local")
    lines = text.splitlines()
    assert "10.244.0.9\tweb-1" in lines
    assert (
        "10.96.0.20\tbooks.shop.svc.cluster.local books.shop.svc.cluster.local. "
        "books.shop.svc books.shop books"
    ) in lines
    # Another namespace's books: qualified names only.
    assert (
        "10.96.0.30\tbooks.other.svc.cluster.local books.other.svc.cluster.local. "
        "books.other.svc books.other"
    ) in lines
    assert any(line.startswith("10.244.0.5\tdb.shop.svc.cluster.local") for line in lines)
    assert "nameserver 127.0.0.1" in RESOLV_CONF


def test_a_pod_with_a_subdomain_gets_its_fully_qualified_name() -> None:
    pod = {
        "metadata": {"namespace": "shop", "name": "db-0"},
        "spec": {"hostname": "db-0", "subdomain": "db"},
    }
    assert (
        "10.244.0.5\tdb-0.db.shop.svc.cluster.local db-0"
        in render_hosts(pod, "10.244.0.5", [], "cluster.local").splitlines()
    )
