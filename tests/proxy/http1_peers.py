"""Raw HTTP/1 peers for socket tests that must see (or send) exactly the bytes on the
wire, and the three ways a request crosses the mesh: outbound (app -> 4140 -> endpoint),
inbound (client -> 4143 -> the pod's app) and a meshed pair (two proxies, mTLS between).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mesh_ca import MeshCa
from proxy_configs import AUTHORITY, backend, books, config
from running import RunningProxy

from weft_api.config import Backend, BackendPort, Endpoint, ProtocolHint, ProxyConfig
from weft_api.identity import identity_name

GUARD_S = 5.0  # a bound on waits so that a hang fails the test; never what it asserts
BOOKS_ID = identity_name("books", "shop")

Start = Callable[..., Awaitable[RunningProxy]]
StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Path:
    """Where a client connects to reach the app through one path, and the proxies on it
    (the client's side first)."""

    name: str
    port: int
    proxies: list[RunningProxy]
    host: str = AUTHORITY

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def meshed_books(port: int) -> ProxyConfig:
    """A client's view of `books` as one meshed pod (identity, hinted HTTP/2)."""
    endpoint = Endpoint("127.0.0.1", port, BOOKS_ID, ProtocolHint.H2, (("pod", "books-0"),))
    return config(books(Backend("books", "shop", AUTHORITY, 1, (BackendPort(80, (endpoint,)),))))


async def open_path(kind: str, proxies: Start, app_port: int) -> Path:
    """Proxies on loopback in front of the app listening on `app_port`."""
    if kind == "outbound":
        proxy = await proxies(config(books(backend("books", 1, [app_port]))))
        return Path(kind, proxy.outbound_port, [proxy])
    if kind == "inbound":
        proxy = await proxies(config(), inbound_fallback_port=app_port)
        return Path(kind, proxy.inbound_port, [proxy])
    assert kind == "meshed"
    ca = MeshCa()
    server = await proxies(config(), inbound_fallback_port=app_port)
    server.proxy.use_credentials(ca.credentials("books"))
    client = await proxies(meshed_books(server.inbound_port))
    client.proxy.use_credentials(ca.credentials("web"))
    return Path(kind, client.outbound_port, [client, server])


PATHS = ["outbound", "inbound", "meshed"]


def request(
    method: str,
    target: str = "/",
    *,
    host: str = AUTHORITY,
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes | None = None,
) -> bytes:
    """A request as a client writes it; a Content-Length only when there is a body."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + (body or b"")


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # names lower case
    body: bytes
    trailers: dict[str, str]


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """A response's (or request's: status 0) start line and headers, names lower-cased."""
    head = await reader.readuntil(b"\r\n\r\n")
    start, *lines = head.decode("latin-1").split("\r\n")
    parts = start.split(" ")
    status = int(parts[1]) if start.startswith("HTTP/") else 0
    return status, _fields(lines)


def _fields(lines: list[str]) -> dict[str, str]:
    fields = {}
    for line in lines:
        if line:
            name, value = line.split(":", 1)
            fields[name.strip().lower()] = value.strip()
    return fields


async def read_body(
    reader: asyncio.StreamReader, headers: dict[str, str], *, request: bool = False
) -> tuple[bytes, dict[str, str]]:
    """A body (and its trailers) framed as `headers` say; without framing, a request
    has none and a response runs to the close."""
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"])), {}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        lines = []
        while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
            lines.append(line.decode("latin-1").strip())
        return body, _fields(lines)
    return (b"" if request else await reader.read()), {}


async def read_response(reader: asyncio.StreamReader) -> Response:
    """The next final response (interim 1xx ones skipped)."""
    while True:
        status, headers = await read_head(reader)
        if status >= 200:
            break
    if status in (204, 304):
        return Response(status, headers, b"", {})
    body, trailers = await read_body(reader, headers)
    return Response(status, headers, body, trailers)


async def read_to_end(reader: asyncio.StreamReader) -> bytes:
    """Everything until the connection ends, by a FIN or a reset."""
    data = b""
    try:
        while chunk := await reader.read(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


async def exchange(path: Path, raw: bytes) -> Response:
    """One request on a connection of its own."""
    reader, writer = await path.open()
    try:
        writer.write(raw)
        return await asyncio.wait_for(read_response(reader), GUARD_S)
    finally:
        writer.close()


async def until(condition: Callable[[], bool]) -> None:
    """Wait (bounded) for a condition the event loop makes true."""
    async with asyncio.timeout(GUARD_S):
        while not condition():  # noqa: ASYNC110 (what it waits for has no event to wait on)
            await asyncio.sleep(0.001)
