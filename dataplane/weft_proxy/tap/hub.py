"""Request events to the watchers whose filter matches, through bounded buffers that drop
the oldest event when full: a slow watcher loses events, traffic never waits."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

BUFFER = 1024


@dataclass(frozen=True, slots=True)
class TapFilter:
    direction: str = ""
    authority: str = ""
    path_prefix: str = ""
    method: str = ""
    source_identity: str = ""
    destination: str = ""


@dataclass(slots=True)
class TapEvent:
    direction: str
    method: str
    authority: str
    path: str
    status: int
    latency_ms: float
    tls: bool
    source: str
    destination: str
    timestamp: float
    source_identity: str = ""
    destination_service: str = ""
    destination_identity: str = ""
    grpc_status: int | None = None

    def matches(self, wanted: TapFilter) -> bool:
        return (
            (not wanted.direction or wanted.direction == self.direction)
            and (not wanted.authority or wanted.authority == self.authority)
            and self.path.startswith(wanted.path_prefix)
            and (not wanted.method or wanted.method == self.method)
            and (not wanted.source_identity or wanted.source_identity == self.source_identity)
            and (
                not wanted.destination
                or wanted.destination in (self.destination, self.destination_service)
            )
        )


@dataclass
class Watcher:
    wanted: TapFilter
    buffer: deque[TapEvent] = field(default_factory=lambda: deque(maxlen=BUFFER))
    dropped: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, event: TapEvent) -> None:
        if len(self.buffer) == self.buffer.maxlen:
            self.dropped += 1  # deque(maxlen) drops the oldest as we append
        self.buffer.append(event)
        self.wake.set()

    async def next(self) -> tuple[TapEvent, int]:
        """The next event and how many were dropped before it."""
        while not self.buffer:
            self.wake.clear()
            await self.wake.wait()
        dropped, self.dropped = self.dropped, 0
        return self.buffer.popleft(), dropped


class TapHub:
    def __init__(self) -> None:
        self._watchers: list[Watcher] = []

    @property
    def watched(self) -> bool:
        """Whether anyone watches: the stacks build no event when nobody does."""
        return bool(self._watchers)

    def publish(self, event: TapEvent) -> None:
        for watcher in self._watchers:
            if event.matches(watcher.wanted):
                watcher.offer(event)

    def watch(self, wanted: TapFilter) -> Watcher:
        watcher = Watcher(wanted)
        self._watchers.append(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        self._watchers.remove(watcher)
