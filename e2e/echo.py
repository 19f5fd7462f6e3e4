"""A raw TCP echo server for the e2e tests (image `python`, port 7000): no HTTP, so the
proxies carry it as opaque TCP."""

from __future__ import annotations

import asyncio

PORT = 7000


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def main() -> None:
    server = await asyncio.start_server(echo, "0.0.0.0", PORT)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
