"""A watchable holder of the newest config snapshot.

Snapshots are immutable and replaced whole, so a reader holds one consistent config
for as long as it likes (never a torn one); a reader slower than the updates skips to
the newest.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class ConfigStore(Generic[T]):
    def __init__(self) -> None:
        self._value: T | None = None
        self._version = 0
        self._changed = asyncio.Event()

    @property
    def current(self) -> T | None:
        return self._value

    @property
    def version(self) -> int:
        """How many snapshots were published: 0 until the first."""
        return self._version

    def publish(self, value: T) -> None:
        self._value = value
        self._version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_for(self, predicate: Callable[[T], bool]) -> T:
        """The first snapshot (the current one, or a later one) that `predicate` accepts."""
        while True:
            changed = self._changed
            value = self._value
            if value is not None and predicate(value):
                return value
            await changed.wait()

    async def wait_ready(self) -> T:
        return await self.wait_for(lambda _: True)

    async def updates(self) -> AsyncIterator[T]:
        """The current snapshot if there is one, then each newer one (newest wins)."""
        seen = 0
        while True:
            changed = self._changed
            if self._version != seen and self._value is not None:
                seen = self._version
                yield self._value
                continue
            await changed.wait()
