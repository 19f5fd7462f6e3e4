"""HTTP/1 as events, the cases a proxy must get right (issue 18): trailers, protocol
switches asked for and refused, strictness, and input past the end of a message. Bytes
in, events out; no sockets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weft_proxy.protocols.http1 import (
    END,
    Body,
    EndOfMessage,
    Event,
    Framing,
    ProtocolError,
    RequestHead,
    RequestReader,
    ResponseHead,
    ResponseReader,
    Trailers,
    Upgraded,
    last_chunk,
)


def heads(events: list[Event]) -> list[RequestHead | ResponseHead]:
    return [e for e in events if isinstance(e, RequestHead | ResponseHead)]


def body_of(events: list[Event]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, Body))


# --- trailers --------------------------------------------------------------------------------


def test_trailers_of_a_chunked_request_come_before_its_end() -> None:
    events = RequestReader().feed(
        b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\ndata\r\n0\r\nX-Sum: 42\r\nX-Other: b\r\n\r\n"
        b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    assert [type(e) for e in events] == [
        RequestHead,
        Body,
        Trailers,
        EndOfMessage,
        RequestHead,
        EndOfMessage,
    ]
    assert events[2] == Trailers([(b"x-sum", b"42"), (b"x-other", b"b")])


def test_trailers_of_a_chunked_response_and_their_writing() -> None:
    events = ResponseReader().feed(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\nX-Checksum: 1\r\n\r\n"
    )
    trailers = next(e for e in events if isinstance(e, Trailers))
    assert trailers.headers == [(b"x-checksum", b"1")]
    assert events[-1] == END
    # Framing and routing fields are never forwarded as trailers.
    written = last_chunk([(b"x-checksum", b"1"), (b"content-length", b"9"), (b"host", b"x")])
    assert written == b"0\r\nx-checksum: 1\r\n\r\n"
    assert last_chunk(None) == last_chunk([(b"transfer-encoding", b"x")]) == b"0\r\n\r\n"


def test_huge_trailers_are_refused() -> None:
    reader = RequestReader()
    reader.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n")
    for _ in range(64):
        reader.feed(b"X-Filler: " + b"a" * 1000 + b"\r\n")
    with pytest.raises(ProtocolError) as error:
        reader.feed(b"X-Filler: " + b"a" * 1000 + b"\r\n")
    assert error.value.status == 431


# --- strictness ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400),
    ],
)
def test_requests_the_rfc_refuses(request_bytes: bytes, status: int) -> None:
    with pytest.raises(ProtocolError) as error:
        RequestReader().feed(request_bytes)
    assert error.value.status == status


@pytest.mark.parametrize(
    "response_bytes",
    [
        b"HTTP/1.1 099 Low\r\n\r\n",
        b"HTTP/1.1 600 High\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: ws\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
    ],
)
def test_malformed_responses_are_502(response_bytes: bytes) -> None:
    with pytest.raises(ProtocolError) as error:
        ResponseReader().feed(response_bytes)  # (the 101: no switch was asked for)
    assert error.value.status == 502


# --- input past the end of a message -------------------------------------------------------------


def test_messages_before_bad_bytes_are_delivered_and_the_error_comes_next() -> None:
    reader = RequestReader()
    events = reader.feed(
        b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\nBad\r\n\r\n"
    )
    assert [h.target for h in heads(events)] == [b"/a"]  # /b is broken: it never surfaces
    assert events[-1] == END
    assert reader.failed is not None
    with pytest.raises(ProtocolError):
        reader.feed(b"")


def test_a_message_broken_mid_body_raises_at_once() -> None:
    with pytest.raises(ProtocolError):
        RequestReader().feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")


def test_bytes_past_a_response_leave_the_connection_off_a_boundary() -> None:
    reader = ResponseReader()
    assert reader.between_messages
    reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert reader.between_messages
    reader.feed(b"HTTP/1.1 200")  # more than was asked for: the start of another
    assert not reader.between_messages
    garbled = ResponseReader()
    garbled.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA")
    assert not garbled.between_messages
    assert garbled.failed is not None


# --- protocol switches -----------------------------------------------------------------------


WEBSOCKET = b"GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"


def test_a_refused_switch_lets_http1_go_on_with_what_followed() -> None:
    reader = RequestReader()
    events = reader.feed(WEBSOCKET + b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
    assert heads(events)[0].upgrade
    assert len(heads(events)) == 1  # the rest is held until the server answers
    after = reader.refused()
    assert [h.target for h in heads(after)] == [b"/next"]
    assert reader.refused() == []  # once


@pytest.mark.parametrize(
    "switch",
    [
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    ],
)
def test_switches_not_passed_on_leave_a_plain_request(switch: bytes) -> None:
    events = RequestReader().feed(switch + b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
    first, second = heads(events)
    assert not first.upgrade
    assert second.target == b"/next"


def test_an_upgrade_with_a_body_is_read_as_a_plain_request_body_included() -> None:
    events = RequestReader().feed(
        b"POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
        b"Content-Length: 5\r\n\r\nhello"
        b"POST /chunked HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    assert [(h.target, h.upgrade) for h in heads(events)] == [
        (b"/", False),
        (b"/chunked", False),
        (b"/next", False),
    ]
    assert body_of(events) == b"helloabc"
    assert sum(isinstance(e, EndOfMessage) for e in events) == 3


def test_a_switch_answers_only_a_request_that_asked() -> None:
    reader = ResponseReader()
    reader.expect("GET", switch=True)
    events = reader.feed(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nws"
    )
    assert heads(events)[0].framing is Framing.TUNNEL
    assert events[-1] == Upgraded(b"ws")
    assert reader.feed(b"frames") == [Body(b"frames")]


def test_connect_opens_a_tunnel_on_2xx_only() -> None:
    tunnel = ResponseReader()
    tunnel.expect("CONNECT")
    events = tunnel.feed(b"HTTP/1.1 200 Connection Established\r\n\r\n\x16\x03\x01")
    assert heads(events)[0].upgrade
    assert events[-1] == Upgraded(b"\x16\x03\x01")
    refused = ResponseReader()
    refused.expect("CONNECT")
    events = refused.feed(b"HTTP/1.1 407 Proxy Auth\r\nContent-Length: 2\r\n\r\nno")
    assert not heads(events)[0].upgrade
    assert body_of(events) == b"no"
    assert events[-1] == END


def test_interim_responses_before_the_answer_to_head() -> None:
    reader = ResponseReader()
    reader.expect("HEAD")
    events = reader.feed(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
        b"HTTP/1.1 204 No Content\r\n\r\n"
    )
    assert [(h.status, h.framing) for h in heads(events)] == [
        (100, Framing.NONE),
        (200, Framing.NONE),
        (204, Framing.NONE),
    ]
    assert heads(events)[1].length == 5  # what GET would have had
    assert body_of(events) == b""


@given(st.binary(max_size=512), st.integers(min_value=0, max_value=512))
def test_any_bytes_from_an_upstream_give_events_or_a_502(data: bytes, cut: int) -> None:
    reader = ResponseReader()
    reader.expect("GET", switch=True)
    status = None
    try:
        reader.feed(b"HTTP/1.1 " + data[:cut])
        reader.feed(data[cut:])
    except ProtocolError as error:
        status = error.status
    assert status in (None, 502)


SPLIT_ME = (
    WEBSOCKET.replace(b"Upgrade: websocket", b"Upgrade: h2c")
    + b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"4\r\ndata\r\n0\r\nX-Sum: 42\r\n\r\n"
)


@pytest.mark.parametrize("cut", range(1, len(SPLIT_ME), 7))
def test_trailers_and_dropped_switches_read_the_same_split_anywhere(cut: int) -> None:
    def shape(events: list[Event]) -> list[object]:
        return [
            (type(e).__name__, getattr(e, "target", None), getattr(e, "headers", None))
            for e in events
            if not isinstance(e, Body)
        ]

    whole = RequestReader().feed(SPLIT_ME)
    reader = RequestReader()
    split = reader.feed(SPLIT_ME[:cut]) + reader.feed(SPLIT_ME[cut:])
    assert shape(split) == shape(whole)
    assert body_of(split) == body_of(whole) == b"data"
