"""A meshed client the e2e tests drive from the host: it runs in a pod (image `python`)
and makes the calls it is asked for, so they leave the pod through its proxy.

    GET /http?url=U          -> {"status": S, "body": B}  (an HTTP GET of U)
    GET /tcp?host=H&port=P&payload=X -> {"echo": E}       (X sent, as much read back)
    GET /banner?host=H&port=P -> {"banner": B}            (a line read, nothing sent)
    GET /who                 -> $WHO                      (which relay answered)

It also serves a banner on port 7001 (the server speaks first: "hello from $WHO\n"),
as SMTP or MySQL servers do.
"""

from __future__ import annotations

import asyncio
import os

import aiohttp
from aiohttp import web

PORT = 8080
BANNER_PORT = 7001
TIMEOUT = aiohttp.ClientTimeout(total=5)
# Under the proxy's 10 s detection timeout: a banner that waits for detection is missed.
BANNER_TIMEOUT_S = 8.0


async def http(request: web.Request) -> web.Response:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        try:
            async with session.get(request.query["url"]) as response:
                body = await response.text()
                return web.json_response({"status": response.status, "body": body})
        except (aiohttp.ClientError, TimeoutError) as error:
            return web.json_response({"status": 0, "body": repr(error)})


async def tcp(request: web.Request) -> web.Response:
    payload = request.query["payload"].encode()
    try:
        async with asyncio.timeout(5):
            reader, writer = await asyncio.open_connection(
                request.query["host"], int(request.query["port"])
            )
            writer.write(payload)
            echo = await reader.readexactly(len(payload))
            writer.close()
    except (OSError, EOFError, TimeoutError) as error:
        return web.json_response({"echo": None, "error": repr(error)})
    return web.json_response({"echo": echo.decode()})


async def banner(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(BANNER_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(
                request.query["host"], int(request.query["port"])
            )
            line = await reader.readline()
            writer.close()
    except (OSError, TimeoutError) as error:
        return web.json_response({"banner": None, "error": repr(error)})
    return web.json_response({"banner": line.decode()})


async def who(_: web.Request) -> web.Response:
    return web.Response(text=os.environ.get("WHO", ""))


async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(f"hello from {os.environ.get('WHO', '')}\n".encode())
    await writer.drain()
    writer.close()


async def serve_banner(app: web.Application) -> None:
    app["banner"] = await asyncio.start_server(greet, "0.0.0.0", BANNER_PORT)


def main() -> None:
    app = web.Application()
    app.on_startup.append(serve_banner)
    app.router.add_get("/http", http)
    app.router.add_get("/tcp", tcp)
    app.router.add_get("/banner", banner)
    app.router.add_get(
        "/who", lambda _: asyncio.sleep(0, web.Response(text=os.environ.get("WHO", "")))
    )
    app.router.add_get("/ready", lambda _: asyncio.sleep(0, web.Response(text="ok")))
    web.run_app(app, port=PORT, print=None)


if __name__ == "__main__":
    main()
