"""A local port forwarded to a pod's port through the API server, as `kubectl
port-forward` does: each connection to it opens a `pods/portforward` WebSocket (the
`v4.channel.k8s.io` channel protocol) with the user's kube credentials. So the CLI
reaches a pod wherever it reaches the API server, with the RBAC that grants it.

Channel protocol, one forwarded port: every binary frame starts with its channel's
byte, 0 for data and 1 for errors; the first frame of each channel from the server
carries only the port number (2 bytes, little-endian).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
from kubernetes_asyncio.stream import WsApiClient

from weft_cli.kube import Kube

DATA, ERROR = 0, 1
_PROTOCOL = "v4.channel.k8s.io"
_CHUNK = 65536


@dataclass
class Frames:
    """Server frames to (channel, payload): strips each channel's leading port number."""

    announced: set[int] = field(default_factory=set)

    def payload(self, frame: bytes) -> tuple[int, bytes]:
        if not frame:
            return DATA, b""
        channel, data = frame[0], frame[1:]
        if channel not in self.announced:
            self.announced.add(channel)
            data = data[2:]
        return channel, data


def data_frame(data: bytes) -> bytes:
    return bytes([DATA]) + data


class Forward:
    """What went wrong on a forwarded connection, for the caller's error message (the
    client of the local port sees only a closed connection)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.failure = ""


async def _pump(
    ws: aiohttp.ClientWebSocketResponse,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> str:
    """Bytes both ways until either side ends; the pod side's error text, if any."""

    async def upstream() -> None:
        while data := await reader.read(_CHUNK):
            await ws.send_bytes(data_frame(data))
        await ws.close()

    sending = asyncio.create_task(upstream())
    frames, error = Frames(), b""
    try:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.BINARY:
                break
            channel, data = frames.payload(message.data)
            if channel == DATA and data:
                writer.write(data)
                await writer.drain()
            elif channel == ERROR:
                error += data
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError, OSError):
            await sending
    return error.decode(errors="replace").strip()


@contextlib.asynccontextmanager
async def forwarded(kube: Kube, namespace: str, pod: str, port: int) -> AsyncIterator[Forward]:
    """A 127.0.0.1 port whose connections reach `pod`'s `port`, while in the block."""
    client = WsApiClient(configuration=kube.configuration)
    path = f"/api/v1/namespaces/{namespace}/pods/{pod}/portforward"

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with await client.call_api(
                path,
                "GET",
                query_params=[("ports", str(port))],
                header_params={"sec-websocket-protocol": _PROTOCOL},
                auth_settings=["BearerToken"],
                _preload_content=False,
            ) as ws:
                error = await _pump(ws, reader, writer)
                if error:
                    forward.failure = f"the pod's port {port}: {error}"
        except aiohttp.WSServerHandshakeError as refused:
            forward.failure = (
                f"the API server refused the port-forward to pod {namespace}/{pod} "
                f"(HTTP {refused.status})"
            )
        except (aiohttp.ClientError, OSError) as error:
            forward.failure = f"cannot reach the Kubernetes API at {kube.server}: {error}"
        finally:
            writer.close()

    server = await asyncio.start_server(connected, "127.0.0.1", 0)
    forward = Forward(f"127.0.0.1:{server.sockets[0].getsockname()[1]}")
    try:
        yield forward
    finally:
        server.close()
        await server.wait_closed()
        await client.close()
