"""Where traffic figures come from, behind two small interfaces: a directory of pods
(the API server, or a proxies file) and a metrics source giving a window of traffic
(two scrapes of the proxies' admin endpoints a window apart, or Prometheus)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from weft_cli.errors import CliError
from weft_cli.observe.exposition import Sample, parse
from weft_cli.observe.pods import PodInfo
from weft_cli.observe.window import Window, from_scrapes

CONCURRENT_SCRAPES = 16


class ProxyUnreachable(CliError):
    """A proxy's admin endpoint did not answer (or not with metrics)."""


class Directory(Protocol):
    async def pods(self, namespace: str | None) -> list[PodInfo]:
        """Pods of `namespace` (None: every namespace), meshed or not."""
        ...


class MetricsSource(Protocol):
    async def window(self, pods: Sequence[PodInfo], seconds: float) -> Window:
        """Traffic of `pods` over the next (or, from Prometheus, the last) `seconds`."""
        ...


class Scraper(Protocol):
    async def scrape(self, pod: PodInfo) -> str:
        """The proxy's /metrics text; raises ProxyUnreachable."""
        ...


def scraped(pod: PodInfo) -> bool:
    """Only a running meshed pod has a proxy to ask."""
    return pod.meshed and pod.phase in ("Running", "")


class ScrapedWindow:
    """Reads every proxy twice, `seconds` apart: counters give rates only as deltas."""

    def __init__(
        self, scraper: Scraper, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        self.scraper = scraper
        self.sleep = sleep

    async def _read(self, pods: Sequence[PodInfo]) -> list[list[Sample] | str]:
        """Samples per pod, or why it gave none."""
        limit = asyncio.Semaphore(CONCURRENT_SCRAPES)

        async def one(pod: PodInfo) -> list[Sample] | str:
            async with limit:
                try:
                    return parse(await self.scraper.scrape(pod))
                except ProxyUnreachable as error:
                    return str(error)
                except ValueError as error:
                    return f"the proxy of pod {pod.ref} answered no metrics: {error}"

        return list(await asyncio.gather(*(one(pod) for pod in pods)))

    async def window(self, pods: Sequence[PodInfo], seconds: float) -> Window:
        asked = [pod for pod in pods if scraped(pod)]
        started = time.monotonic()
        first = await self._read(asked)
        await self.sleep(seconds)
        elapsed = time.monotonic() - started
        second = await self._read(asked)
        answered, silent = [], []
        for pod, before, after in zip(asked, first, second, strict=True):
            if isinstance(before, str) or isinstance(after, str):
                silent.append(before if isinstance(before, str) else str(after))
            else:
                answered.append((pod, before, after))
        if asked and not answered:
            raise ProxyUnreachable(
                silent[0] if len(silent) == 1 else f"no proxy answered; {silent[0]}"
            )
        return from_scrapes(elapsed, answered, silent)
