"""`weft top`: the busiest paths in a stream of tap events, with their latency range
and success rate."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from weft_cli.observe.tap_events import Observed, host


@dataclass
class PathStats:
    count: int = 0
    successes: int = 0
    best_ms: float = float("inf")
    worst_ms: float = 0.0
    last_ms: float = 0.0


@dataclass(frozen=True)
class TopRow:
    source: str
    destination: str
    method: str
    path: str
    stats: PathStats

    def as_dict(self) -> dict[str, Any]:
        s = self.stats
        return {
            "source": self.source,
            "destination": self.destination,
            "method": self.method,
            "path": self.path,
            "count": s.count,
            "best_ms": s.best_ms,
            "worst_ms": s.worst_ms,
            "last_ms": s.last_ms,
            "success": s.successes / s.count if s.count else None,
        }


class TopTable:
    def __init__(self, names: Mapping[str, str]) -> None:
        self.names = names  # pod IP -> namespace/pod
        self.paths: dict[tuple[str, str, str, str], PathStats] = {}
        self.dropped = 0

    def add(self, event: Observed) -> None:
        self.dropped += event.dropped_before
        source = self.names.get(host(event.source), host(event.source))
        destination = event.destination_service or self.names.get(
            host(event.destination), host(event.destination)
        )
        stats = self.paths.setdefault((source, destination, event.method, event.path), PathStats())
        stats.count += 1
        stats.successes += event.success
        stats.best_ms = min(stats.best_ms, event.latency_ms)
        stats.worst_ms = max(stats.worst_ms, event.latency_ms)
        stats.last_ms = event.latency_ms

    def rows(self, limit: int) -> list[TopRow]:
        busiest = sorted(self.paths.items(), key=lambda item: (-item[1].count, item[0]))
        return [TopRow(*key, stats) for key, stats in busiest[:limit]]
