"""A request's body as it streams from the client: an async generator, kept out of the
compiled `http1_server` (mypyc compiles no async generator; docs/architecture.md,
"Compiled modules")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from weft_proxy.io.http1_errors import ClientGone
from weft_proxy.protocols.http1 import Body, EndOfMessage, Trailers

if TYPE_CHECKING:
    from weft_proxy.io.http1_server import ClientStream


async def request_body(stream: ClientStream) -> AsyncIterator[bytes]:
    """The current request's body, up to its end; its trailers then in `trailers`."""
    stream.trailers = None
    while True:
        event = await stream.next_event()
        if event is None:
            raise ClientGone("client closed mid-body")
        if isinstance(event, EndOfMessage):
            return
        if isinstance(event, Body):
            yield event.data
        elif isinstance(event, Trailers):
            stream.trailers = event.headers
