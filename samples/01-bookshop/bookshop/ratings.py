"""The ratings service (gRPC): stars and votes per book, from a fixed table."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import grpc

from bookshop import ratings_api, settings

RATINGS = {"1": (4.6, 1280), "2": (4.7, 980), "3": (4.4, 750), "4": (4.5, 1120)}


async def get(
    request: dict[str, Any], context: grpc.aio.ServicerContext[Any, Any]
) -> dict[str, Any]:
    book_id = str(request.get("book_id", ""))
    if book_id not in RATINGS:
        await context.abort(grpc.StatusCode.NOT_FOUND, f"no ratings for book {book_id!r}")
    stars, votes = RATINGS[book_id]
    return {"book_id": book_id, "stars": stars, "votes": votes}


async def check(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    return ratings_api.SERVING


def handlers() -> list[grpc.GenericRpcHandler]:
    ratings = grpc.unary_unary_rpc_method_handler(
        get, request_deserializer=ratings_api.decode, response_serializer=ratings_api.encode
    )
    # No (de)serializers: bytes in, bytes out.
    health: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(check)
    return [
        grpc.method_handlers_generic_handler(ratings_api.SERVICE, {ratings_api.GET: ratings}),
        grpc.method_handlers_generic_handler(ratings_api.HEALTH_SERVICE, {"Check": health}),
    ]


async def start(port: int) -> tuple[grpc.aio.Server, int]:
    """A running server and the port it listens on (0 picks a free one)."""
    server = grpc.aio.server(handlers=handlers())
    bound = server.add_insecure_port(f"0.0.0.0:{port}")
    await server.start()
    return server, bound


async def serve(port: int) -> None:
    server, bound = await start(port)
    print(f"ratings: serving gRPC on port {bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(grace=5)


def main() -> None:
    asyncio.run(serve(settings.port(settings.RATINGS_PORT)))


if __name__ == "__main__":
    main()
