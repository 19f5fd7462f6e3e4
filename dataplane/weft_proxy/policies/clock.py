"""The clock that time-dependent policies take, instead of reading the time themselves."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

Clock: TypeAlias = Callable[[], float]
"""Monotonic seconds (`time.monotonic` in the proxy)."""


class ManualClock:
    """A clock that moves only when told: for tests and simulations of the policies."""

    __slots__ = ("now",)

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a monotonic clock does not go back")
        self.now += seconds
