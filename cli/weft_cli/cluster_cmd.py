"""`weft cluster up | down | status | env`: the local Kubernetes control plane."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from weft_localcluster import go_tools, rollouts_build
from weft_localcluster.build import BuildError, ensure_binaries, ensure_prometheus
from weft_localcluster.cluster import DEFAULT_API_PORT, ClusterError, LocalCluster
from weft_localcluster.paths import default_state_dir


def register(topics: Any) -> None:
    parser = topics.add_parser("cluster", help="run a local Kubernetes control plane")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="cluster state folder (default: $WEFT_CLUSTER_DIR or ~/.local/state/weft/cluster)",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = actions.add_parser("build", help="build the binaries and helm once (cached)")
    build.add_argument(
        "--test-tools",
        action="store_true",
        help="also build what the e2e suite runs for real (Prometheus, Flagger, Argo Rollouts)",
    )
    build.set_defaults(run=_build)
    up = actions.add_parser("up", help="build (once) and start etcd and the control plane")
    up.add_argument(
        "--port", type=int, default=DEFAULT_API_PORT, help="API server port (0: any free)"
    )
    up.set_defaults(run=_up)
    actions.add_parser("down", help="stop the cluster and remove its state").set_defaults(run=_down)
    actions.add_parser("status", help="show each component").set_defaults(run=_status)
    actions.add_parser("env", help="print shell exports for kubectl").set_defaults(run=_env)


def _cluster(args: argparse.Namespace) -> LocalCluster:
    return LocalCluster(args.state_dir or default_state_dir())


def _fail(message: str) -> int:
    Console(stderr=True).print(f"[red]error:[/] {message}", highlight=False)
    return 1


def _build(args: argparse.Namespace) -> int:
    try:
        binaries = ensure_binaries()
        helm = go_tools.ensure_tool(go_tools.HELM)  # the charts' tests install with it
        # The controllers the e2e suite drives for real: `make test` builds them, `make
        # demo` need not wait for them (a cold Argo Rollouts build takes minutes).
        tools = [str(helm)]
        if args.test_tools:
            tools.append(str(ensure_prometheus()))
            tools.append(str(go_tools.ensure_tool(go_tools.FLAGGER)))
            tools.append(str(rollouts_build.ensure_rollouts()))
    except BuildError as exc:
        return _fail(str(exc))
    Console(stderr=True).print(
        f"binaries ready: {binaries.etcd.parent}, {binaries.kubernetes_dir}, {', '.join(tools)}"
    )
    return 0


def _up(args: argparse.Namespace) -> int:
    try:
        info = _cluster(args).up(api_port=args.port)
    except (ClusterError, BuildError) as exc:
        return _fail(str(exc))
    err = Console(stderr=True)
    err.print('use it with:  eval "$(weft cluster env)" && kubectl get ns')
    err.print(f"kubeconfig: {info.kubeconfig}")
    return 0


def _down(args: argparse.Namespace) -> int:
    stopped = _cluster(args).down()
    Console(stderr=True).print(
        f"stopped {', '.join(stopped)}"
        if stopped
        else "no cluster processes were running; state cleaned"
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    cluster = _cluster(args)
    info = cluster.info()
    table = Table(title=f"local cluster ({info.server if info else 'not running'})")
    for column in ("component", "pid", "state", "log"):
        table.add_column(column)
    all_healthy = True
    for c in cluster.status():
        if c.healthy:
            state = "[green]healthy[/]"
        elif c.running:
            state = "[yellow]running, not healthy[/]"
        elif c.pid is not None:
            state = "[red]crashed[/] (see log; `weft cluster down` cleans up)"
        else:
            state = "stopped"
        all_healthy = all_healthy and c.healthy
        table.add_row(c.name, str(c.pid or "-"), state, c.log or "-")
    Console().print(table)
    return 0 if all_healthy else 1


def _env(args: argparse.Namespace) -> int:
    try:
        print(_cluster(args).env(), end="")
    except ClusterError as exc:
        return _fail(str(exc))
    return 0
