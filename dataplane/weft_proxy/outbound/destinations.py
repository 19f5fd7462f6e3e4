"""Which parent Service a request or connection is for: by authority, or by cluster IP."""

from __future__ import annotations

from collections.abc import Iterable

from weft_api.config import OutboundService

AUTHORITY_CACHE_SIZE = 1024


def split_authority(authority: str, default_port: int = 80) -> tuple[str, int]:
    """'Books.shop:8080' -> ('books.shop', 8080); '[fd00::1]:80' -> ('fd00::1', 80)."""
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        port = rest.removeprefix(":")
    elif authority.count(":") == 1:
        host, _, port = authority.partition(":")
    else:  # no port, or a bare IPv6 address
        host, port = authority, ""
    # isdigit() alone takes "²" for a digit, and int() then fails on it.
    number = port.isascii() and port.isdigit()
    return host.rstrip(".").lower(), int(port) if number else default_port


class Destinations:
    """Parents by every name a client in `namespace` may use for them, and by address."""

    def __init__(self, services: Iterable[OutboundService], namespace: str) -> None:
        self._by_name: dict[str, OutboundService] = {}
        self._by_address: dict[tuple[str, int], OutboundService] = {}
        # The authorities requests arrive with, as found: parsed once, not per request.
        self._authorities: dict[str, tuple[OutboundService, int]] = {}
        for service in services:
            for name in self._names(service, namespace):
                self._by_name.setdefault(name, service)
            for ip in service.cluster_ips:
                for port in service.ports:
                    self._by_address[(ip, port.port)] = service

    @staticmethod
    def _names(service: OutboundService, namespace: str) -> list[str]:
        # A pod's resolv.conf search path lets it say `books`, `books.shop`, ... too.
        short = f"{service.name}.{service.namespace}"
        names = [service.authority.lower(), short, f"{short}.svc"]
        if service.namespace == namespace:
            names.append(service.name)
        return names

    def by_authority(self, authority: str) -> tuple[OutboundService, int] | None:
        found = self._authorities.get(authority)
        if found is None:
            host, port = split_authority(authority)
            service = self._by_name.get(host)
            if service is None:
                return None
            if len(self._authorities) >= AUTHORITY_CACHE_SIZE:  # clients choose Host
                self._authorities.clear()
            found = self._authorities[authority] = service, port
        return found

    def by_address(self, ip: str, port: int) -> OutboundService | None:
        return self._by_address.get((ip, port))

    def parent(
        self, authority: str, original_dst: tuple[str, int] | None
    ) -> tuple[OutboundService, int] | None:
        """The parent (and its port) a request is for: by authority, else by the
        address the client connected to."""
        found = self.by_authority(authority) if authority else None
        if found is None and original_dst is not None:
            service = self.by_address(*original_dst)
            if service is not None:
                found = service, original_dst[1]
        return found
