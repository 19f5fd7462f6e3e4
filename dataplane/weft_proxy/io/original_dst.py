"""Where a connection redirected by iptables REDIRECT was really going (SO_ORIGINAL_DST)."""

from __future__ import annotations

import socket
import struct

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h; the same number at SOL_IPV6 for IPv6
_SOL_IPV6 = 41


def original_destination(sock: socket.socket) -> tuple[str, int] | None:
    """The pre-NAT destination, or None when the connection was not redirected."""
    try:
        if sock.family == socket.AF_INET6:
            raw = sock.getsockopt(_SOL_IPV6, SO_ORIGINAL_DST, 28)
            port = struct.unpack_from("!H", raw, 2)[0]
            address = socket.inet_ntop(socket.AF_INET6, raw[8:24])
        else:
            raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
            port = struct.unpack_from("!H", raw, 2)[0]
            address = socket.inet_ntop(socket.AF_INET, raw[4:8])
    except OSError:  # ENOENT: no conntrack entry, i.e. not redirected
        return None
    if (address, port) == sock.getsockname()[:2]:
        return None
    return address, port
