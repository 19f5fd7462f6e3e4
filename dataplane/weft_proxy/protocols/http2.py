"""HTTP/2 as events, over h2's state machine: bytes in, events out, bytes to send.

h2 already is sans-IO; `Connection` narrows it to what the proxy needs:
- one configuration per side (bounded windows, streams and header lists; no push);
- events of its own, one per frame, with `end_stream` folded in and header lists as bytes;
- a GOAWAY mapped to `GoAway` plus a `Reset(REFUSED_STREAM)` for each of our streams the
  peer will not process, so the I/O layer handles refused streams like reset ones;
- graceful GOAWAY both ways (h2 closes the whole connection on any GOAWAY: see `_H2`);
- received data is acknowledged only when the I/O layer says it was consumed
  (`consumed`), so the peer's window, not this process's memory, absorbs a slow reader.

Anything the peer sends that breaks HTTP/2 raises `ProtocolError` (and nothing else); a
GOAWAY saying why is then already queued in `data_to_send()`. So does a peer that floods
the connection with cheap frames (`http2_limits`): GOAWAY(ENHANCE_YOUR_CALM). A request
head whose `:method` is not a token or whose `:path` could not be forwarded as it is (a
space, a control or non-ASCII byte) is malformed (RFC 9113 8.1.1): its stream is reset
with PROTOCOL_ERROR and never reported.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Final, NoReturn

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hyperframe.frame
from h2.errors import ErrorCodes as ErrorCode

from weft_api.http2_limits import DEFAULT_LIMITS, Flood, FloodLimits
from weft_proxy.policies.clock import Clock
from weft_proxy.protocols.http1 import Headers
from weft_proxy.protocols.http2_limits import FloodGuard

__all__ = [
    "CONNECTION_WINDOW",
    "STREAM_WINDOW",
    "Connection",
    "Data",
    "ErrorCode",
    "Event",
    "FrameCutter",
    "GoAway",
    "Headers",
    "ProtocolError",
    "Request",
    "Reset",
    "Response",
    "SettingsChanged",
    "StreamClosed",
    "Trailers",
    "WindowOpened",
    "header_value",
    "response_status",
]

STREAM_WINDOW: Final = 256 * 1024
"""What a peer may send on one stream before we acknowledge some of it."""
CONNECTION_WINDOW: Final = 1024 * 1024
"""What a peer may send on all streams together: the most one connection buffers."""
MAX_CONCURRENT_STREAMS: Final = 256
MAX_HEADER_LIST_BYTES: Final = 64 * 1024  # as HTTP/1's MAX_HEAD_BYTES
_DEFAULT_WINDOW: Final = 65_535  # RFC 9113 6.9.2
_TOKEN: Final = frozenset(
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
_VISIBLE: Final = frozenset(range(0x21, 0x7F))


class ProtocolError(Exception):
    """The peer broke HTTP/2; the connection is over, with GOAWAY(`code`) queued."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class StreamClosed(Exception):
    """A send on a stream that can no longer carry it (reset, or already ended)."""


@dataclass(slots=True)
class Request:
    """A request head on a stream the peer opened (server side)."""

    stream_id: int
    headers: Headers
    end_stream: bool


@dataclass(slots=True)
class Response:
    """A final response head (client side); 1xx interim heads are not reported."""

    stream_id: int
    headers: Headers
    end_stream: bool  # a trailers-only response, as gRPC errors often are


@dataclass(slots=True)
class Data:
    stream_id: int
    data: bytes
    flow_length: int  # what to pass to `consumed` once the data is taken (padding included)
    end_stream: bool


@dataclass(slots=True)
class Trailers:
    stream_id: int
    headers: Headers
    end_stream: bool = True  # trailers always end their stream


@dataclass(slots=True)
class Reset:
    """The stream ended abnormally: RST_STREAM from the peer (or sent by h2 for a stream
    error), or REFUSED_STREAM for a stream a GOAWAY left unprocessed."""

    stream_id: int
    code: int


@dataclass(slots=True)
class GoAway:
    """No new streams: the peer processes ours up to `last_stream_id`; an error `code`
    means it is closing the connection now."""

    last_stream_id: int
    code: int


@dataclass(slots=True)
class WindowOpened:
    """Send window grew on `stream_id` (0: on the connection, so possibly every stream)."""

    stream_id: int


@dataclass(slots=True)
class SettingsChanged:
    """The peer changed its settings: stream windows or the stream limit may differ."""


Event = Request | Response | Data | Trailers | Reset | GoAway | WindowOpened | SettingsChanged

_SETTINGS_CHANGED: Final = SettingsChanged()


class _H2(h2.connection.H2Connection):
    """h2 moves to CLOSED on any GOAWAY received (python-hyper/h2#1181), which would fail
    the streams a graceful GOAWAY lets finish. A GOAWAY with NO_ERROR is reported here
    without that transition; an error GOAWAY keeps h2's behaviour."""

    def _receive_goaway_frame(
        self, frame: hyperframe.frame.GoAwayFrame
    ) -> tuple[list[hyperframe.frame.Frame], list[h2.events.Event]]:
        if frame.error_code != ErrorCode.NO_ERROR:
            return super()._receive_goaway_frame(frame)
        event = h2.events.ConnectionTerminated()
        event.error_code = ErrorCode.NO_ERROR
        event.last_stream_id = frame.last_stream_id
        return [], [event]


class FrameCutter:
    """Cuts received bytes into pieces of at most `limit` frames each, so that the I/O
    layer can let other connections run between pieces: a read full of tiny frames (a
    flood) is then as short a turn as one full of data. Only frame headers are read."""

    __slots__ = ("_body_left", "_head", "limit")

    def __init__(self, limit: int, *, preface: int = 0) -> None:
        self.limit = limit
        self._body_left = preface  # bytes until the next frame header
        self._head = b""  # a frame header the last read cut short

    def cut(self, data: bytes, start: int = 0) -> int:
        """Where the piece of `data` that begins at `start` ends: after `limit` whole
        frames, or at the end of `data`."""
        size, position, frames, limit = len(data), start, 0, self.limit
        while position < size:
            if self._body_left:
                step = min(self._body_left, size - position)
                position += step
                self._body_left -= step
                if self._body_left or frames >= limit:
                    break
                continue
            if self._head or size - position < 9:
                head = self._head + data[position : position + 9 - len(self._head)]
                position += len(head) - len(self._head)
                if len(head) < 9:
                    self._head = head
                    break
                self._head = b""
                length = int.from_bytes(head[:3], "big")
            else:
                length = data[position] << 16 | data[position + 1] << 8 | data[position + 2]
                position += 9
            self._body_left = length
            frames += 1
            if frames >= limit and not length:
                break
        return position


def _forwardable(headers: Headers) -> bool:
    """`:method` a token and `:path` visible ASCII: what an HTTP/1 request line can carry
    (h2 has already refused NUL, CR and LF, and an empty path)."""
    for key, value in headers:
        if key == b":method":
            if not value or not _TOKEN.issuperset(value):
                return False
        elif key == b":path":
            if not _VISIBLE.issuperset(value):
                return False
        elif not key.startswith(b":"):
            break  # pseudo-headers come first (h2 checks it)
    return True


def response_status(headers: Headers) -> int | None:
    """`:status` as a number; None unless it is three digits (RFC 9110 15)."""
    value = header_value(headers, b":status")
    if value is None or len(value) != 3 or not value.isdigit():
        return None
    return int(value)


def header_value(headers: Headers, name: bytes) -> bytes | None:
    """The first value of `name` (HTTP/2 names are lower case, so compared as they are)."""
    for key, value in headers:
        if key == name:
            return value
    return None


class Connection:
    """One side of an HTTP/2 connection."""

    __slots__ = ("_client", "_extra", "_guard", "_h2", "_head_priority", "_refuse_above")

    def __init__(
        self, *, client: bool, limits: FloodLimits = DEFAULT_LIMITS, clock: Clock = time.monotonic
    ) -> None:
        # Received headers are validated; those sent are either received ones, forwarded,
        # or built here in HTTP/2's form: validating them again costs a tenth of a request.
        config = h2.config.H2Configuration(
            client_side=client,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self._h2 = _H2(config)
        settings: dict[h2.settings.SettingCodes, int] = {
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST_BYTES,
        }
        if client:
            settings[h2.settings.SettingCodes.ENABLE_PUSH] = 0
        else:
            settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = MAX_CONCURRENT_STREAMS
        self._h2.local_settings = h2.settings.Settings(client=client, initial_values=settings)
        self._client = client
        self._extra = b""  # frames sent around h2's state machine (a graceful GOAWAY)
        self._refuse_above: int | None = None  # after our GOAWAY: newer peer streams
        self._guard = FloodGuard(limits, clock)
        self._head_priority: h2.events.PriorityUpdated | None = None  # part of a head: free

    @property
    def client(self) -> bool:
        return self._client

    def start(self) -> None:
        """Queue the connection preface: (client magic,) SETTINGS, the connection window."""
        self._h2.initiate_connection()
        self._h2.increment_flow_control_window(CONNECTION_WINDOW - _DEFAULT_WINDOW)

    # --- receiving ----------------------------------------------------------------

    def feed(self, data: bytes) -> list[Event]:
        try:
            received = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as error:
            code = ErrorCode(error.error_code)
            if self._h2.state_machine.state is not h2.connection.ConnectionState.CLOSED:
                self._h2.close_connection(code)  # h2 checks the preface before its handler
            raise ProtocolError(code, str(error) or type(error).__name__) from None
        events: list[Event] = []
        for event in received:
            self._translate(event, events)
        return events

    def _spend(self, kind: Flood) -> None:
        if not self._guard.spend(kind):
            self.calm_down(f"too many {kind.value}")

    def calm_down(self, reason: str) -> NoReturn:
        """End a connection whose peer sends more than it may: GOAWAY(ENHANCE_YOUR_CALM)."""
        code = ErrorCode.ENHANCE_YOUR_CALM
        if self._h2.state_machine.state is not h2.connection.ConnectionState.CLOSED:
            self._h2.close_connection(code, additional_data=reason.encode())
        raise ProtocolError(code, reason)

    def _translate(self, event: h2.events.Event, out: list[Event]) -> None:
        match event:
            case h2.events.DataReceived():
                if not event.data and event.stream_ended is None:
                    self._spend(Flood.CONTROL)  # an empty DATA frame carries nothing
                out.append(
                    Data(
                        event.stream_id,
                        event.data,
                        event.flow_controlled_length,
                        event.stream_ended is not None,
                    )
                )
            case h2.events.RequestReceived():
                self._head_priority = event.priority_updated
                if self._refuse_above is not None and event.stream_id > self._refuse_above:
                    self._h2.reset_stream(event.stream_id, ErrorCode.REFUSED_STREAM)
                    return
                if not _forwardable(event.headers):
                    self._h2.reset_stream(event.stream_id, ErrorCode.PROTOCOL_ERROR)
                    return
                out.append(Request(event.stream_id, event.headers, event.stream_ended is not None))
            case h2.events.ResponseReceived():
                out.append(Response(event.stream_id, event.headers, event.stream_ended is not None))
            case h2.events.TrailersReceived():
                out.append(Trailers(event.stream_id, event.headers))
            case h2.events.StreamReset():
                if event.remote_reset and not self._client:
                    self._spend(Flood.RESETS)
                out.append(Reset(event.stream_id, int(event.error_code)))
            case h2.events.WindowUpdated():
                out.append(WindowOpened(event.stream_id))
            case h2.events.RemoteSettingsChanged():
                self._spend(Flood.SETTINGS)
                out.append(_SETTINGS_CHANGED)
            case h2.events.PingReceived():
                self._spend(Flood.PINGS)
            case h2.events.PriorityUpdated():
                if event is not self._head_priority:
                    self._spend(Flood.CONTROL)
                self._head_priority = None
            case h2.events.UnknownFrameReceived():
                self._spend(Flood.CONTROL)
            case h2.events.ConnectionTerminated():
                last = event.last_stream_id or 0
                out.extend(
                    Reset(stream_id, ErrorCode.REFUSED_STREAM)
                    for stream_id in self._own_streams()
                    if stream_id > last
                )
                out.append(GoAway(last, int(event.error_code or 0)))
            # Everything else (1xx heads, acks) is h2's business or of no use to a proxy.

    def _own_streams(self) -> list[int]:
        parity = 1 if self._client else 0
        return [s for s, stream in self._h2.streams.items() if s % 2 == parity and stream.open]

    def consumed(self, stream_id: int, flow_length: int) -> None:
        """The consumer took `flow_length` bytes of `stream_id`: let the peer send more."""
        if flow_length:
            try:
                self._h2.acknowledge_received_data(flow_length, stream_id)
            except h2.exceptions.ProtocolError:
                return  # the connection is closing: its windows no longer matter

    # --- sending ------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        data = self._h2.data_to_send()
        if self._extra:
            data, self._extra = data + self._extra, b""
        return data

    def next_stream_id(self) -> int | None:
        """A stream id for a new request (client side); None while the peer's limit on
        concurrent streams is reached."""
        h2c = self._h2
        if h2c.open_outbound_streams >= h2c.remote_settings.max_concurrent_streams:
            return None
        return h2c.get_next_available_stream_id()

    def send_headers(self, stream_id: int, headers: Headers, end_stream: bool = False) -> None:
        """A request or response head, or trailers (with `end_stream`)."""
        try:
            self._h2.send_headers(stream_id, headers, end_stream=end_stream)
        except h2.exceptions.H2Error as error:
            self._stream_failed(stream_id, error)

    def send_window(self, stream_id: int) -> int:
        """How many bytes of data `stream_id` may send now, in one frame."""
        try:
            window = self._h2.local_flow_control_window(stream_id)
        except h2.exceptions.H2Error as error:
            raise StreamClosed(str(error)) from None
        return min(window, self._h2.max_outbound_frame_size)

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """At most `send_window(stream_id)` bytes."""
        try:
            self._h2.send_data(stream_id, data, end_stream=end_stream)
        except h2.exceptions.H2Error as error:
            self._stream_failed(stream_id, error)

    def end_stream(self, stream_id: int) -> None:
        try:
            self._h2.end_stream(stream_id)
        except h2.exceptions.H2Error as error:
            self._stream_failed(stream_id, error)

    def reset(self, stream_id: int, code: int = ErrorCode.CANCEL) -> None:
        """Reset a stream; one already closed is left as it is."""
        with contextlib.suppress(h2.exceptions.H2Error):
            self._h2.reset_stream(stream_id, code)

    def go_away(self, code: ErrorCode = ErrorCode.NO_ERROR) -> None:
        """GOAWAY. With NO_ERROR it is graceful: the peer's streams up to now go on (h2
        itself would close at once, so the frame is written around its state machine)
        and newer ones are refused. With an error code the connection is over."""
        last = self._h2.highest_inbound_stream_id
        if code is not ErrorCode.NO_ERROR:
            self._h2.close_connection(code, last_stream_id=last)
            return
        if self._refuse_above is None:
            self._refuse_above = last
            self._extra += hyperframe.frame.GoAwayFrame(0, last_stream_id=last).serialize()

    def _stream_failed(self, stream_id: int, error: h2.exceptions.H2Error) -> NoReturn:
        # Closed under us (reset, or the connection went away), or a send its state does
        # not allow: the stream cannot go on either way.
        self.reset(stream_id, ErrorCode.INTERNAL_ERROR)
        raise StreamClosed(str(error) or type(error).__name__) from None
