"""A request body as the attempts of one request send it: streamed to the first, and, on
a retryable route, kept (up to MAX_RETRYABLE_BODY_BYTES) so that a retry can send it
again and go on with the rest.

The first attempt never waits for the body to be buffered: a client streaming slowly, or
one waiting for the response before sending more (a bidi gRPC call), is not held up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from weft_proxy.policies.retry import MAX_RETRYABLE_BODY_BYTES


class RequestBody:
    __slots__ = ("_keeping", "_kept", "_kept_bytes", "_source", "_unsafe", "whole")

    def __init__(self, source: bytes | AsyncIterator[bytes], *, retryable: bool) -> None:
        self.whole = source if isinstance(source, bytes) else None
        self._source = source if not isinstance(source, bytes) else None
        self._keeping = retryable and self.whole is None
        self._kept: list[bytes] = []
        self._kept_bytes = 0
        self._unsafe = False  # an attempt was cancelled while reading the client

    def for_attempt(self) -> bytes | AsyncIterator[bytes]:
        """What the next attempt sends."""
        if self.whole is not None:
            return self.whole
        assert self._source is not None
        return self._replayed() if self._keeping else self._source

    def retryable_bytes(self) -> int | None:
        """The size of the body a retry would send again; None if it cannot be: too big,
        not kept, or its source broken by an attempt cancelled mid-read."""
        if self.whole is not None:
            return len(self.whole)
        if not self._keeping or self._unsafe:
            return None
        return self._kept_bytes

    async def _replayed(self) -> AsyncIterator[bytes]:
        for data in list(self._kept):  # the copy: this loop adds to `_kept`
            yield data
        assert self._source is not None
        while True:
            # Cancelled in here, the source generator is finalized: what it would have
            # yielded next is lost, so no retry may replay it.
            self._unsafe = True
            try:
                data = await anext(self._source)
            except StopAsyncIteration:
                self._unsafe = False
                return
            self._unsafe = False
            self._keep(data)
            yield data

    def _keep(self, data: bytes) -> None:
        if not self._keeping:
            return
        self._kept_bytes += len(data)
        if self._kept_bytes > MAX_RETRYABLE_BODY_BYTES:
            self._keeping = False  # too big to retry: stop copying
            self._kept.clear()
        else:
            self._kept.append(data)
