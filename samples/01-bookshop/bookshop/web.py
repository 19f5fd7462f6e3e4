"""The web front (HTTP/1.1): books from the books service (HTTP/1.1), each with its
rating from the ratings service (gRPC). A missing rating degrades the page; a failing
books service fails it (502), which is what the canary demo watches."""

from __future__ import annotations

import asyncio
import html
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
from aiohttp import web

from bookshop import ratings_api, settings

UPSTREAM_TIMEOUT = aiohttp.ClientTimeout(total=2.0)
RATING_TIMEOUT = 1.0


class RatingsClient:
    def __init__(self, address: str) -> None:
        self.channel = grpc.aio.insecure_channel(address)
        self._get = self.channel.unary_unary(
            ratings_api.GET_PATH,
            request_serializer=ratings_api.encode,
            response_deserializer=ratings_api.decode,
        )

    async def rating(self, book_id: str) -> dict[str, Any] | None:
        try:
            answer: dict[str, Any] = await self._get({"book_id": book_id}, timeout=RATING_TIMEOUT)
        except grpc.aio.AioRpcError:
            return None
        return answer

    async def close(self) -> None:
        await self.channel.close()


BOOKS_URL = web.AppKey("books_url", str)
RATINGS = web.AppKey("ratings", RatingsClient)
SESSION = web.AppKey("session", aiohttp.ClientSession)


class UpstreamError(Exception):
    def __init__(self, message: str, books_version: str | None) -> None:
        super().__init__(message)
        self.books_version = books_version


async def catalogue(app: web.Application) -> dict[str, Any]:
    url = f"{app[BOOKS_URL]}/books"
    try:
        async with app[SESSION].get(url, timeout=UPSTREAM_TIMEOUT) as response:
            version = response.headers.get("x-books-version")
            if response.status != 200:
                raise UpstreamError(f"books answered {response.status}", version)
            books: dict[str, Any] = await response.json()
    except (aiohttp.ClientError, TimeoutError) as error:
        raise UpstreamError(f"books unreachable: {error or type(error).__name__}", None) from None
    ratings = await asyncio.gather(*(app[RATINGS].rating(b["id"]) for b in books["books"]))
    return {
        "books_version": books["version"],
        "books": [
            {**entry, "rating": rating}
            for entry, rating in zip(books["books"], ratings, strict=True)
        ],
    }


async def api_books(request: web.Request) -> web.Response:
    try:
        return web.json_response(await catalogue(request.app))
    except UpstreamError as error:
        body = {"error": str(error), "books_version": error.books_version}
        return web.json_response(body, status=502)


async def index(request: web.Request) -> web.Response:
    try:
        page = await catalogue(request.app)
    except UpstreamError as error:
        return web.Response(
            text=f"<h1>Bookshop</h1><p>{html.escape(str(error))}</p>",
            status=502,
            content_type="text/html",
        )
    rows = "".join(
        f"<tr><td>{html.escape(b['title'])}</td><td>{html.escape(b['author'])}</td>"
        f"<td>{b['rating']['stars'] if b['rating'] else 'n/a'}</td></tr>"
        for b in page["books"]
    )
    return web.Response(
        text=f"<h1>Bookshop</h1><p>books {page['books_version']}</p>"
        f"<table><tr><th>title</th><th>author</th><th>stars</th></tr>{rows}</table>",
        content_type="text/html",
    )


async def ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def make_app(books_url: str, ratings_address: str) -> web.Application:
    app = web.Application()
    app[BOOKS_URL] = books_url.rstrip("/")

    async def clients(app: web.Application) -> AsyncIterator[None]:
        app[SESSION] = aiohttp.ClientSession()
        app[RATINGS] = RatingsClient(ratings_address)
        yield
        await app[SESSION].close()
        await app[RATINGS].close()

    app.cleanup_ctx.append(clients)
    app.router.add_get("/", index)
    app.router.add_get("/api/books", api_books)
    app.router.add_get("/ready", ok)
    app.router.add_get("/live", ok)
    return app


def main() -> None:
    app = make_app(
        settings.text("BOOKS_URL", f"http://books:{settings.BOOKS_PORT}"),
        settings.text("RATINGS_ADDR", f"ratings:{settings.RATINGS_PORT}"),
    )
    web.run_app(app, port=settings.port(settings.WEB_PORT), access_log=None)


if __name__ == "__main__":
    main()
