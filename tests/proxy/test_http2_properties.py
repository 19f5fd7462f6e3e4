"""Fuzzing the sans-IO HTTP/2 wrapper: whatever a peer sends (random frames, or a valid
conversation mutated), `feed` answers with events or raises its own ProtocolError, with a
GOAWAY queued, and nothing else."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from weft_proxy.protocols.detect import HTTP2_PREFACE
from weft_proxy.protocols.http2 import Connection, Event, ProtocolError

SETTINGS_FRAME = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """One frame with a plausible header (any type, flags, stream) and any payload."""
    payload = draw(st.binary(max_size=64))
    kind = draw(st.integers(0, 12))
    flags = draw(st.sampled_from([0, 1, 4, 5, 8, 0x20, 0x25, 0xFF]))
    stream_id = draw(st.sampled_from([0, 1, 2, 3, 5, 0x7FFFFFFF]) | st.integers(0, 2**31 - 1))
    length = draw(st.just(len(payload)) | st.integers(0, 2**24 - 1))
    header = struct.pack("!I", length)[1:] + bytes((kind, flags)) + struct.pack("!I", stream_id)
    return header + payload


def client_conversation() -> bytes:
    """What a real client sends: preface, requests with bodies and trailers, a reset,
    pings, window updates, priorities and a GOAWAY."""
    client = Connection(client=True)
    client.start()
    head = [(b":method", b"POST"), (b":scheme", b"http"), (b":authority", b"a"), (b":path", b"/")]
    for stream_id in (1, 3, 5):
        client.send_headers(stream_id, [*head, (b"x-n", b"%d" % stream_id)])
        client.send_data(stream_id, b"body" * stream_id)
    client.send_headers(1, [(b"grpc-status", b"0")], end_stream=True)
    client.reset(3)
    client.end_stream(5)
    h2c = client._h2
    h2c.ping(b"12345678")
    h2c.increment_flow_control_window(1000)
    h2c.prioritize(5, weight=32)
    client.go_away()
    return client.data_to_send()


def server_conversation() -> tuple[Connection, bytes]:
    """A client with three streams open, and what a real server answers them with."""
    client, server = Connection(client=True), Connection(client=False)
    client.start()
    server.start()
    head = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a"), (b":path", b"/")]
    for stream_id in (1, 3, 5):
        client.send_headers(stream_id, head, end_stream=True)
    server.feed(client.data_to_send())
    server.send_headers(1, [(b":status", b"200")])
    server.send_data(1, b"partial")
    server.send_headers(1, [(b"grpc-status", b"13")], end_stream=True)
    server.send_headers(3, [(b":status", b"204")], end_stream=True)
    server.reset(5)
    server.go_away()
    return client, server.data_to_send()


CLIENT_FLIGHT = client_conversation()


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """`valid` with a few bytes flipped, a slice dropped or repeated, or bytes inserted."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, max(0, len(data) - 1)))
        match draw(st.sampled_from(["flip", "drop", "repeat", "insert"])):
            case "flip":
                data[where] ^= draw(st.integers(1, 255))
            case "drop":
                del data[where : where + draw(st.integers(1, 16))]
            case "repeat":
                data[where:where] = data[where : where + draw(st.integers(1, 32))]
            case "insert":
                data[where:where] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


def frame_types(data: bytes) -> list[int]:
    types = []
    while len(data) >= 9:
        types.append(data[3])
        data = data[9 + int.from_bytes(data[:3], "big") :]
    return types


def feed_in_chunks(connection: Connection, data: bytes, cuts: list[int]) -> list[Event]:
    """Feed `data` cut at `cuts`; a ProtocolError must leave a GOAWAY to send."""
    events: list[Event] = []
    start = 0
    for end in [*sorted(cut % (len(data) + 1) for cut in cuts), len(data)]:
        try:
            events += connection.feed(data[start:end])
        except ProtocolError:
            assert 0x07 in frame_types(connection.data_to_send()), "a GOAWAY says why"
            return events
        start = max(start, end)
    return events


@settings(max_examples=300, deadline=None)
@given(st.lists(frames(), max_size=6), st.lists(st.integers(0, 10_000), max_size=4))
def test_random_frames_to_a_server_raise_only_protocol_errors(
    sent: list[bytes], cuts: list[int]
) -> None:
    server = Connection(client=False)
    server.start()
    feed_in_chunks(server, HTTP2_PREFACE + SETTINGS_FRAME + b"".join(sent), cuts)


@settings(max_examples=300, deadline=None)
@given(mutated(CLIENT_FLIGHT), st.lists(st.integers(0, 10_000), max_size=4))
def test_a_mutated_client_conversation_raises_only_protocol_errors(
    data: bytes, cuts: list[int]
) -> None:
    server = Connection(client=False)
    server.start()
    feed_in_chunks(server, data, cuts)


@settings(max_examples=300, deadline=None)
@given(st.data(), st.lists(st.integers(0, 10_000), max_size=4))
def test_a_mutated_server_conversation_raises_only_protocol_errors(
    data: st.DataObject, cuts: list[int]
) -> None:
    client, answer = server_conversation()
    feed_in_chunks(client, data.draw(mutated(answer)), cuts)


@settings(max_examples=300, deadline=None)
@given(st.lists(frames(), max_size=6))
def test_random_frames_to_a_client_raise_only_protocol_errors(sent: list[bytes]) -> None:
    client, answer = server_conversation()
    feed_in_chunks(client, answer[: len(answer) // 2] + b"".join(sent), [])
