"""proxy-init for real, in network namespaces this test creates and deletes.

Two namespaces joined by a veth pair, created inside them (the root namespace gets no
interface, route or rule): "pod" runs proxy-init and listeners standing in for the
proxy; "peer" is another pod calling in. The root namespace's iptables rules and
ip_forward are checked unchanged at the end.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from weft_api import mesh

ENDPOINTS = str(Path(__file__).with_name("netns_endpoints.py"))
POD_ADDRESS, PEER_ADDRESS = "10.254.254.1", "10.254.254.2"
APP_PORT, SKIPPED_OUTBOUND_PORT = 8080, 25


def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


@dataclass(frozen=True)
class Namespaces:
    pod: str
    peer: str

    def run_in(self, netns: str, *argv: str) -> str:
        return run("ip", "netns", "exec", netns, *argv)

    def proxy_init(self, *args: str) -> str:
        return self.run_in(self.pod, sys.executable, "-m", "weft_proxy.init", *args)

    def connect(self, netns: str, host: str, port: int, uid: int | None = None) -> str:
        extra = [str(uid)] if uid is not None else []
        return self.run_in(
            netns, sys.executable, "-I", ENDPOINTS, "connect", host, str(port), *extra
        ).strip()


def root_namespace_state() -> tuple[str, str, str]:
    """Read-only: what the machine's own namespace must still look like afterwards."""
    strip = "\n".join  # iptables-save stamps times in comments
    v4 = strip(line for line in run("iptables-save").splitlines() if not line.startswith("#"))
    v6 = strip(line for line in run("ip6tables-save").splitlines() if not line.startswith("#"))
    return v4, v6, Path("/proc/sys/net/ipv4/ip_forward").read_text()


@pytest.fixture
def namespaces() -> Iterator[Namespaces]:
    before = root_namespace_state()
    suffix = uuid.uuid4().hex[:8]
    ns = Namespaces(pod=f"weft-test-pod-{suffix}", peer=f"weft-test-peer-{suffix}")
    created: list[str] = []
    try:
        for name in (ns.pod, ns.peer):
            run("ip", "netns", "add", name)
            created.append(name)
        # Both ends made inside the namespaces: nothing appears in the root namespace.
        run(
            "ip",
            "-n",
            ns.peer,
            "link",
            "add",
            "eth0",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns.pod,
        )
        for name, address in ((ns.pod, POD_ADDRESS), (ns.peer, PEER_ADDRESS)):
            run("ip", "-n", name, "addr", "add", f"{address}/30", "dev", "eth0")
            run("ip", "-n", name, "link", "set", "eth0", "up")
            run("ip", "-n", name, "link", "set", "lo", "up")
        yield ns
    finally:
        for name in created:
            subprocess.run(["ip", "netns", "del", name], check=False)
    assert root_namespace_state() == before


@pytest.fixture
def stand_in_proxy(namespaces: Namespaces) -> Iterator[subprocess.Popen[str]]:
    """Listeners on the proxy's ports (and a skipped one) in the pod namespace."""
    ports = [mesh.PROXY_INBOUND_PORT, mesh.PROXY_OUTBOUND_PORT, mesh.PROXY_ADMIN_PORT]
    argv = ["ip", "netns", "exec", namespaces.pod, sys.executable, "-I", ENDPOINTS, "listen"]
    listener = subprocess.Popen([*argv, *map(str, ports)], stdout=subprocess.PIPE, text=True)
    assert listener.stdout is not None
    assert json.loads(listener.stdout.readline()) == {"listening": ports}
    yield listener
    listener.kill()
    listener.wait()


def accepted(listener: subprocess.Popen[str]) -> dict[str, object]:
    assert listener.stdout is not None
    line: dict[str, object] = json.loads(listener.stdout.readline())
    return line


def test_apply_redirects_the_pods_tcp_through_the_proxy_ports_then_remove_undoes_it(
    namespaces: Namespaces, stand_in_proxy: subprocess.Popen[str]
) -> None:
    pod, peer = namespaces.pod, namespaces.peer
    namespaces.proxy_init(
        "apply",
        f"--skip-inbound-ports={mesh.PROXY_ADMIN_PORT}",
        f"--skip-outbound-ports={SKIPPED_OUTBOUND_PORT}",
    )
    for family in ("iptables-save", "ip6tables-save"):
        rules = namespaces.run_in(pod, family, "-t", "nat")
        for expected in ("-j WEFT_INBOUND", "--uid-owner 2102", "--to-ports 4140"):
            assert expected in rules, (family, expected)

    # Outbound: the app's connection reaches the proxy, which sees where it was going.
    assert namespaces.connect(pod, PEER_ADDRESS, APP_PORT) == "connected"
    assert accepted(stand_in_proxy) == {
        "port": mesh.PROXY_OUTBOUND_PORT,
        "original": f"{PEER_ADDRESS}:{APP_PORT}",
    }
    # The proxy's own connections and skipped ports go out as they are (nothing
    # listens on the peer: refused, rather than accepted by the stand-in proxy).
    assert namespaces.connect(pod, PEER_ADDRESS, APP_PORT, uid=mesh.PROXY_UID) == "refused"
    assert namespaces.connect(pod, PEER_ADDRESS, SKIPPED_OUTBOUND_PORT) == "refused"

    # Inbound: a peer calling the app reaches the proxy's inbound port...
    assert namespaces.connect(peer, POD_ADDRESS, APP_PORT) == "connected"
    assert accepted(stand_in_proxy) == {
        "port": mesh.PROXY_INBOUND_PORT,
        "original": f"{POD_ADDRESS}:{APP_PORT}",
    }
    # ... and the admin port is reached directly (probes).
    assert namespaces.connect(peer, POD_ADDRESS, mesh.PROXY_ADMIN_PORT) == "connected"
    assert accepted(stand_in_proxy)["port"] == mesh.PROXY_ADMIN_PORT

    # Applying again replaces the rules rather than adding a second copy.
    namespaces.proxy_init("apply", "--skip-outbound-ports=25")
    assert namespaces.run_in(pod, "iptables-save", "-t", "nat").count("-j WEFT_OUTBOUND") == 1

    namespaces.proxy_init("remove")
    for family in ("iptables-save", "ip6tables-save"):
        assert "WEFT" not in namespaces.run_in(pod, family, "-t", "nat"), family
    assert namespaces.connect(pod, PEER_ADDRESS, APP_PORT) == "refused"
    assert "WEFT" not in namespaces.proxy_init("show").replace("(Weft's rules)", "")
