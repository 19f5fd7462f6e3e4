"""HTTP/1 as events: feed bytes (whole, split anywhere, pipelined), check what comes out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weft_proxy.protocols.http1 import (
    END,
    MAX_HEAD_BYTES,
    Body,
    EndOfMessage,
    Event,
    Framing,
    ProtocolError,
    RequestHead,
    RequestReader,
    ResponseHead,
    ResponseReader,
    Upgraded,
    chunk,
    forwarded_headers,
    request_head_bytes,
    response_head_bytes,
)

GET = b"GET /books/7?x=1 HTTP/1.1\r\nHost: books\r\nAccept: */*\r\n\r\n"
CHUNKED_POST = (
    b"POST /books HTTP/1.1\r\nHost: books\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
)


def feed_all(reader: RequestReader | ResponseReader, *parts: bytes) -> list[Event]:
    events: list[Event] = []
    for part in parts:
        events += reader.feed(part)
    return events


def body_of(events: list[Event]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, Body))


def test_a_get_is_one_head_and_the_end() -> None:
    head, end = RequestReader().feed(GET)
    assert isinstance(head, RequestHead)
    assert (head.method, head.target, head.version) == ("GET", b"/books/7?x=1", "1.1")
    assert head.headers == [(b"host", b"books"), (b"accept", b"*/*")]  # names lower-cased
    assert head.keep_alive
    assert not head.upgrade
    assert end == END


@pytest.mark.parametrize("cut", range(1, len(CHUNKED_POST)))
def test_input_split_anywhere_gives_the_same_message(cut: int) -> None:
    whole = RequestReader().feed(CHUNKED_POST)
    split = feed_all(RequestReader(), CHUNKED_POST[:cut], CHUNKED_POST[cut:])
    assert [type(e) for e in split if not isinstance(e, Body)] == [RequestHead, EndOfMessage]
    assert body_of(split) == body_of(whole) == b"hello world"


def test_pipelined_requests_come_out_in_order() -> None:
    events = RequestReader().feed(GET + CHUNKED_POST + GET)
    heads = [e for e in events if isinstance(e, RequestHead)]
    assert [h.method for h in heads] == ["GET", "POST", "GET"]
    assert sum(isinstance(e, EndOfMessage) for e in events) == 3


def test_http_1_0_without_keep_alive_closes() -> None:
    (head, _) = RequestReader().feed(b"GET / HTTP/1.0\r\n\r\n")
    assert isinstance(head, RequestHead)
    assert head.version == "1.0"
    assert not head.keep_alive


def test_websocket_upgrade_hands_over_the_rest_of_the_bytes() -> None:
    reader = RequestReader()
    request = b"GET /chat HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    events = reader.feed(request + b"\x81\x05hello")
    head = events[0]
    assert isinstance(head, RequestHead)
    assert head.upgrade
    assert events[1:] == [END]
    assert reader.feed(b"more") == []  # held until the server's answer decides
    assert reader.switched() == b"\x81\x05hellomore"
    assert reader.feed(b"more frames") == [Body(b"more frames")]


def test_connect_is_a_tunnel() -> None:
    reader = RequestReader()
    events = reader.feed(b"CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\nxyz")
    assert isinstance(events[0], RequestHead)
    assert events[0].method == "CONNECT"
    assert events[0].upgrade
    assert reader.switched() == b"xyz"


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"\x16\x03\x01\x00\x05hello",
    ],
)
def test_malformed_requests_are_400(garbage: bytes) -> None:
    with pytest.raises(ProtocolError) as error:
        RequestReader().feed(garbage)
    assert error.value.status == 400


def test_a_huge_head_is_431_even_when_it_trickles_in() -> None:
    reader = RequestReader()
    reader.feed(b"GET / HTTP/1.1\r\n")
    header_line = b"X-Filler: " + b"a" * 988 + b"\r\n"
    for _ in range(MAX_HEAD_BYTES // len(header_line)):
        reader.feed(header_line)
    with pytest.raises(ProtocolError) as error:
        reader.feed(header_line)
    assert error.value.status == 431


def test_a_large_body_is_not_a_large_head() -> None:
    body = b"x" * (MAX_HEAD_BYTES * 2)
    request = b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    assert body_of(RequestReader().feed(request)) == body


def test_a_huge_target_is_414() -> None:
    with pytest.raises(ProtocolError) as error:
        RequestReader().feed(b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n")
    assert error.value.status == 414


def test_responses_without_bodies_and_with_them() -> None:
    events = ResponseReader().feed(
        b"HTTP/1.1 204 No Content\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nbad\r\n0\r\n\r\n"
    )
    heads = [e for e in events if isinstance(e, ResponseHead)]
    assert [(h.status, h.reason) for h in heads] == [
        (204, b"No Content"),
        (200, b"OK"),
        (503, b"Service Unavailable"),
    ]
    assert body_of(events) == b"okbad"
    assert sum(isinstance(e, EndOfMessage) for e in events) == 3


def test_the_answer_to_head_has_no_body_whatever_its_length_says() -> None:
    reader = ResponseReader()
    reader.expect_no_body()
    events = feed_all(
        reader,
        b"HTTP/1.1 200 OK\r\nContent-Le",
        b"ngth: 1000\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    )
    assert [type(e) for e in events] == [
        ResponseHead,
        EndOfMessage,
        ResponseHead,
        Body,
        EndOfMessage,
    ]
    assert body_of(events) == b"ok"


def test_switching_protocols_is_an_upgrade() -> None:
    reader = ResponseReader()
    reader.expect("GET", switch=True)  # a 101 nobody asked for is malformed
    events = reader.feed(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nws"
    )
    head = events[0]
    assert isinstance(head, ResponseHead)
    assert head.upgrade
    assert events[-1] == Upgraded(b"ws")


def test_hop_by_hop_headers_are_not_forwarded() -> None:
    headers = [  # as parsed: lower-case names
        (b"host", b"books"),
        (b"connection", b"keep-alive, X-Secret"),
        (b"x-secret", b"1"),
        (b"keep-alive", b"timeout=5"),
        (b"transfer-encoding", b"chunked"),
        (b"accept", b"*/*"),
    ]
    assert forwarded_headers(headers) == [(b"host", b"books"), (b"accept", b"*/*")]


def test_an_upgrade_passes_through_when_asked() -> None:
    headers = [(b"connection", b"Upgrade"), (b"upgrade", b"websocket")]
    assert forwarded_headers(headers, keep_upgrade=True) == [
        (b"Connection", b"upgrade"),
        (b"Upgrade", b"websocket"),
    ]


def test_written_heads_read_back() -> None:
    raw = request_head_bytes("PUT", b"/a", [(b"Host", b"x"), (b"Content-Length", b"3")])
    head, body, end = RequestReader().feed(raw + b"abc")
    assert isinstance(head, RequestHead)
    assert (head.method, head.target, head.headers[0]) == ("PUT", b"/a", (b"host", b"x"))
    assert body == Body(b"abc")
    assert end == END
    raw = response_head_bytes(200, b"OK", [(b"Transfer-Encoding", b"chunked")])
    events = ResponseReader().feed(raw + chunk(b"hi") + chunk(b"!") + b"0\r\n\r\n")
    assert body_of(events) == b"hi!"


def test_each_head_says_how_its_body_is_framed() -> None:
    def request(fields: bytes) -> RequestHead:
        head = RequestReader().feed(b"POST / HTTP/1.1\r\n" + fields + b"\r\n")[0]
        assert isinstance(head, RequestHead)
        return head

    assert (
        request(b"Content-Length: 12\r\n").framing,
        request(b"Content-Length: 12\r\n").length,
    ) == (
        Framing.LENGTH,
        12,
    )
    assert request(b"Transfer-Encoding: chunked\r\n").framing is Framing.CHUNKED
    assert request(b"").framing is Framing.NONE

    def response(status_line: bytes, fields: bytes = b"") -> ResponseHead:
        head = ResponseReader().feed(status_line + b"\r\n" + fields + b"\r\n")[0]
        assert isinstance(head, ResponseHead)
        return head

    assert response(b"HTTP/1.1 200 OK", b"Content-Length: 2\r\n").framing is Framing.LENGTH
    assert (
        response(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked\r\n").framing is Framing.CHUNKED
    )
    assert response(b"HTTP/1.1 200 OK").framing is Framing.UNTIL_CLOSE
    assert response(b"HTTP/1.1 204 No Content").framing is Framing.NONE
    assert response(b"HTTP/1.1 304 Not Modified", b"Content-Length: 9\r\n").framing is Framing.NONE


@given(st.binary(max_size=512), st.integers(min_value=0, max_value=512))
def test_any_bytes_give_events_or_a_protocol_error(data: bytes, cut: int) -> None:
    reader = RequestReader()
    status = None
    try:
        reader.feed(data[:cut])
        reader.feed(data[cut:])
    except ProtocolError as error:
        status = error.status
    assert status is None or 400 <= status < 500 or status in (501, 505)
