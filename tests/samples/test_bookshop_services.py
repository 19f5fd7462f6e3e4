"""The bookshop's services on loopback, talking to each other as they do in the mesh:
web -> books over HTTP/1.1, web -> ratings over gRPC (JSON messages)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import grpc
import pytest
from aiohttp import web
from bookshop import books, ratings, ratings_api
from bookshop import web as front


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


@dataclass
class Shop:
    books_url: str
    web_url: str
    ratings_server: grpc.aio.Server


@pytest.fixture
async def shop() -> AsyncIterator[Shop]:
    books_runner, books_url = await serve(books.make_app("v2", 0.0))
    server, ratings_port = await ratings.start(0)
    web_runner, web_url = await serve(front.make_app(books_url, f"127.0.0.1:{ratings_port}"))
    yield Shop(books_url, web_url, server)
    await web_runner.cleanup()
    await server.stop(grace=None)
    await books_runner.cleanup()


async def get(url: str) -> tuple[int, dict[str, object], dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json(), dict(response.headers)


async def test_the_front_joins_books_and_their_ratings(shop: Shop) -> None:
    status, page, _ = await get(f"{shop.web_url}/api/books")
    assert status == 200
    assert page["books_version"] == "v2"
    first = page["books"][0]  # type: ignore[index]
    assert first["formats"] == ["paperback", "ebook"]  # v2 only
    assert first["rating"] == {"book_id": "1", "stars": 4.6, "votes": 1280}


async def test_books_fails_on_demand_and_the_front_reports_it(shop: Shop) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{shop.books_url}/admin/failure-rate", data="1") as response:
            assert await response.json() == {"failure_rate": 1.0}
        async with session.get(f"{shop.books_url}/ready") as response:
            assert response.status == 200  # probes still pass: only requests fail
    status, body, headers = await get(f"{shop.books_url}/books/1")
    assert (status, headers["x-books-version"]) == (500, "v2")
    status, body, _ = await get(f"{shop.web_url}/api/books")
    assert (status, body) == (502, {"error": "books answered 500", "books_version": "v2"})


async def test_a_missing_rating_degrades_the_page_rather_than_failing_it(shop: Shop) -> None:
    await shop.ratings_server.stop(grace=None)
    status, page, _ = await get(f"{shop.web_url}/api/books")
    assert status == 200
    assert {b["rating"] for b in page["books"]} == {None}  # type: ignore[union-attr]


async def test_ratings_answer_unknown_books_with_not_found_and_health_checks() -> None:
    server, port = await ratings.start(0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            get_rating = channel.unary_unary(
                ratings_api.GET_PATH,
                request_serializer=ratings_api.encode,
                response_deserializer=ratings_api.decode,
            )
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await get_rating({"book_id": "999"})
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
            check = channel.unary_unary(f"/{ratings_api.HEALTH_SERVICE}/Check")
            assert await check(b"") == ratings_api.SERVING
    finally:
        await server.stop(grace=None)
