"""The sans-IO HTTP/2 wrapper: a client and a server `Connection` wired back to back,
bytes fed by hand, events checked; and the gRPC and HTTP/1-to-HTTP/2 helpers."""

from __future__ import annotations

import pytest

from weft_proxy.errors import h2_error_response
from weft_proxy.protocols import grpc
from weft_proxy.protocols.http2 import (
    STREAM_WINDOW,
    Connection,
    Data,
    ErrorCode,
    Event,
    GoAway,
    ProtocolError,
    Request,
    Reset,
    Response,
    StreamClosed,
    Trailers,
    WindowOpened,
)

GET = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a"), (b":path", b"/")]
POST = [(b":method", b"POST"), (b":scheme", b"http"), (b":authority", b"a"), (b":path", b"/p")]


def send(source: Connection, target: Connection) -> list[Event]:
    """Deliver what `source` queued to `target`; the events that caused."""
    return target.feed(source.data_to_send())


def of(kind: type, events: list[Event]) -> list[Event]:
    return [event for event in events if isinstance(event, kind)]


@pytest.fixture
def pair() -> tuple[Connection, Connection]:
    """A client and a server past the preface and both SETTINGS exchanges."""
    client, server = Connection(client=True), Connection(client=False)
    client.start()
    server.start()
    send(client, server)
    send(server, client)
    send(client, server)
    return client, server


def test_a_request_and_response_with_trailers(pair: tuple[Connection, Connection]) -> None:
    client, server = pair
    stream_id = client.next_stream_id()
    assert stream_id == 1
    client.send_headers(stream_id, POST)
    client.send_data(stream_id, b"hello", end_stream=True)
    assert send(client, server) == [
        Request(1, POST, end_stream=False),
        Data(1, b"hello", 5, end_stream=True),
    ]
    server.send_headers(1, [(b":status", b"200")])
    server.send_data(1, b"world")
    server.send_headers(1, [(b"grpc-status", b"0")], end_stream=True)
    assert send(server, client) == [
        Response(1, [(b":status", b"200")], end_stream=False),
        Data(1, b"world", 5, end_stream=False),
        Trailers(1, [(b"grpc-status", b"0")]),
    ]


def test_end_stream_on_a_head_is_folded_into_it(pair: tuple[Connection, Connection]) -> None:
    client, server = pair
    client.send_headers(1, GET, end_stream=True)
    assert send(client, server) == [Request(1, GET, end_stream=True)]
    server.send_headers(1, [(b":status", b"100")])  # interim: not reported
    server.send_headers(1, [(b":status", b"204")], end_stream=True)
    assert send(server, client) == [Response(1, [(b":status", b"204")], end_stream=True)]


def test_data_is_acknowledged_only_once_consumed(pair: tuple[Connection, Connection]) -> None:
    client, server = pair
    client.send_headers(1, POST)
    send(client, server)
    sent = 0
    while (window := client.send_window(1)) > 0:  # fill the stream's window
        client.send_data(1, b"x" * window)
        sent += window
    assert sent == STREAM_WINDOW
    received = of(Data, send(client, server))
    assert sum(len(event.data) for event in received) == STREAM_WINDOW  # type: ignore[attr-defined]
    assert server.data_to_send() == b""  # nothing consumed: no WINDOW_UPDATE
    assert client.send_window(1) == 0
    for event in received:
        server.consumed(1, event.flow_length)  # type: ignore[attr-defined]
    assert WindowOpened(1) in send(server, client)
    assert client.send_window(1) > 0


def test_a_reset_reaches_the_peer_with_its_code(pair: tuple[Connection, Connection]) -> None:
    client, server = pair
    client.send_headers(1, POST)
    send(client, server)
    client.reset(1, ErrorCode.CANCEL)
    assert send(client, server) == [Reset(1, ErrorCode.CANCEL)]
    with pytest.raises(StreamClosed):
        server.send_headers(1, [(b":status", b"200")])
    client.reset(1)  # resetting again is harmless


def test_a_graceful_goaway_refuses_new_streams_and_lets_old_ones_finish(
    pair: tuple[Connection, Connection],
) -> None:
    client, server = pair
    client.send_headers(1, POST)
    send(client, server)
    server.go_away()
    client.send_headers(3, POST)  # crosses the GOAWAY on the wire
    events = send(server, client)
    assert events == [Reset(3, ErrorCode.REFUSED_STREAM), GoAway(1, ErrorCode.NO_ERROR)]
    assert send(client, server) == [], "the server refuses stream 3 too"
    assert of(Reset, send(server, client)) == [Reset(3, ErrorCode.REFUSED_STREAM)]
    client.send_data(1, b"rest", end_stream=True)  # stream 1 goes on both ways
    assert send(client, server) == [Data(1, b"rest", 4, end_stream=True)]
    server.send_headers(1, [(b":status", b"200")], end_stream=True)
    assert send(server, client) == [Response(1, [(b":status", b"200")], end_stream=True)]


def test_a_goaway_received_refuses_the_streams_it_did_not_take(
    pair: tuple[Connection, Connection],
) -> None:
    client, server = pair
    client.send_headers(1, GET, end_stream=True)
    send(client, server)
    server.go_away()
    client.send_headers(3, GET, end_stream=True)
    client.send_headers(5, GET, end_stream=True)
    events = send(server, client)
    assert events == [
        Reset(3, ErrorCode.REFUSED_STREAM),
        Reset(5, ErrorCode.REFUSED_STREAM),
        GoAway(1, ErrorCode.NO_ERROR),
    ]


def test_a_protocol_error_raises_and_queues_a_goaway(pair: tuple[Connection, Connection]) -> None:
    _, server = pair
    with pytest.raises(ProtocolError) as raised:
        server.feed(b"\x00\x00\x04\x00\x00\x00\x00\x00\x00abcd")  # DATA on stream 0
    assert raised.value.code is ErrorCode.PROTOCOL_ERROR
    goaway = server.data_to_send()
    assert goaway[3] == 0x07  # a GOAWAY frame
    assert int.from_bytes(goaway[13:17], "big") == ErrorCode.PROTOCOL_ERROR


def test_the_peers_stream_limit_is_respected() -> None:
    client, server = Connection(client=True), Connection(client=False)
    client.start()
    server.start()
    send(client, server)
    send(server, client)  # the server's SETTINGS: MAX_CONCURRENT_STREAMS
    opened = []
    while (stream_id := client.next_stream_id()) is not None:
        client.send_headers(stream_id, GET, end_stream=True)
        opened.append(stream_id)
    assert len(opened) == 256


def test_grpc_helpers() -> None:
    headers = [(b"content-type", b"application/grpc+proto"), (b"grpc-status", b"5")]
    assert grpc.is_grpc(headers)
    assert not grpc.is_grpc([(b"content-type", b"text/plain")])
    assert grpc.grpc_status(headers) == 5
    assert grpc.grpc_status([(b"grpc-status", b"x")]) is None
    assert grpc.encode_message("50% done: ok\n") == b"50%25 done: ok%0A"
    head, body = h2_error_response(504, "timed out", is_grpc=True)
    assert body == b""
    assert (b"grpc-status", b"4") in head
    assert (b"weft-proxy-error", b"timed out") in head
    head, body = h2_error_response(503, "no endpoints", is_grpc=False)
    assert head[0] == (b":status", b"503")
    assert body == b"no endpoints\n"
