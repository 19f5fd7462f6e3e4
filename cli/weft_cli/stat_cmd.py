"""`weft stat deploy|rollout|rs|pod|ns|ts|sp [NAME]`: golden metrics from the proxies.

The name may also follow the kind after a slash, as linkerd viz takes it: `rollout/web`.

Workloads (deploy, rollout, rs, pod, ns) as their own proxies see the requests they serve; a
TrafficSplit (ts) per backend, its weight next to the traffic it really got (the
canary view); a ServiceProfile (sp) as its Service's clients see it. Splits and
profiles are measured from the clients in their own namespace.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from weft_cli import output
from weft_cli.errors import CliError
from weft_cli.observe import format as fmt
from weft_cli.observe.routes import profile_stats
from weft_cli.observe.session import (
    Session,
    measure,
    namespace_of,
    one_namespace,
    traffic,
    window_seconds,
)
from weft_cli.observe.splits import split_stats
from weft_cli.observe.stats import (
    DEPLOYMENT,
    NAMESPACE,
    POD,
    REPLICA_SET,
    ROLLOUT,
    counted_under,
    workload_stats,
)
from weft_cli.options import OBSERVE_EPILOG, add_scope_options, add_source_options

TRAFFIC_SPLIT, SERVICE_PROFILE = "trafficsplit", "serviceprofile"
KIND_NAMES = {
    DEPLOYMENT: ("deploy", "deployment", "deployments"),
    ROLLOUT: ("ro", "rollout", "rollouts"),  # Argo Rollouts' short name is `ro`
    REPLICA_SET: ("rs", "replicaset", "replicasets"),
    POD: ("po", "pod", "pods"),
    NAMESPACE: ("ns", "namespace", "namespaces"),
    TRAFFIC_SPLIT: ("ts", "trafficsplit", "trafficsplits"),
    SERVICE_PROFILE: ("sp", "serviceprofile", "serviceprofiles"),
}
ALIASES = {alias: kind for kind, aliases in KIND_NAMES.items() for alias in aliases}
NUMERIC = (*fmt.GOLDEN_HEADERS, "MESHED", "TCP_CONN", "TRAFFIC", "ROUTES")


def kind_and_name(text: str) -> tuple[str, str | None]:
    """`rollout` or `rollout/web`: the kind, and the name written with it."""
    alias, slash, name = text.partition("/")
    if alias not in ALIASES or (slash and not name) or "/" in name:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not KIND or KIND/NAME, KIND one of: {', '.join(sorted(ALIASES))}"
        )
    return ALIASES[alias], name or None


def register(topics: Any) -> None:
    parser = topics.add_parser(
        "stat",
        help="success rate, requests per second and latency, from the proxies",
        description=__doc__,
        epilog=OBSERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("kind", type=kind_and_name, metavar="deploy|rollout|rs|pod|ns|ts|sp[/NAME]")
    parser.add_argument("name", nargs="?", help="only this one")
    parser.add_argument("--cluster-domain", default="cluster.local", help="of ServiceProfile names")
    add_scope_options(parser)
    add_source_options(parser)
    parser.set_defaults(run=run)


async def workloads(session: Session, kind: str) -> output.Report:
    args = session.args
    namespace = None if kind == NAMESPACE and not args.namespace else namespace_of(args)
    window_seconds(args)  # a bad option fails before any I/O
    pods = await (await session.directory()).pods(namespace)
    if args.name and not any(counted_under(kind, pod) == args.name for pod in pods):
        where = f" in namespace {namespace}" if namespace and kind != NAMESPACE else ""
        raise CliError(f"no pods of {kind} {args.name}{where}")
    window = await traffic(session, pods)
    rows = workload_stats(kind, pods, window, args.name)
    with_namespace = kind != NAMESPACE and namespace is None
    headers = ["NAME", "MESHED", *fmt.GOLDEN_HEADERS, "TCP_CONN"]
    cells = [
        [
            row.name,
            f"{row.meshed}/{row.pods}",
            *fmt.golden_cells(row.figures),
            fmt.count(row.figures.tcp_connections),
        ]
        for row in rows
    ]
    if with_namespace:
        headers = ["NAMESPACE", *headers]
        cells = [[row.namespace, *cell] for row, cell in zip(rows, cells, strict=True)]
    return output.Report(headers, cells, [row.as_dict() for row in rows])


def weight_cell(written: str, share: float | None) -> str:
    return written if share is None else f"{written} ({fmt.percent(share)})"


async def splits(session: Session) -> output.Report:
    from weft_cli.observe import resources  # the operator's parsers: loaded when used

    args = session.args
    namespace = one_namespace(args, "stat ts")
    found, invalid = await resources.traffic_splits(await session.kube(), namespace, args.name)
    for line in invalid:
        output.warn(line)
    _, window = await measure(session, namespace)
    rows = [row for split in found for row in split_stats(split, window, args.cluster_domain)]
    headers = ["TRAFFICSPLIT", "APEX", "BACKEND", "WEIGHT", "TRAFFIC", *fmt.GOLDEN_HEADERS]
    cells = [
        [
            row.split,
            row.apex,
            row.backend,
            weight_cell(row.weight, row.weight_share),
            fmt.percent(row.traffic_share),
            *fmt.golden_cells(row.figures),
        ]
        for row in rows
    ]
    return output.Report(headers, cells, [row.as_dict() for row in rows])


async def profiles(session: Session) -> output.Report:
    from weft_cli.observe import resources  # the operator's parsers: loaded when used

    args = session.args
    namespace = one_namespace(args, "stat sp")
    kube = await session.kube()
    found, invalid = await resources.service_profiles(
        kube, namespace, args.name, args.cluster_domain
    )
    for line in invalid:
        output.warn(line)
    _, window = await measure(session, namespace)
    rows = [profile_stats(profile, window) for profile in found]
    headers = ["SERVICEPROFILE", "SERVICE", "ROUTES", *fmt.GOLDEN_HEADERS]
    cells = [
        [row.name, row.service, str(row.routes), *fmt.golden_cells(row.figures)] for row in rows
    ]
    return output.Report(headers, cells, [row.as_dict() for row in rows])


async def _stat(args: argparse.Namespace) -> output.Report:
    kind, named = args.kind
    if named is not None:
        if args.name is not None and args.name != named:
            raise CliError(f"two names given: {named} (in {kind}/{named}) and {args.name}")
        args.name = named
    async with Session(args) as session:
        if kind == TRAFFIC_SPLIT:
            return await splits(session)
        if kind == SERVICE_PROFILE:
            return await profiles(session)
        return await workloads(session, kind)


def run(args: argparse.Namespace) -> int:
    report = asyncio.run(_stat(args))
    output.show(report, args.output, right_aligned=NUMERIC, empty="no resources found")
    return 0
