"""`weft top [deploy/NAME|rollout/NAME|rs/NAME|pod/NAME|ns/NAME]`: the busiest paths, live, from the
proxies' tap: how often each was called, its latency range and success rate.

On a terminal the table refreshes until interrupted (or --duration); otherwise it
watches for --duration (default 10s) and prints the table once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from typing import Any

from rich.live import Live
from rich.table import Table

from weft_cli import output
from weft_cli.observe import format as fmt
from weft_cli.observe.session import Session, parse_duration
from weft_cli.observe.top import TopRow, TopTable
from weft_cli.options import OBSERVE_EPILOG, add_watch_arguments

UNWATCHED_DURATION = "10s"
REFRESH_SECONDS = 0.5  # a busy mesh sends many events: redraw at most this often
HEADERS = ("SOURCE", "DESTINATION", "METHOD", "PATH", "COUNT", "BEST", "WORST", "LAST", "SUCCESS")
NUMERIC = ("COUNT", "BEST", "WORST", "LAST", "SUCCESS")


def register(topics: Any) -> None:
    parser = topics.add_parser(
        "top",
        help="the busiest paths, live",
        description=__doc__,
        epilog=OBSERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_watch_arguments(parser)
    parser.add_argument("--rows", type=int, default=20, help="how many paths to show")
    parser.set_defaults(run=run)


def cells(row: TopRow) -> list[str]:
    stats = row.stats
    return [
        row.source,
        row.destination,
        row.method,
        row.path,
        str(stats.count),
        fmt.milliseconds(stats.best_ms),
        fmt.milliseconds(stats.worst_ms),
        fmt.milliseconds(stats.last_ms),
        fmt.percent(stats.successes / stats.count if stats.count else None),
    ]


def live_table(top: TopTable, rows: int) -> Table:
    caption = f"{top.dropped} events dropped by slow reading" if top.dropped else None
    return output.rich_table(HEADERS, [cells(row) for row in top.rows(rows)], NUMERIC, caption)


async def _top(args: argparse.Namespace, live: Live | None) -> TopTable:
    from weft_cli.observe.watching import watch  # gRPC: loaded when used

    text = args.duration or (None if live else UNWATCHED_DURATION)
    duration = parse_duration(text, "--duration") if text else None
    async with Session(args) as session:
        names, events = await watch(session, args)
        top = TopTable(names)
        drawn = 0.0
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(duration):
                    async for event in events:
                        top.add(event)
                        if live is not None and time.monotonic() - drawn > REFRESH_SECONDS:
                            live.update(live_table(top, args.rows), refresh=True)
                            drawn = time.monotonic()
        finally:
            await events.aclose()
    return top


def run(args: argparse.Namespace) -> int:
    if output.on_terminal() and args.output == output.TABLE:
        with (
            Live(console=output.stdout(), auto_refresh=False) as live,
            contextlib.suppress(KeyboardInterrupt),
        ):
            top = asyncio.run(_top(args, live))
            live.update(live_table(top, args.rows), refresh=True)
        return 0
    top = asyncio.run(_top(args, None))
    rows = top.rows(args.rows)
    report = output.Report(HEADERS, [cells(row) for row in rows], [row.as_dict() for row in rows])
    output.show(report, args.output, right_aligned=NUMERIC, empty="no requests seen")
    return 0
