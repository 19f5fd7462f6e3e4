"""A client address told to calm down (HTTP/2 GOAWAY ENHANCE_YOUR_CALM) waits before its
next connection is served.

Closing a flooding connection is not enough: the flooder reconnects at once, and each
new connection (accept, detection, an HTTP/2 session) costs the proxy more than the
frames it may still send. Its next connections are served only after PENALTY_S, so one
address can flood at most once a penalty, while every other address is served as usual.
Inbound only: each pod has an address of its own there, whereas outbound every
connection comes from the pod's own application.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

from weft_proxy.policies.clock import Clock

PENALTY_S: Final = 1.0
MAX_ADDRESSES: Final = 4096  # the oldest penalties go first past this


class PenaltyBox:
    __slots__ = ("_clock", "_until", "penalty_s")

    def __init__(self, clock: Clock, penalty_s: float = PENALTY_S) -> None:
        self._clock = clock
        self.penalty_s = penalty_s
        self._until: OrderedDict[str, float] = OrderedDict()

    def punish(self, address: str) -> None:
        self._until[address] = self._clock() + self.penalty_s
        self._until.move_to_end(address)
        while len(self._until) > MAX_ADDRESSES:
            self._until.popitem(last=False)

    def wait(self, address: str) -> float:
        """Seconds a new connection from `address` waits before it is served."""
        until = self._until.get(address)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            del self._until[address]
            return 0.0
        return left
