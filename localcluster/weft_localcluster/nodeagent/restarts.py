"""Whether an exited container restarts, and after what crash-loop delay (pure)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(enum.Enum):
    INIT = "init"  # runs to completion, in order, before the others
    SIDECAR = "sidecar"  # an init container with restartPolicy Always: keeps running
    MAIN = "main"  # spec.containers


def should_restart(kind: Kind, pod_restart_policy: str, exit_code: int) -> bool:
    if kind is Kind.SIDECAR:
        return True
    if kind is Kind.INIT:
        return exit_code != 0 and pod_restart_policy != "Never"
    if pod_restart_policy == "Always":
        return True
    return pod_restart_policy == "OnFailure" and exit_code != 0


@dataclass
class CrashBackoff:
    """The kubelet's delays: the first restart at once, then 10 s doubling to 5 min.

    A container that has not needed a restart for twice the maximum starts over.
    """

    initial: float = 10.0
    maximum: float = 300.0
    _delay: float = 0.0
    _last_exit: float | None = None

    def delay_after_exit(self, now: float) -> float:
        if self._last_exit is not None and now - self._last_exit > 2 * self.maximum:
            self._delay = 0.0
        delay = self._delay
        self._delay = self.initial if delay == 0 else min(delay * 2, self.maximum)
        self._last_exit = now
        return delay
