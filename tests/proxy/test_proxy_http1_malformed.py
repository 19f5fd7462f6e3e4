"""Malformed values a peer sends (numbers, methods, paths, header bytes) get a 4xx or a
502, and at most a warning line per connection: never a traceback (issue 14). Clients
send hand-picked and randomly mutated requests to the outbound and inbound listeners."""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import re
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from http1_peers import GUARD_S, Path, Start, open_path, read_to_end

VALID = (
    b"POST /books/1?page=2 HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\n"
    b"X-Request-Id: 7\r\nAccept: */*\r\n\r\nhello"
)
NASTY = [
    b"GET / HTTP/1.1\r\nHost: {host}:\xb2\r\n\r\n",  # a port that isdigit() but no int
    b"GET / HTTP/1.1\r\nHost: {host}:99999999999999999999\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: \xff\xfe\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: {host}\r\nContent-Length: -1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1e3\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: {host}\r\nContent-Length: \xb2\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n",
    b"POST / HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n",
    b"POST / HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n5;\xff=\x00\r\n",
    b"GET / HTTP/1.1\r\nHost: {host}\r\nweft-timeout: \xb2s\r\ngrpc-timeout: 99999999999H\r\n\r\n",
    b"G\xc3\x89T / HTTP/1.1\r\nHost: {host}\r\n\r\n",
    b"GET /\xff\xfe HTTP/1.1\r\nHost: {host}\r\n\r\n",
    b"GET http://\xb2:\xb2/ HTTP/1.1\r\nHost: {host}\r\n\r\n",
    b"GET * HTTP/1.1\r\nHost: {host}\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: {host}\r\nX: a\x00b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: {host}\r\nX: \xc0\xff\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: upgrade, \xff\r\nUpgrade: \xff\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: {host}\r\n\xff: 1\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: {host}\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: {host}\r\nExpect: 100-\xff\r\nContent-Length: 1\r\n\r\nx",
]
STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5][0-9][0-9]) ")


@pytest.fixture
async def app_port() -> AsyncIterator[int]:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    await runner.cleanup()


def mutations(count: int, seed: int) -> list[bytes]:
    """`VALID` with a few bytes changed, inserted or dropped, where it hurts most."""
    rng = random.Random(seed)
    special = [b"\x00", b"\xff", b"\xb2", b" ", b":", b"\r", b"\n", b"9", b"-", b"+", b";"]
    out = []
    for _ in range(count):
        data = bytearray(VALID)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(data))
            match rng.randrange(3):
                case 0:
                    data[at : at + 1] = rng.choice(special)
                case 1:
                    data[at:at] = rng.choice(special) * rng.randint(1, 30)
                case _:
                    del data[at]
        out.append(bytes(data))
    return out


async def send(path: Path, raw: bytes) -> bytes:
    """The request, then the end of the client's side; what came back until the close."""
    reader, writer = await path.open()
    try:
        writer.write(raw.replace(b"{host}", path.host.encode()))
        writer.write_eof()
        return await asyncio.wait_for(read_to_end(reader), GUARD_S)
    finally:
        writer.close()


@pytest.mark.parametrize("kind", ["outbound", "inbound"])
async def test_malformed_requests_get_an_answer_and_never_a_traceback(
    proxies: Start, app_port: int, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = await open_path(kind, proxies, app_port)
    loop_errors: list[dict[str, object]] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: loop_errors.append(context))
    try:
        with caplog.at_level(logging.WARNING):
            cases = NASTY + mutations(200, seed=14 if kind == "outbound" else 15)
            for raw in cases:
                answer = await send(path, raw)
                statuses = [int(s) for s in STATUS_LINE.findall(answer)]
                # An answer (the app's, or the proxy's 4xx/5xx), or nothing: a client
                # that is not speaking HTTP/1 at all goes on as opaque bytes.
                assert answer == b"" or statuses, (raw, answer[:200])
            gc.collect()  # "Task exception was never retrieved" shows at collection
            await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert not loop_errors
    ours = [r for r in caplog.records if not r.name.startswith("aiohttp")]  # (the app's own)
    tracebacks = [r for r in ours if r.exc_info or r.levelno >= logging.ERROR]
    assert not tracebacks, [r.getMessage() for r in tracebacks]
    assert len(ours) <= len(cases)  # a line per connection at most
