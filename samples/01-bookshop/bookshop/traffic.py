"""A steady client of the web front, for the demo: TARGET_URL at RPS requests a second,
with a line of counts by status every REPORT_SECONDS."""

from __future__ import annotations

import asyncio
import collections
import time

import aiohttp

from bookshop import settings

TIMEOUT = aiohttp.ClientTimeout(total=5.0)


async def one(session: aiohttp.ClientSession, url: str, counts: collections.Counter[str]) -> None:
    try:
        async with session.get(url, timeout=TIMEOUT) as response:
            await response.read()
            counts[str(response.status)] += 1
    except (aiohttp.ClientError, TimeoutError) as error:
        counts[type(error).__name__] += 1


async def run(url: str, rps: float, report_seconds: float) -> None:
    counts: collections.Counter[str] = collections.Counter()
    pending: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession() as session:
        next_report = time.monotonic() + report_seconds
        while True:
            task = asyncio.create_task(one(session, url, counts))
            pending.add(task)
            task.add_done_callback(pending.discard)
            await asyncio.sleep(1 / rps)
            if time.monotonic() >= next_report:
                print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "-", flush=True)
                counts.clear()
                next_report += report_seconds


def main() -> None:
    url = settings.text("TARGET_URL", f"http://web:{settings.WEB_PORT}/api/books")
    asyncio.run(run(url, settings.number("RPS", 5), settings.number("REPORT_SECONDS", 10)))


if __name__ == "__main__":
    main()
