"""The node's network plan, pure: its bridge and subnet, pod names and addresses.

Each local cluster's node claims its own bridge `weft<N>` with 10.244.<N>.0/24, N being
the first index whose bridge does not exist and whose subnet nothing on the machine
routes, so two clusters (the developer's and the test suite's) never share pods or
addresses. Everything the agent creates is named after the bridge, so `weft cluster
down` can find and remove it even if the agent was killed.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

POD_SUPERNET = ipaddress.IPv4Network("10.244.0.0/16")
MAX_NODES = 100  # keeps `weft<N>` plus a veth suffix within Linux's 15-character names
RUNTIME_ROOT = Path("/run/weft")  # pods' folders: /run is readable by the pods' users
RECORD_FILE = "network.json"  # in the agent's state folder: what `down` must remove


class NoFreeNetwork(RuntimeError):
    pass


class PoolExhausted(RuntimeError):
    pass


@dataclass(frozen=True)
class NodeNetwork:
    index: int

    @property
    def bridge(self) -> str:
        return f"weft{self.index}"

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"10.244.{self.index}.0/24")

    @property
    def gateway(self) -> str:
        """The bridge's address: the node as pods see it (hostIP, default route)."""
        return str(self.subnet.network_address + 1)

    @property
    def netns_prefix(self) -> str:
        return f"{self.bridge}-"

    @property
    def veth_prefix(self) -> str:
        return f"{self.bridge}v"

    @property
    def runtime_dir(self) -> Path:
        return RUNTIME_ROOT / self.bridge

    def netns(self, namespace: str, name: str, uid: str) -> str:
        """`weft0-shop-books-v1-7c9d-1a2b3c4d`: readable, unique by the pod's uid."""
        return f"{self.netns_prefix}{namespace}-{name}"[:80] + f"-{uid[:8]}"

    def host_veth(self, uid: str) -> str:
        return f"{self.veth_prefix}{uid[:8]}"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> NodeNetwork:
        data: dict[str, Any] = json.loads(text)
        return cls(index=int(data["index"]))

    @classmethod
    def read(cls, state_dir: Path) -> NodeNetwork | None:
        """The network an agent with this state folder claimed, if any."""
        try:
            return cls.from_json((state_dir / RECORD_FILE).read_text())
        except (OSError, ValueError, KeyError, TypeError):
            return None


def free_indexes(links: Iterable[str], used: Iterable[ipaddress.IPv4Network]) -> list[NodeNetwork]:
    """Candidate networks, lowest first: no such bridge, no overlap with `used`."""
    taken_links = set(links)
    taken = list(used)
    return [
        network
        for network in map(NodeNetwork, range(MAX_NODES))
        if network.bridge not in taken_links
        and not any(network.subnet.overlaps(other) for other in taken)
    ]


@dataclass
class AddressPool:
    """Pod addresses of the subnet, handed out round-robin so a freed one rests a while."""

    subnet: ipaddress.IPv4Network
    in_use: set[str] = field(default_factory=set)
    _last: int = 1  # .1 is the gateway

    def allocate(self) -> str:
        usable = self.subnet.num_addresses - 3  # not the network, gateway or broadcast
        for step in range(1, usable + 1):
            offset = (self._last - 2 + step) % usable + 2
            address = str(self.subnet.network_address + offset)
            if address not in self.in_use:
                self.in_use.add(address)
                self._last = offset
                return address
        raise PoolExhausted(f"no free pod address left in {self.subnet}")

    def release(self, address: str) -> None:
        self.in_use.discard(address)
