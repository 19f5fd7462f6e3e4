"""`weft edges`: which workloads talk to which, with the identities each side
proved (mTLS). Edges start at the clients in the namespace (or every namespace)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from weft_cli import output
from weft_cli.observe import format as fmt
from weft_cli.observe.edges import edges
from weft_cli.observe.session import Session, measure, namespace_of
from weft_cli.options import OBSERVE_EPILOG, add_scope_options, add_source_options


def register(topics: Any) -> None:
    parser = topics.add_parser(
        "edges",
        help="who talks to whom, with their identities",
        description=__doc__,
        epilog=OBSERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_scope_options(parser)
    add_source_options(parser)
    parser.set_defaults(run=run)


def secured_cell(secured: bool, reason: str) -> str:
    return "yes" if secured else f"no ({reason})" if reason else "no"


async def _edges(args: argparse.Namespace) -> output.Report:
    async with Session(args) as session:
        pods, window = await measure(session, namespace_of(args))
    rows = edges(pods, window)
    headers = ["SRC", "DST", "CLIENT_ID", "SERVER_ID", "MTLS", "RPS", "SUCCESS"]
    cells = [
        [
            f"{row.src_namespace}/{row.src}",
            f"{row.dst_namespace}/{row.dst}",
            row.client_id or fmt.DASH,
            row.server_id or fmt.DASH,
            secured_cell(row.secured, row.no_tls_reason),
            fmt.rate(row.figures.rps),
            fmt.percent(row.figures.success),
        ]
        for row in rows
    ]
    return output.Report(headers, cells, [row.as_dict() for row in rows])


def run(args: argparse.Namespace) -> int:
    report = asyncio.run(_edges(args))
    output.show(report, args.output, right_aligned=("RPS", "SUCCESS"), empty="no traffic seen")
    return 0
