"""`weft routes [SERVICE]`: traffic per ServiceProfile route, as the Service's clients
(in its namespace) got it, after retries; `[DEFAULT]` counts requests that matched no
route. ACTUAL_SUCCESS and ACTUAL_RPS count every attempt, retries included: a route
whose success is high but actual success low is being saved by retries."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from weft_cli import output
from weft_cli.observe import format as fmt
from weft_cli.observe.routes import route_stats
from weft_cli.observe.session import Session, measure, one_namespace
from weft_cli.options import OBSERVE_EPILOG, add_scope_options, add_source_options

ACTUAL_HEADERS = ("ACTUAL_SUCCESS", "ACTUAL_RPS")


def register(topics: Any) -> None:
    parser = topics.add_parser(
        "routes",
        help="traffic per ServiceProfile route",
        description=__doc__,
        epilog=OBSERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("service", nargs="?", help="only the profile of this Service")
    parser.add_argument("--cluster-domain", default="cluster.local")
    add_scope_options(parser)
    add_source_options(parser)
    parser.set_defaults(run=run)


async def _routes(args: argparse.Namespace) -> output.Report:
    from weft_cli.observe import resources  # the operator's parsers: loaded when used

    namespace = one_namespace(args, "routes")
    async with Session(args) as session:
        profiles, invalid = await resources.service_profiles(
            await session.kube(), namespace, args.service, args.cluster_domain
        )
        for line in invalid:
            output.warn(line)
        _, window = await measure(session, namespace)
    rows = [row for profile in profiles for row in route_stats(profile, window)]
    headers = ["SERVICE", "ROUTE", *fmt.GOLDEN_HEADERS, *ACTUAL_HEADERS]
    cells = [
        [
            row.service,
            row.route,
            *fmt.golden_cells(row.figures),
            fmt.percent(row.actual.success),
            fmt.rate(row.actual.rps),
        ]
        for row in rows
    ]
    return output.Report(headers, cells, [row.as_dict() for row in rows])


def run(args: argparse.Namespace) -> int:
    report = asyncio.run(_routes(args))
    empty = "no ServiceProfiles here: routes are declared by ServiceProfiles"
    aligned = (*fmt.GOLDEN_HEADERS, *ACTUAL_HEADERS)
    output.show(report, args.output, right_aligned=aligned, empty=empty)
    return 0
