"""`weft demo`: the whole mesh on the local cluster, and a canary rollout to watch.

It brings the local cluster up (building what it needs), installs Weft as a user does
(`weft install | kubectl apply -f -`: the operator and the admission webhooks run as
pods), deploys the bookshop sample meshed, then rolls books v2 out as a canary: weights step
from 0 to 100 while v2's success rate holds. A second rollout of a broken v2 is rolled
back. A live table shows each window. `--once` runs it without a live display and exits
0 only if both rollouts ended as they should.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from weft_cli import local_install, sample_app
from weft_cli.canary.rollout import Rollout
from weft_cli.canary.steps import CanaryPolicy, Verdict
from weft_cli.errors import CliError
from weft_cli.kube import Kube, KubeOptions
from weft_localcluster.build import BuildError
from weft_localcluster.cluster import DEFAULT_API_PORT, ClusterError, ClusterInfo, LocalCluster
from weft_localcluster.paths import default_state_dir

CONTROL_PLANE = "weft"
NAMESPACE = sample_app.NAMESPACE
POLICY = CanaryPolicy(step=25, min_success=0.95, min_requests=5)


def register(topics: Any) -> None:
    parser = topics.add_parser("demo", help="run Weft on the local cluster: a canary rollout")
    parser.add_argument("--port", type=int, default=DEFAULT_API_PORT, help="API server port")
    parser.add_argument(
        "--window", type=float, default=6.0, help="seconds of traffic judged per canary step"
    )
    parser.add_argument(
        "--once", action="store_true", help="non-interactive: plain output, exit code says how"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    cluster = LocalCluster(default_state_dir(), console)
    try:
        info = cluster.up(api_port=args.port)
        install(info, console)
        with console.status(f"deploying the bookshop sample, meshed, in namespace {NAMESPACE} ..."):
            deployed = sample_app.deploy(info, NAMESPACE)
        console.print(f"bookshop running meshed: {', '.join(deployed)}")
        install_viz(info, console)
        good, bad = asyncio.run(canaries(info, args, console))
    except (ClusterError, BuildError, local_install.InstallError, CliError) as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        return 1
    console.print(
        f"\nThe canary of a healthy v2: {good.value}; of a broken v2: {bad.value}.\n"
        "Look around:\n"
        '  eval "$(weft cluster env)"       # kubectl and weft now talk to the local cluster\n'
        "  weft dashboard                   # the dashboard in your browser (port-forwarded)\n"
        f"  weft stat deploy -n {NAMESPACE}    # golden metrics per workload\n"
        f"  weft stat ts -n {NAMESPACE}        # the canary view of the TrafficSplit\n"
        f"  weft tap deploy/web -n {NAMESPACE} # live requests\n"
        f"  weft edges -n {NAMESPACE}          # who talks to whom, with which identity\n"
        f"  kubectl get trafficsplits,serviceprofiles,servers -n {NAMESPACE}\n"
        f"  kubectl -n {CONTROL_PLANE} get pods      # the control plane, as pods\n"
        f"  kubectl -n {NAMESPACE} logs deploy/web -c weft-proxy  # a proxy's log\n"
        f"  weft check --proxy -n {NAMESPACE}  # the install and the data plane, checked\n"
        "Tear down:  weft cluster down",
        highlight=False,
    )
    return 0 if (good, bad) == (Verdict.DONE, Verdict.ROLLBACK) else 1


def install_viz(info: ClusterInfo, console: Console) -> None:
    """`weft viz install | kubectl apply -f -`: Prometheus and the dashboard. Their
    Prometheus is built from Go modules first (once, cached); without it, no dashboard."""
    from weft_localcluster.build import try_prometheus

    if try_prometheus(console) is None:
        return
    from weft_viz.install import DASHBOARD, PROMETHEUS, VizOptions, render
    from weft_viz.install import NAMESPACE as VIZ

    with console.status("installing the dashboard: weft viz install | kubectl apply -f - ..."):
        local_install.kubectl(info, "apply", "-f", "-", stdin=render(VizOptions(tap=True)))
        for name in (PROMETHEUS, DASHBOARD):
            local_install.kubectl(
                info, "-n", VIZ, "rollout", "status", f"deployment/{name}",
                f"--timeout={local_install.ROLLOUT_TIMEOUT_S}s",
            )  # fmt: skip
    console.print(f"dashboard installed (kubectl -n {VIZ} get pods; tap on: local cluster)")


def install(info: ClusterInfo, console: Console) -> None:
    with console.status(
        f"installing Weft: weft install | kubectl apply -f - (namespace {CONTROL_PLANE}) ..."
    ):
        local_install.install(info, CONTROL_PLANE)
    console.print(
        f"Weft installed: the operator and the webhooks run as pods "
        f"(kubectl -n {CONTROL_PLANE} get pods)",
        highlight=False,
    )


async def canaries(
    info: ClusterInfo, args: argparse.Namespace, console: Console
) -> tuple[Verdict, Verdict]:
    """A healthy v2 rolled out, then a broken one rolled back."""
    async with await Kube.connect(KubeOptions(kubeconfig=str(info.kubeconfig))) as kube:
        rollout = Rollout(kube, NAMESPACE, "books", "books-v1", "books-v2", POLICY, args.window)
        console.rule("canary 1: books v2, healthy")
        good = await watch(rollout, console, args.once)
        # Half of v2's answers fail. GET /books is retryable, so users barely notice,
        # but the proxies count every attempt: the analysis sees it and rolls back.
        console.rule("canary 2: books v2 failing half its requests: watch it roll back")
        with console.status("deploying the broken v2 ..."):
            await asyncio.to_thread(break_v2, info, "0.5")
        try:
            bad = await watch(rollout, console, args.once)
        finally:
            await asyncio.to_thread(break_v2, info, "0")
    return good, bad


def break_v2(info: ClusterInfo, failure_rate: str) -> None:
    """A new v2 whose answers fail at `failure_rate`, rolled out as a user would."""
    books_v2 = ("deployment/books-v2", "-n", NAMESPACE)
    local_install.kubectl(info, "set", "env", *books_v2, f"BOOKS_FAILURE_RATE={failure_rate}")
    local_install.kubectl(info, "rollout", "status", *books_v2, "--timeout=180s")


async def watch(rollout: Rollout, console: Console, once: bool) -> Verdict:
    if once:

        def show(table: Table) -> None:
            console.print(table)

        return await rollout.run(show)
    with Live(console=console, auto_refresh=False) as live:

        def refresh(table: Table) -> None:
            live.update(table, refresh=True)

        return await rollout.run(refresh)
