"""The header a meshed client sends first inside mTLS for opaque TCP, naming the port of
the server pod it is for.

Opaque ports skip detection on the inbound side, so the inbound proxy could not tell a
meshed client's ClientHello from the first bytes of a server-first protocol without
waiting. Meshed opaque traffic therefore goes to the inbound proxy's own port, where
detection always runs, and this header says where it was going (as Linkerd's transport
header does).
"""

from __future__ import annotations

import struct
from typing import Final

MAGIC: Final = b"WFT1"
SIZE: Final = len(MAGIC) + 2


class BadHeader(ValueError):
    pass


def encode(port: int) -> bytes:
    return MAGIC + struct.pack("!H", port)


def decode(data: bytes) -> int:
    """The target port of a complete header (`SIZE` bytes)."""
    if len(data) != SIZE or not data.startswith(MAGIC):
        raise BadHeader(f"not a Weft transport header: {data[:SIZE]!r}")
    port: int = struct.unpack_from("!H", data, len(MAGIC))[0]
    if port == 0:
        raise BadHeader("transport header names port 0")
    return port
