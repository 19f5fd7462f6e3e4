"""detect(): the first bytes of a connection in, a protocol (or a wish for more bytes) out."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Callable

import h2.config
import h2.connection
import pytest

from weft_proxy.protocols.detect import (
    DETECT_TIMEOUT_S,
    HTTP2_PREFACE,
    MAX_DETECT_BYTES,
    MAX_REQUEST_LINE_BYTES,
    Detected,
    NeedMore,
    Protocol,
    detect,
)

OPAQUE = Detected(Protocol.OPAQUE)
TLS_SNI_ALPN = Detected(
    Protocol.TLS, sni="web.emojivoto.svc.cluster.local", alpn=("h2", "http/1.1")
)


def h2_client_preamble() -> bytes:
    """What an h2 client sends first: the preface, then its SETTINGS frame."""
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    connection.initiate_connection()
    return connection.data_to_send()


def assert_decided_at(data: bytes, expected: Detected, decided_at: int) -> None:
    """Feed `data` byte by byte: NeedMore (with an honest hint) until `decided_at`, then
    `expected` for every longer prefix."""
    for length in range(decided_at):
        outcome = detect(data[:length])
        assert isinstance(outcome, NeedMore), (length, outcome)
        assert length < outcome.at_least <= decided_at
        assert detect(data[:length], final=True) == OPAQUE
    for length in range(decided_at, len(data) + 1):
        assert detect(data[:length]) == expected, length
        assert detect(data[:length], final=True) == expected, length


# --- TLS ---


def test_tls_client_hello_gives_sni_and_alpn(client_hello: Callable[..., bytes]) -> None:
    hello = client_hello()
    assert detect(hello) == TLS_SNI_ALPN
    assert_decided_at(hello, TLS_SNI_ALPN, decided_at=len(hello))


def test_tls_client_hello_without_sni(client_hello: Callable[..., bytes]) -> None:
    assert detect(client_hello(None)) == Detected(Protocol.TLS, sni=None, alpn=("h2", "http/1.1"))


def test_tls_client_hello_to_an_ip_address_has_no_sni(client_hello: Callable[..., bytes]) -> None:
    assert detect(client_hello("10.42.0.7")) == Detected(Protocol.TLS, alpn=("h2", "http/1.1"))


def test_tls_client_hello_without_alpn(client_hello: Callable[..., bytes]) -> None:
    assert detect(client_hello(alpn=())) == Detected(
        Protocol.TLS, sni="web.emojivoto.svc.cluster.local"
    )


def test_tls_1_2_client_hello(client_hello: Callable[..., bytes]) -> None:
    hello = client_hello(max_version=ssl.TLSVersion.TLSv1_2)
    assert detect(hello) == TLS_SNI_ALPN


def test_tls_sni_is_lower_cased(client_hello: Callable[..., bytes]) -> None:
    assert detect(client_hello("Web.Emojivoto.SVC.cluster.local")) == TLS_SNI_ALPN


def test_tls_bytes_after_the_client_hello_are_ignored(client_hello: Callable[..., bytes]) -> None:
    assert detect(client_hello() + b"\x17\x03\x03\x00\x10" + bytes(16)) == TLS_SNI_ALPN


# --- HTTP/2 ---


def test_h2_prior_knowledge_preface_from_the_h2_library() -> None:
    preamble = h2_client_preamble()
    assert preamble.startswith(HTTP2_PREFACE)
    assert_decided_at(preamble, Detected(Protocol.HTTP2), decided_at=len(HTTP2_PREFACE))


def test_h2_preface_with_a_wrong_tail_is_opaque() -> None:
    assert detect(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n") == OPAQUE


# --- HTTP/1 ---

POST_BODY = b'{"sku": "emoji-42", "quantity": 3}'

HTTP1_REQUESTS = [
    pytest.param(
        b"GET /api/list HTTP/1.1\r\nHost: web-svc.emojivoto:80\r\nAccept: */*\r\n\r\n",
        Detected(Protocol.HTTP1, method="GET", target="/api/list", version="1.1"),
        id="get",
    ),
    pytest.param(
        b"POST /api/vote?choice=:rocket: HTTP/1.1\r\nHost: web\r\nContent-Type: application/json"
        b"\r\nContent-Length: %d\r\n\r\n%s" % (len(POST_BODY), POST_BODY),
        Detected(Protocol.HTTP1, method="POST", target="/api/vote?choice=:rocket:", version="1.1"),
        id="post-with-body",
    ),
    pytest.param(
        b"GET / HTTP/1.0\r\n\r\n",
        Detected(Protocol.HTTP1, method="GET", target="/", version="1.0"),
        id="http-1.0",
    ),
    pytest.param(
        b"GET http://web.emojivoto.svc.cluster.local/ HTTP/1.1\r\n\r\n",
        Detected(
            Protocol.HTTP1,
            method="GET",
            target="http://web.emojivoto.svc.cluster.local/",
            version="1.1",
        ),
        id="absolute-form",
    ),
    pytest.param(
        b"CONNECT web.emojivoto:443 HTTP/1.1\r\nHost: web.emojivoto:443\r\n\r\n",
        Detected(Protocol.HTTP1, method="CONNECT", target="web.emojivoto:443", version="1.1"),
        id="authority-form",
    ),
    pytest.param(
        b"M-SEARCH * HTTP/1.1\r\n",
        Detected(Protocol.HTTP1, method="M-SEARCH", target="*", version="1.1"),
        id="extension-method-asterisk-form",
    ),
]


@pytest.mark.parametrize(("request_bytes", "expected"), HTTP1_REQUESTS)
def test_http1_request_line(request_bytes: bytes, expected: Detected) -> None:
    line_end = request_bytes.index(b"\r\n") + 2
    assert_decided_at(request_bytes, expected, decided_at=line_end)


def test_http1_request_line_up_to_the_limit() -> None:
    prefix, suffix = b"GET /", b" HTTP/1.1\r\n"
    fits = prefix + b"a" * (MAX_REQUEST_LINE_BYTES - len(prefix) - len(suffix)) + suffix
    assert len(fits) == MAX_REQUEST_LINE_BYTES
    assert detect(fits) == Detected(
        Protocol.HTTP1, method="GET", target=fits[4:-11].decode(), version="1.1"
    )
    too_long = fits.replace(b"/", b"/a", 1)
    assert detect(too_long) == OPAQUE
    assert detect(too_long[:MAX_REQUEST_LINE_BYTES]) == OPAQUE  # no need to wait for the end


# --- opaque, and waiting ---


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x00\x00\x00\x08\x04\xd2\x16\x2f", id="postgres-ssl-request"),
        pytest.param(b"SSH-2.0-OpenSSH_9.6\r\n", id="ssh-banner"),
        pytest.param(b"*1\r\n$4\r\nPING\r\n", id="redis"),
        pytest.param(b"GET / HTTP/1.1\n", id="bare-lf"),
        pytest.param(b"GET / HTTP/1.2\r\n", id="http-1.2"),
        pytest.param(b"GET / HTTP/2\r\n", id="http-2-request-line"),
        pytest.param(b"get / http/1.1\r\n", id="lower-case-version"),
        pytest.param(b"GET  / HTTP/1.1\r\n", id="double-space"),
        pytest.param(b"GET /a b HTTP/1.1\r\n", id="space-in-target"),
        pytest.param(b"G(T / HTTP/1.1\r\n", id="method-not-a-token"),
        pytest.param(b" / HTTP/1.1\r\n", id="no-method"),
        pytest.param(b"\r\n", id="empty-line"),
        pytest.param(b"\x16\x03\x01\x02\x00\x02", id="tls-server-hello"),
        pytest.param(b"\x16\x03\x04", id="tls-bad-record-version"),
        pytest.param(b"\x17\x03\x03\x00\x20", id="tls-application-data"),
        pytest.param(b"\x16\x03\x01\x40\x00\x01\x01\x00\x00", id="tls-client-hello-too-big"),
    ],
)
def test_opaque_as_soon_as_nothing_else_fits(data: bytes) -> None:
    assert detect(data) == OPAQUE


@pytest.mark.parametrize(
    ("data", "at_least"),
    [
        (b"", 1),
        (b"GE", 3),
        (b"GET /x HTTP/1.1\r", 17),
        (b"PRI * HTTP/2.0\r", len(HTTP2_PREFACE)),  # HTTP/2.0 rules out HTTP/1 already
        (b"\x16\x03\x01", 5),
        (b"\x16\x03\x01\x02\x00", 5 + 0x200),
        (b"\x16\x03\x01\x02\x00\x01\x00\x00\xfc", 5 + 4 + 0xFC),  # message ends before record
    ],
)
def test_need_more_while_a_protocol_still_fits(data: bytes, at_least: int) -> None:
    assert detect(data) == NeedMore(at_least)
    assert detect(data, final=True) == OPAQUE


def test_final_decides_with_what_is_there(client_hello: Callable[..., bytes]) -> None:
    assert detect(b"", final=True) == OPAQUE
    assert detect(b"GET / HTTP/1.1", final=True) == OPAQUE
    assert detect(client_hello(), final=True) == TLS_SNI_ALPN
    assert detect(HTTP2_PREFACE, final=True) == Detected(Protocol.HTTP2)


def test_constants_for_the_io_layer() -> None:
    assert DETECT_TIMEOUT_S == 10.0
    assert MAX_DETECT_BYTES == 64 * 1024


def test_detected_is_a_frozen_value() -> None:
    detected = Detected(Protocol.HTTP2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        detected.sni = "web"  # type: ignore[misc]
    assert not hasattr(detected, "__dict__")
    assert detected == Detected(Protocol.HTTP2)
    assert hash(detected) == hash(Detected(Protocol.HTTP2))
