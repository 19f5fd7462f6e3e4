"""The ClientHello parser: real hellos (from OpenSSL) re-framed, and hand-built broken ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weft_proxy.protocols.tls_client_hello import (
    MAX_CLIENT_HELLO_BYTES,
    ClientHello,
    Incomplete,
    parse_client_hello,
)

SNI = "web.emojivoto.svc.cluster.local"
EXPECTED = ClientHello(server_name=SNI, alpn_protocols=("h2", "http/1.1"))


def vector(length_size: int, data: bytes) -> bytes:
    return len(data).to_bytes(length_size) + data


def extension(extension_type: int, data: bytes) -> bytes:
    return extension_type.to_bytes(2) + vector(2, data)


def server_name(*names: tuple[int, bytes]) -> bytes:
    return extension(0, vector(2, b"".join(bytes([kind]) + vector(2, n) for kind, n in names)))


def alpn(*protocols: bytes) -> bytes:
    return extension(16, vector(2, b"".join(vector(1, p) for p in protocols)))


def records(handshake: bytes, fragment_size: int = 1 << 14, version: bytes = b"\x03\x01") -> bytes:
    chunks = [handshake[i : i + fragment_size] for i in range(0, len(handshake), fragment_size)]
    return b"".join(b"\x16" + version + vector(2, chunk) for chunk in chunks)


def hand_built_handshake(
    extensions: bytes | None = server_name((0, SNI.encode())) + alpn(b"h2", b"http/1.1"),
    *,
    legacy_version: bytes = b"\x03\x03",
    session_id: bytes = bytes(32),
    cipher_suites: bytes = b"\x13\x01\x13\x02",
    compression_methods: bytes = b"\x00",
    trailing: bytes = b"",
    handshake_type: int = 1,
) -> bytes:
    body = (
        legacy_version
        + bytes(range(32))  # random
        + vector(1, session_id)
        + vector(2, cipher_suites)
        + vector(1, compression_methods)
        + (b"" if extensions is None else vector(2, extensions))
        + trailing
    )
    return bytes([handshake_type]) + vector(3, body)


def hand_built_hello(*args: Any, **kwargs: Any) -> bytes:
    return records(hand_built_handshake(*args, **kwargs))


def reframe(hello: bytes, fragment_size: int) -> bytes:
    """The same ClientHello, its handshake message split over records of `fragment_size`."""
    handshake = hello[5 : 5 + int.from_bytes(hello[3:5])]
    return records(handshake, fragment_size, version=hello[1:3])


def test_hand_built_hello_parses() -> None:
    assert parse_client_hello(hand_built_hello()) == EXPECTED


@pytest.mark.parametrize("fragment_size", [1, 7, 100, 512])
def test_client_hello_split_across_records(
    client_hello: Callable[..., bytes], fragment_size: int
) -> None:
    split = reframe(client_hello(), fragment_size)
    assert parse_client_hello(split) == EXPECTED
    # Every prefix waits, naming a length no greater than where the answer comes.
    for length in range(len(split)):
        outcome = parse_client_hello(split[:length])
        assert isinstance(outcome, Incomplete), length
        assert length < outcome.at_least <= len(split)


@pytest.mark.parametrize(
    ("hello", "expected"),
    [
        pytest.param(
            hand_built_hello(None, legacy_version=b"\x03\x01"),
            ClientHello(None, ()),
            id="no-extensions-tls-1.0",
        ),
        pytest.param(
            hand_built_hello(
                extension(0x0A0A, b"") + server_name((0, b"a.b")) + extension(21, b"")
            ),
            ClientHello("a.b", ()),
            id="grease-and-padding-skipped",
        ),
        pytest.param(
            hand_built_hello(alpn(b"h2", b"\xff\x00")),
            ClientHello(None, ("h2", "\xff\x00")),
            id="alpn-ids-are-opaque-bytes",
        ),
        pytest.param(hand_built_hello(session_id=b""), EXPECTED, id="empty-session-id"),
    ],
)
def test_well_formed_variants(hello: bytes, expected: ClientHello) -> None:
    assert parse_client_hello(hello) == expected


def test_records_after_the_client_hello_are_ignored(client_hello: Callable[..., bytes]) -> None:
    change_cipher_spec = b"\x14\x03\x03\x00\x01\x01"  # TLS 1.3 middlebox compatibility
    assert parse_client_hello(client_hello() + change_cipher_spec) == EXPECTED


MALFORMED = [
    pytest.param(hand_built_hello(handshake_type=2), id="server-hello"),
    pytest.param(hand_built_hello(legacy_version=b"\x02\x00"), id="sslv2-version"),
    pytest.param(hand_built_hello(session_id=bytes(33)), id="session-id-too-long"),
    pytest.param(hand_built_hello(cipher_suites=b""), id="no-cipher-suites"),
    pytest.param(hand_built_hello(cipher_suites=b"\x13\x01\x13"), id="odd-cipher-suites"),
    pytest.param(hand_built_hello(compression_methods=b""), id="no-compression-methods"),
    pytest.param(hand_built_hello(trailing=b"\x00"), id="bytes-after-extensions"),
    pytest.param(hand_built_hello(b"\x00"), id="extension-header-cut"),
    pytest.param(hand_built_hello(b"\x00\x00\x00\x05ab"), id="extension-overruns"),
    pytest.param(
        hand_built_hello(server_name((0, b"a")) + server_name((0, b"b"))), id="duplicate-sni"
    ),
    pytest.param(hand_built_hello(server_name()), id="sni-empty-list"),
    pytest.param(hand_built_hello(server_name((1, b"a"))), id="sni-unknown-name-type"),
    pytest.param(hand_built_hello(server_name((0, b"a"), (0, b"b"))), id="sni-two-host-names"),
    pytest.param(hand_built_hello(server_name((0, b""))), id="sni-empty-host-name"),
    pytest.param(hand_built_hello(server_name((0, "café.example".encode()))), id="sni-non-ascii"),
    pytest.param(hand_built_hello(server_name((0, b"a b"))), id="sni-space"),
    pytest.param(hand_built_hello(extension(0, vector(2, b"\x00\x00\x01a") + b"x")), id="sni-tail"),
    pytest.param(hand_built_hello(alpn()), id="alpn-empty-list"),
    pytest.param(hand_built_hello(alpn(b"h2", b"")), id="alpn-empty-id"),
    pytest.param(b"\x16\x03\x01\x00\x00", id="empty-record"),
    pytest.param(b"\x16\x03\x01\x40\x01", id="record-over-16-KiB"),
    pytest.param(b"\x15\x03\x01\x00\x02\x02\x28", id="alert-record"),
]


@pytest.mark.parametrize("hello", MALFORMED)
def test_malformed_client_hello_is_rejected(hello: bytes) -> None:
    assert parse_client_hello(hello) is None


@pytest.mark.parametrize("hello", MALFORMED)
def test_malformed_client_hello_is_rejected_early(hello: bytes) -> None:
    """Once a prefix shows the fault, the rest is not waited for."""
    faulty = next(n for n in range(len(hello) + 1) if parse_client_hello(hello[:n]) is None)
    for length in range(faulty, len(hello) + 1):
        assert parse_client_hello(hello[:length]) is None


def test_non_handshake_record_inside_a_split_hello(client_hello: Callable[..., bytes]) -> None:
    split = reframe(client_hello(), 100)
    assert parse_client_hello(split[:105] + b"\x17" + split[106:]) is None


def test_client_hello_must_fit_the_peek_limit(client_hello: Callable[..., bytes]) -> None:
    padding = extension(21, bytes(MAX_CLIENT_HELLO_BYTES - 200))
    assert parse_client_hello(hand_built_hello(padding)) == ClientHello(None, ())
    largest_padding = extension(21, bytes(0xFFFF - 4))  # fills the extensions vector
    assert parse_client_hello(hand_built_hello(largest_padding)) is None
    # Tiny fragments add 5 bytes of record header each: the wire size is what counts.
    assert parse_client_hello(reframe(client_hello(), 1)) == EXPECTED
    tiny_records = records(hand_built_handshake(padding), fragment_size=1)
    assert isinstance(parse_client_hello(tiny_records[:60_000]), Incomplete)
    assert parse_client_hello(tiny_records[:MAX_CLIENT_HELLO_BYTES]) is None


@given(
    position=st.integers(min_value=0, max_value=511),
    value=st.integers(min_value=0, max_value=255),
)
def test_a_corrupted_hello_never_raises(
    client_hello: Callable[..., bytes], position: int, value: int
) -> None:
    hello = bytearray(client_hello())
    hello[position] = value
    assert isinstance(parse_client_hello(bytes(hello)), ClientHello | None)
