"""Jittered exponential backoff between reconnections."""

from __future__ import annotations

import random


class Backoff:
    """Delays growing from `base` to `cap`, each drawn from the upper half of its step
    ("equal jitter"): a thousand proxies cut off at once do not come back at once, and
    none hammers a control plane that is down."""

    def __init__(self, base: float = 0.25, cap: float = 10.0, rng: random.Random | None = None):
        self.base = base
        self.cap = cap
        self._rng = rng or random.Random()
        self._attempt = 0

    def next(self) -> float:
        step = min(self.cap, self.base * 2**self._attempt)
        self._attempt = min(self._attempt + 1, 32)
        return self._rng.uniform(step / 2, step)

    def reset(self) -> None:
        self._attempt = 0
