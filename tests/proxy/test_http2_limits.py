"""HTTP/2 flood limits and hostile values, sans-IO: frames written by hand (hyperframe)
fed to a server `Connection` on a manual clock; what it answers is read back as frames."""

from __future__ import annotations

import random

import hpack
import pytest
from hyperframe.frame import (
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
)

from weft_api.http2_limits import DEFAULT_LIMITS, Flood, FloodLimits, Rate, parse
from weft_proxy.policies.clock import ManualClock
from weft_proxy.protocols import grpc
from weft_proxy.protocols.http2 import (
    Connection,
    ErrorCode,
    FrameCutter,
    ProtocolError,
    Request,
    Reset,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
GET = [(":method", "GET"), (":scheme", "http"), (":authority", "app"), (":path", "/")]


class Peer:
    """A hostile client: the server connection under test, and frames to feed it."""

    def __init__(self, limits: FloodLimits = DEFAULT_LIMITS) -> None:
        self.clock = ManualClock()
        self.server = Connection(client=False, limits=limits, clock=self.clock)
        self.server.start()
        self.encoder = hpack.Encoder()
        self.server.feed(PREFACE + SettingsFrame(0).serialize())
        self.next_stream = 1

    def feed(self, *frames: Frame) -> list[object]:
        return list(self.server.feed(b"".join(frame.serialize() for frame in frames)))

    def request(self, headers: list[tuple[str, str]] = GET) -> HeadersFrame:
        frame = HeadersFrame(self.next_stream, self.encoder.encode(headers))
        frame.flags.add("END_HEADERS")
        frame.flags.add("END_STREAM")
        self.next_stream += 2
        return frame

    def goaway_code(self) -> int | None:
        data = self.server.data_to_send()
        while data:
            frame, length = Frame.parse_frame_header(memoryview(data[:9]))
            frame.parse_body(memoryview(data[9 : 9 + length]))
            if isinstance(frame, GoAwayFrame):
                return frame.error_code
            data = data[9 + length :]
        return None

    def resets(self) -> list[tuple[int, int]]:
        found, data = [], self.server.data_to_send()
        while data:
            frame, length = Frame.parse_frame_header(memoryview(data[:9]))
            frame.parse_body(memoryview(data[9 : 9 + length]))
            if isinstance(frame, RstStreamFrame):
                found.append((frame.stream_id, frame.error_code))
            data = data[9 + length :]
        return found


FLOODS = {
    Flood.RESETS: lambda peer: (
        (request := peer.request()),
        RstStreamFrame(request.stream_id, error_code=ErrorCode.CANCEL),
    ),
    Flood.SETTINGS: lambda peer: (
        SettingsFrame(0, settings={SettingsFrame.MAX_FRAME_SIZE: 16384}),
    ),
    Flood.PINGS: lambda peer: (PingFrame(0, opaque_data=b"12345678"),),
    Flood.CONTROL: lambda peer: (PriorityFrame(3, depends_on=0, stream_weight=15),),
}


@pytest.mark.parametrize("kind", list(Flood))
def test_a_burst_past_the_limit_gets_goaway_enhance_your_calm(kind: Flood) -> None:
    peer = Peer()
    burst = DEFAULT_LIMITS.rates[kind].burst
    if kind is Flood.SETTINGS:
        burst -= 1  # the one in the client's preface counts
    for _ in range(burst):
        peer.feed(*FLOODS[kind](peer))
    assert peer.goaway_code() is None  # the whole burst is allowed
    with pytest.raises(ProtocolError) as raised:
        peer.feed(*FLOODS[kind](peer))
    assert raised.value.code == ErrorCode.ENHANCE_YOUR_CALM
    assert peer.goaway_code() == ErrorCode.ENHANCE_YOUR_CALM


@pytest.mark.parametrize("kind", list(Flood))
def test_a_steady_rate_within_the_limit_goes_on_for_ever(kind: Flood) -> None:
    peer = Peer()
    rate = DEFAULT_LIMITS.rates[kind]
    for _ in range(10 * rate.burst):
        peer.feed(*FLOODS[kind](peer))
        peer.clock.advance(1.0 / rate.per_second)
    assert peer.goaway_code() is None


def test_a_priority_that_comes_with_a_request_head_is_free() -> None:
    peer = Peer(DEFAULT_LIMITS.with_rate(Flood.CONTROL, Rate(burst=1, per_second=0)))
    for _ in range(5):
        frame = peer.request()
        frame.flags.add("PRIORITY")
        frame.stream_weight = 16
        assert [type(event) for event in peer.feed(frame)] == [Request]
    assert peer.goaway_code() is None


def test_empty_data_frames_count_as_control_frames() -> None:
    peer = Peer(DEFAULT_LIMITS.with_rate(Flood.CONTROL, Rate(burst=3, per_second=0)))
    request = peer.request()
    request.flags.discard("END_STREAM")
    peer.feed(request)
    for _ in range(3):
        peer.feed(DataFrame(request.stream_id, b""))
    with pytest.raises(ProtocolError):
        peer.feed(DataFrame(request.stream_id, b""))


def test_the_client_side_takes_resets_from_its_server_without_limit() -> None:
    # The proxy's upstream connections: an endpoint refusing many streams is not a flood
    # to punish by closing a connection every other client shares.
    client = Connection(client=True, limits=FloodLimits().with_rate(Flood.RESETS, Rate(1, 0)))
    server = Connection(client=False)
    client.start()
    server.start()
    server.feed(client.data_to_send())
    client.feed(server.data_to_send())
    for _ in range(5):
        stream_id = client.next_stream_id()
        assert stream_id is not None
        client.send_headers(stream_id, [(k.encode(), v.encode()) for k, v in GET], True)
        server.feed(client.data_to_send())
        server.reset(stream_id, ErrorCode.REFUSED_STREAM)
        events = client.feed(server.data_to_send())
        assert Reset(stream_id, ErrorCode.REFUSED_STREAM) in events


@pytest.mark.parametrize(
    ("name", "value"),
    [(":method", "G ET"), (":method", "GÉT"), (":method", ""), (":path", "/a b"),
     (":path", "/caf\u00e9"), (":path", "/\x7f")],
)  # fmt: skip
def test_a_head_that_no_request_line_could_carry_is_reset_not_served(name: str, value: str) -> None:
    peer = Peer()
    headers = [(k, value if k == name else v) for k, v in GET]
    frame = HeadersFrame(1, hpack.Encoder().encode(headers))
    frame.flags.add("END_HEADERS")
    frame.flags.add("END_STREAM")
    assert peer.feed(frame) == []
    assert peer.resets() == [(1, ErrorCode.PROTOCOL_ERROR)]
    peer.next_stream = 3
    assert [type(event) for event in peer.feed(peer.request())] == [Request]  # others go on


def test_numbers_a_peer_sends_are_read_without_raising() -> None:
    huge = b"9" * 5000  # int() refuses more than 4300 digits with ValueError
    assert grpc.grpc_status([(b"grpc-status", huge)]) is None
    assert grpc.grpc_status([(b"grpc-status", b"\xd9\xa3")]) is None  # non-ASCII digit
    assert grpc.grpc_status([(b"grpc-status", b"14")]) == 14


def test_limits_from_a_setting() -> None:
    limits = parse("resets=50:10, pings=5:0.5")
    assert limits.rates[Flood.RESETS] == Rate(50, 10)
    assert limits.rates[Flood.PINGS] == Rate(5, 0.5)
    assert limits.rates[Flood.SETTINGS] == DEFAULT_LIMITS.rates[Flood.SETTINGS]
    assert parse("") == DEFAULT_LIMITS
    for bad, says in [("resetz=1:1", "unknown"), ("pings=a:1", "BURST:PER_SECOND"),
                      ("pings=0:1", "1 or more")]:  # fmt: skip
        with pytest.raises(ValueError, match=says):
            parse(bad)


def test_the_cutter_gives_whole_frames_a_few_at_a_time_however_reads_split_them() -> None:
    frames = [PingFrame(0, opaque_data=b"12345678")] * 40 + [DataFrame(1, b"x" * 16000)] * 3
    stream = PREFACE + b"".join(frame.serialize() for frame in frames)
    rng = random.Random(7)
    for _ in range(200):
        cutter, pieces, position = FrameCutter(8, preface=len(PREFACE)), [], 0
        while position < len(stream):
            read = stream[position : position + rng.randint(1, 20000)]
            position += len(read)
            start = 0
            while start < len(read):
                end = cutter.cut(read, start)
                assert end > start
                pieces.append(read[start:end])
                start = end
        assert b"".join(pieces) == stream
    whole = FrameCutter(8, preface=len(PREFACE))
    sizes, start = [], 0
    while start < len(stream):
        end = whole.cut(stream, start)
        sizes.append(end - start)
        start = end
    assert sizes[:5] == [len(PREFACE) + 8 * 17, 8 * 17, 8 * 17, 8 * 17, 8 * 17]
    assert len(sizes) == 6  # the 16 KB DATA frames go in one piece
