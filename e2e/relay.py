"""A meshed client the e2e tests drive from the host: it runs in a pod (image `python`)
and makes the calls it is asked for, so they leave the pod through its proxy.

    GET /http?url=U          -> {"status": S, "body": B}  (an HTTP GET of U)
    GET /tcp?host=H&port=P&payload=X -> {"echo": E}       (X sent, as much read back)
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

PORT = 8080
TIMEOUT = aiohttp.ClientTimeout(total=5)


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


def main() -> None:
    app = web.Application()
    app.router.add_get("/http", http)
    app.router.add_get("/tcp", tcp)
    app.router.add_get("/ready", lambda _: asyncio.sleep(0, web.Response(text="ok")))
    web.run_app(app, port=PORT, print=None)


if __name__ == "__main__":
    main()
