"""`weft tap [deploy/NAME|rollout/NAME|rs/NAME|pod/NAME|ns/NAME]`: the requests the
proxies see, live, one line each; the filters (--to, --from, --path, --method, ...)
apply at the proxies.

Tap connects to each proxy's tap port (4190) at its pod IP, so it runs where pod IPs
are reachable (the cluster's network, or the local cluster's machine); from elsewhere,
port-forward that port and list it in a --proxies-file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import yaml
from rich.text import Text

from weft_cli import output
from weft_cli.observe import tap_events
from weft_cli.observe.session import Session, parse_duration
from weft_cli.observe.tap_events import Observed
from weft_cli.options import OBSERVE_EPILOG, add_watch_arguments

Printer = Callable[[Observed, Mapping[str, str]], None]


def register(topics: Any) -> None:
    parser = topics.add_parser(
        "tap",
        help="watch the requests the proxies see, live",
        description=__doc__,
        epilog=OBSERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_watch_arguments(parser)
    parser.add_argument("--limit", type=int, default=0, help="stop after this many requests")
    parser.set_defaults(run=run)


def _style(event: Observed) -> str:
    return "red" if not event.success else "yellow" if event.status >= 400 else "green"


def printer(fmt: str) -> Printer:
    """One event at a time: a line (colored on a terminal), a JSON line, a YAML document."""
    if fmt == output.JSON:
        return lambda event, _: print(json.dumps(event.as_dict()), flush=True)
    if fmt == output.YAML:
        return lambda event, _: print(
            "---\n" + yaml.safe_dump(event.as_dict(), sort_keys=False), end="", flush=True
        )
    if not output.on_terminal():
        return lambda event, names: print(tap_events.line(event, names), flush=True)
    console = output.stdout()
    return lambda event, names: console.print(
        Text(tap_events.line(event, names), style=_style(event))
    )


async def _tap(args: argparse.Namespace) -> None:
    from weft_cli.observe.watching import watch  # gRPC: loaded when used

    duration = parse_duration(args.duration, "--duration") if args.duration else None
    show = printer(args.output)
    async with Session(args) as session:
        names, events = await watch(session, args, args.limit)
        seen = 0
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(duration):
                    async for event in events:
                        if event.dropped_before:
                            output.warn(f"{event.proxy} dropped {event.dropped_before} events")
                        show(event, names)
                        seen += 1
                        if args.limit and seen >= args.limit:
                            break
        finally:
            await events.aclose()


def run(args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt):  # the usual way to stop watching
        asyncio.run(_tap(args))
    return 0
