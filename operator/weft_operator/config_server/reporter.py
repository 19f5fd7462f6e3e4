"""Writes data-plane convergence into each object's status (`Programmed`, `proxies`).

At most one write per object per `min_gap` seconds: while proxies ACK one by one, an
object goes from "0/12 proxies" to "12/12 proxies" in a few writes, not twelve.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from weft_operator.conditions import Convergence
from weft_operator.config_server.hub import ConfigHub
from weft_operator.reconciler import Action, Reconciler
from weft_resources.base import ObjectKey

log = logging.getLogger(__name__)

CarryOut = Callable[[list[Action]], Awaitable[None]]


class ConvergenceReporter:
    def __init__(
        self,
        hub: ConfigHub,
        reconciler: Reconciler,
        carry_out: CarryOut,
        *,
        interval: float = 0.25,
        min_gap: float = 1.0,
    ) -> None:
        self.hub = hub
        self.reconciler = reconciler
        self.carry_out = carry_out
        self.interval = interval
        self.min_gap = min_gap
        self._reported: dict[ObjectKey, Convergence] = {}
        self._written_at: dict[ObjectKey, float] = {}
        self._epoch = -1
        self._deferred = False

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.report_once()
            except Exception:  # a failed round must not stop the next ones
                log.exception("cannot report convergence")

    async def report_once(self) -> None:
        # Counts are exact only once every session is rebuilt from the current index.
        if not self.hub.serving or not self.hub.settled:
            return
        if self.hub.epoch == self._epoch and not self._deferred:
            return
        self._epoch, self._deferred = self.hub.epoch, False
        now = asyncio.get_running_loop().time()
        current = self.hub.convergence()
        for key in self._reported.keys() - current.keys():  # deleted objects
            self._reported.pop(key, None)
            self._written_at.pop(key, None)
        for key, convergence in current.items():
            if self._reported.get(key) == convergence:
                continue
            if now - self._written_at.get(key, -self.min_gap) < self.min_gap:
                self._deferred = True
                continue
            self._reported[key] = convergence
            self._written_at[key] = now
            await self.carry_out(self.reconciler.report_convergence(key, convergence))
