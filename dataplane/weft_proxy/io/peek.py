"""Read a connection's first bytes until detection decides, without losing them."""

from __future__ import annotations

import asyncio

from weft_proxy.protocols.detect import DETECT_TIMEOUT_S, Detected, NeedMore, detect


async def detect_protocol(
    reader: asyncio.StreamReader, patience: float = DETECT_TIMEOUT_S
) -> tuple[Detected, bytes]:
    """The protocol of the connection and every byte read to decide it.

    After `patience` seconds or at EOF the decision is taken with what arrived (`final`), so a
    server-first protocol falls back to opaque TCP after `patience`.
    """
    buffer = b""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while True:
        outcome = detect(buffer)
        if isinstance(outcome, Detected):
            return outcome, buffer
        assert isinstance(outcome, NeedMore)
        remaining = deadline - loop.time()
        try:
            if remaining <= 0:
                raise TimeoutError
            data = await asyncio.wait_for(reader.read(outcome.at_least - len(buffer)), remaining)
        except TimeoutError:
            data = b""
        if not data:
            final = detect(buffer, final=True)
            assert isinstance(final, Detected)
            return final, buffer
        buffer += data
