"""The node's bridge and each pod's network namespace, made with `ip` (iproute2).

Safety (docs/architecture.md): the root namespace gets only the bridge, its own address
(whose connected route stays on the bridge) and the pods' veth ends; no forwarding,
NAT or other route. Inside a pod's namespace, as kube-proxy would, each ClusterIP:port
with endpoints is translated to them (service_nat.py, after proxy-init's REDIRECT in a
meshed pod), and a REJECT after NAT refuses what is left of the service CIDR (a
ClusterIP without endpoints) at once.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from weft_localcluster.nodeagent import service_nat
from weft_localcluster.nodeagent.addressing import (
    RECORD_FILE,
    NodeNetwork,
    NoFreeNetwork,
    free_indexes,
)
from weft_localcluster.nodeagent.commands import CommandError, run, tool
from weft_localcluster.nodeagent.hosts import RESOLV_CONF

log = logging.getLogger(__name__)
ETC_NETNS = Path("/etc/netns")  # `ip netns exec` binds these files over /etc's


def _networks_in_use(addresses: str, routes: str) -> list[ipaddress.IPv4Network]:
    used = []
    for link in json.loads(addresses or "[]"):
        for info in link.get("addr_info") or []:
            used.append(ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False))
    for route in json.loads(routes or "[]"):
        destination = route.get("dst", "default")
        if destination != "default":
            with contextlib.suppress(ValueError):
                used.append(ipaddress.IPv4Network(destination, strict=False))
    return used


async def claim_network(state_dir: Path) -> NodeNetwork:
    """Create the first free bridge and give it its gateway address; record it first."""
    ip = tool("ip")
    links = [link["ifname"] for link in json.loads(await run(ip, "-j", "link", "show"))]
    used = _networks_in_use(
        await run(ip, "-j", "-4", "addr", "show"),
        await run(ip, "-j", "-4", "route", "show", "table", "all"),
    )
    for network in free_indexes(links, used):
        _record(state_dir, network)  # before creating anything: `down` must find it
        try:
            await run(ip, "link", "add", network.bridge, "type", "bridge")
        except CommandError:
            continue  # another cluster's agent took it a moment ago
        await run(
            ip,
            "addr",
            "add",
            f"{network.gateway}/{network.subnet.prefixlen}",
            "dev",
            network.bridge,
        )
        await run(ip, "link", "set", network.bridge, "up")
        return network
    raise NoFreeNetwork("no free bridge name and 10.244.N.0/24 subnet on this machine")


def _record(state_dir: Path, network: NodeNetwork) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / RECORD_FILE).write_text(network.to_json())


@dataclass(frozen=True)
class Sandbox:
    """One pod's network: its namespace, its veth end on the bridge, its address."""

    netns: str
    host_veth: str
    pod_ip: str

    @property
    def netns_path(self) -> Path:
        return Path("/run/netns") / self.netns

    @property
    def etc_dir(self) -> Path:
        return ETC_NETNS / self.netns


async def create_sandbox(
    network: NodeNetwork, sandbox: Sandbox, service_cidr: str, service_rules: list[str], hosts: str
) -> None:
    ip = tool("ip")
    ns, veth = sandbox.netns, sandbox.host_veth
    await run(ip, "netns", "add", ns)
    await run(ip, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
    await run(ip, "link", "set", veth, "master", network.bridge)
    await run(ip, "link", "set", veth, "up")
    await run(ip, "-n", ns, "link", "set", "lo", "up")
    await run(
        ip, "-n", ns, "addr", "add", f"{sandbox.pod_ip}/{network.subnet.prefixlen}", "dev", "eth0"
    )
    await run(ip, "-n", ns, "link", "set", "eth0", "up")
    await run(ip, "-n", ns, "route", "add", "default", "via", network.gateway, "dev", "eth0")
    # After the nat table: what no DNAT (service_nat.py) or REDIRECT (proxy-init) took,
    # a ClusterIP without endpoints or an unknown one, is refused at once.
    await run(
        ip,
        "netns",
        "exec",
        ns,
        tool("iptables"),
        "-w",
        "-A",
        "OUTPUT",
        "-d",
        service_cidr,
        "-m",
        "comment",
        "--comment",
        "weft node: ClusterIP without endpoints",
        "-j",
        "REJECT",
    )
    await apply_service_nat(sandbox, service_rules)
    sandbox.etc_dir.mkdir(parents=True, exist_ok=True)
    write_hosts(sandbox, hosts)
    (sandbox.etc_dir / "resolv.conf").write_text(RESOLV_CONF)


async def apply_service_nat(sandbox: Sandbox, rules: list[str]) -> None:
    """Replace WEFT-SERVICES in the pod's namespace, its jump last in OUTPUT (one
    iptables-restore transaction, in that namespace only)."""
    enter = (tool("nsenter"), f"--net={sandbox.netns_path}")
    current = await run(*enter, tool("iptables-save"), "-t", "nat")
    script = service_nat.restore_script(rules, current)
    await run(*enter, tool("iptables-restore"), "--noflush", "--wait", stdin=script)


def write_hosts(sandbox: Sandbox, text: str) -> None:
    """Rewrite the pod's hosts file in place: running processes see it through a bind
    mount of this inode, which a rename would leave behind."""
    path = sandbox.etc_dir / "hosts"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(text.encode())
        out.truncate()


async def delete_sandbox(sandbox: Sandbox) -> None:
    """Remove the namespace (its veth pair goes with it) and its /etc/netns folder."""
    ip = tool("ip")
    with contextlib.suppress(CommandError):
        for pid in (await run(ip, "netns", "pids", sandbox.netns)).split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), 9)  # stragglers that left their container's group
    await run(ip, "netns", "del", sandbox.netns, check=False)
    await run(ip, "link", "del", sandbox.host_veth, check=False)
    shutil.rmtree(sandbox.etc_dir, ignore_errors=True)
