"""The books service (HTTP/1.1): the catalogue, in two versions for the canary demo.

v2 adds each book's formats. Either version fails on demand, for rollbacks: the share
of requests answered 500 comes from BOOKS_FAILURE_RATE (0 to 1), and can be changed
while running with `POST /admin/failure-rate` and a body such as `0.5`.
"""

from __future__ import annotations

import random
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from bookshop import settings

CATALOGUE = [
    {"id": "1", "title": "The Left Hand of Darkness", "author": "Ursula K. Le Guin"},
    {"id": "2", "title": "Kindred", "author": "Octavia E. Butler"},
    {"id": "3", "title": "The Dispossessed", "author": "Ursula K. Le Guin"},
    {"id": "4", "title": "Parable of the Sower", "author": "Octavia E. Butler"},
]
FORMATS = ["paperback", "ebook"]
VERSION = web.AppKey("version", str)
FAILURE_RATE = web.AppKey("failure_rate", list)  # one float, mutable


def book(entry: dict[str, str], version: str) -> dict[str, Any]:
    return {**entry, "formats": FORMATS} if version == "v2" else dict(entry)


@web.middleware
async def versioned(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer says which version gave it; some fail while a failure rate is set."""
    version = request.app[VERSION]
    serving = not request.path.startswith("/admin") and request.path not in ("/ready", "/live")
    if serving and random.random() < request.app[FAILURE_RATE][0]:
        raise web.HTTPInternalServerError(
            text='{"error": "injected failure"}',
            content_type="application/json",
            headers={"x-books-version": version},
        )
    response = await handler(request)
    response.headers["x-books-version"] = version
    return response


async def list_books(request: web.Request) -> web.Response:
    version = request.app[VERSION]
    return web.json_response({"version": version, "books": [book(b, version) for b in CATALOGUE]})


async def get_book(request: web.Request) -> web.Response:
    for entry in CATALOGUE:
        if entry["id"] == request.match_info["id"]:
            return web.json_response(book(entry, request.app[VERSION]))
    raise web.HTTPNotFound(text='{"error": "no such book"}', content_type="application/json")


async def failure_rate(request: web.Request) -> web.Response:
    if request.method == "POST":
        try:
            rate = float(await request.text())
        except ValueError:
            raise web.HTTPBadRequest(text="the body is a number from 0 to 1") from None
        request.app[FAILURE_RATE][0] = min(max(rate, 0.0), 1.0)
    return web.json_response({"failure_rate": request.app[FAILURE_RATE][0]})


async def ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def make_app(version: str, failure_rate_value: float) -> web.Application:
    app = web.Application(middlewares=[versioned])
    app[VERSION] = version
    app[FAILURE_RATE] = [failure_rate_value]
    app.router.add_get("/books", list_books)
    app.router.add_get("/books/{id}", get_book)
    app.router.add_route("*", "/admin/failure-rate", failure_rate)
    app.router.add_get("/ready", ok)
    app.router.add_get("/live", ok)
    return app


def main() -> None:
    app = make_app(settings.text("BOOKS_VERSION", "v1"), settings.number("BOOKS_FAILURE_RATE", 0.0))
    web.run_app(app, port=settings.port(settings.BOOKS_PORT), access_log=None)


if __name__ == "__main__":
    main()
