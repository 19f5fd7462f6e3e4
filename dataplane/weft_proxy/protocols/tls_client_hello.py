"""Read the SNI and ALPN of a TLS ClientHello from the first bytes of a connection.

Only as much of TLS as that needs: the record layer (RFC 8446 5.1), the ClientHello
(RFC 8446 4.1.2) and two extensions, server_name (RFC 6066 3) and ALPN (RFC 7301 3.1).
Structure is checked strictly (every length must nest exactly), so that bytes which merely
start with 0x16 are not taken for TLS; contents the proxy does not need are skipped.

A ClientHello may be fragmented over several handshake records; they are reassembled.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Final

MAX_CLIENT_HELLO_BYTES: Final = 64 * 1024
"""Every record of the ClientHello must end within this many bytes from the start.

Real ClientHellos take one record of a few hundred bytes to ~2 KiB (post-quantum key
shares); anything bigger is not what a mesh client sends, and buffering it costs memory.
"""

_RECORD_HEADER_BYTES = 5
# Allowed values of a record's first three bytes: content type handshake, then the legacy
# record version, 3.0 (SSL 3) to 3.3 (TLS 1.3 keeps 3.1 or 3.3 on the wire).
_RECORD_HEADER_START = (frozenset({0x16}), frozenset({0x03}), frozenset(range(0x04)))
_MAX_RECORD_FRAGMENT_BYTES = 1 << 14
_HANDSHAKE_HEADER_BYTES = 4
_HANDSHAKE_TYPE_CLIENT_HELLO = 0x01
_MAX_SESSION_ID_BYTES = 32
_RANDOM_BYTES = 32
_EXTENSION_SERVER_NAME = 0
_EXTENSION_ALPN = 16
_NAME_TYPE_HOST_NAME = 0
_HOST_NAME = re.compile(rb"[\x21-\x7e]+")  # visible ASCII; DNS syntax is the caller's concern


@dataclass(frozen=True, slots=True)
class ClientHello:
    """What the proxy routes on: the SNI host name (lower-cased) and the offered ALPN ids."""

    server_name: str | None
    alpn_protocols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Incomplete:
    """The bytes so far start a well-formed ClientHello; no answer before `at_least` bytes."""

    at_least: int


def parse_client_hello(data: bytes) -> ClientHello | Incomplete | None:
    """Parse the ClientHello at the start of `data`; None if it is not one, or malformed.

    Bytes after the ClientHello are ignored. A prefix that already breaks the structure
    gives None at once, so non-TLS bytes are not buffered waiting for a record to end.
    """
    try:
        return _parse_records(data)
    except _Malformed:
        return None


class _Malformed(Exception):
    """The bytes cannot be (the start of) a ClientHello."""


class _EndOfData(Exception):
    """The bytes so far are consistent, but end before the structure does."""


def _parse_records(data: bytes) -> ClientHello | Incomplete:
    handshake = bytearray()
    record_start = 0
    while True:
        header = data[record_start : record_start + _RECORD_HEADER_BYTES]
        _check_record_header(header)
        fragment_start = record_start + _RECORD_HEADER_BYTES
        if len(header) < _RECORD_HEADER_BYTES:
            return _incomplete(bytes(handshake), at_least=fragment_start)
        fragment_length = int.from_bytes(header[3:5])
        # Zero-length handshake fragments are forbidden, which also bounds this loop.
        if not 0 < fragment_length <= _MAX_RECORD_FRAGMENT_BYTES:
            raise _Malformed
        record_end = fragment_start + fragment_length
        handshake_before = len(handshake)
        handshake += data[fragment_start:record_end]
        message_end = _handshake_message_end(handshake)
        if message_end is not None and len(handshake) >= message_end:
            return _parse_client_hello_message(bytes(handshake), message_end)
        if len(data) < record_end:
            at_least = record_end
            if message_end is not None:  # the message may end before its record does
                at_least = min(at_least, fragment_start + message_end - handshake_before)
            return _incomplete(bytes(handshake), at_least=at_least)
        record_start = record_end


def _check_record_header(header: bytes) -> None:
    """Check as much of a record header as has arrived."""
    for byte, allowed in zip(header, _RECORD_HEADER_START, strict=False):
        if byte not in allowed:
            raise _Malformed


def _handshake_message_end(handshake: bytes | bytearray) -> int | None:
    """Where the first handshake message ends, once its 4-byte header is in; checks its type."""
    if handshake and handshake[0] != _HANDSHAKE_TYPE_CLIENT_HELLO:
        raise _Malformed
    if len(handshake) < _HANDSHAKE_HEADER_BYTES:
        return None
    message_end = _HANDSHAKE_HEADER_BYTES + int.from_bytes(handshake[1:4])
    if message_end > MAX_CLIENT_HELLO_BYTES:
        raise _Malformed
    return message_end


def _incomplete(handshake: bytes, *, at_least: int) -> Incomplete:
    if at_least > MAX_CLIENT_HELLO_BYTES:
        raise _Malformed
    message_end = _handshake_message_end(handshake)
    if message_end is not None:
        # Parse what is there only to reject a broken ClientHello before it is complete.
        with contextlib.suppress(_EndOfData):
            _parse_client_hello_message(handshake, message_end)
    return Incomplete(at_least)


class _Reader:
    """A cursor over `data[pos:end]`, where `end` may lie past the bytes received so far.

    Reading past `end` means the structure is malformed; reading past the data received
    means it is incomplete. Nested vectors share the data and narrow `end`.
    """

    __slots__ = ("_data", "_end", "_pos")

    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self._data = data
        self._pos = pos
        self._end = end

    def __len__(self) -> int:
        return self._end - self._pos

    def at_end(self) -> bool:
        return self._pos == self._end

    def skip(self, count: int) -> None:
        if count > len(self):
            raise _Malformed
        self._pos += count

    def take(self, count: int) -> bytes:
        start = self._pos
        self.skip(count)
        if self._pos > len(self._data):
            raise _EndOfData
        return self._data[start : self._pos]

    def rest(self) -> bytes:
        return self.take(len(self))

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size))

    def vector(self, length_size: int) -> _Reader:
        """The next `length_size`-byte length-prefixed vector, as a reader of its own."""
        length = self.uint(length_size)
        start = self._pos
        self.skip(length)
        return _Reader(self._data, start, start + length)

    def expect_end(self) -> None:
        if not self.at_end():
            raise _Malformed


def _parse_client_hello_message(handshake: bytes, message_end: int) -> ClientHello:
    body = _Reader(handshake, _HANDSHAKE_HEADER_BYTES, message_end)
    if body.uint(1) != 0x03:  # legacy_version major; the minor varies with the client
        raise _Malformed
    body.skip(1 + _RANDOM_BYTES)
    if len(body.vector(1)) > _MAX_SESSION_ID_BYTES:
        raise _Malformed
    cipher_suites = len(body.vector(2))
    if cipher_suites == 0 or cipher_suites % 2:
        raise _Malformed
    if len(body.vector(1)) == 0:  # compression_methods
        raise _Malformed
    if body.at_end():  # extensions are optional before TLS 1.3
        return ClientHello(server_name=None, alpn_protocols=())
    extensions = body.vector(2)
    body.expect_end()
    return _parse_extensions(extensions)


def _parse_extensions(extensions: _Reader) -> ClientHello:
    server_name: str | None = None
    alpn_protocols: tuple[str, ...] = ()
    seen: set[int] = set()
    while not extensions.at_end():
        extension_type = extensions.uint(2)
        extension_data = extensions.vector(2)
        if extension_type in seen:  # RFC 8446 4.2: at most one of each type
            raise _Malformed
        seen.add(extension_type)
        if extension_type == _EXTENSION_SERVER_NAME:
            server_name = _parse_server_name(extension_data)
        elif extension_type == _EXTENSION_ALPN:
            alpn_protocols = _parse_alpn(extension_data)
    return ClientHello(server_name=server_name, alpn_protocols=alpn_protocols)


def _parse_server_name(extension_data: _Reader) -> str:
    names = extension_data.vector(2)
    extension_data.expect_end()
    # host_name is the only NameType and may appear once, so the list holds exactly one name
    # (the length of any other type could not even be known).
    if names.uint(1) != _NAME_TYPE_HOST_NAME:
        raise _Malformed
    raw = names.vector(2).rest()
    names.expect_end()
    if not _HOST_NAME.fullmatch(raw):
        raise _Malformed
    return raw.decode("ascii").lower()  # DNS names compare case-insensitively


def _parse_alpn(extension_data: _Reader) -> tuple[str, ...]:
    names = extension_data.vector(2)
    extension_data.expect_end()
    if names.at_end():
        raise _Malformed
    protocols: list[str] = []
    while not names.at_end():
        raw = names.vector(1).rest()
        if not raw:
            raise _Malformed
        # ALPN ids are opaque bytes; latin-1 maps each byte to one character, losslessly.
        protocols.append(raw.decode("latin-1"))
    return tuple(protocols)
