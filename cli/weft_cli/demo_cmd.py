"""`weft demo`: the local cluster, Weft's CRDs and operator (serving meshed pods), the
webhooks, and sample policy applied.

The main job of the README: it grows with the mesh (node agent, proxies, sample app).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from rich.console import Console

from weft_api import mesh
from weft_cli import local_install, manifests
from weft_localcluster import processes
from weft_localcluster.build import BuildError
from weft_localcluster.cluster import DEFAULT_API_PORT, ClusterError, ClusterInfo, LocalCluster
from weft_localcluster.paths import default_state_dir

DEMO_NAMESPACE = "weft-demo"
SHOWN = "trafficsplits,serviceprofiles,servers,serverauthorizations,httproutegroups,traffictargets"


def register(topics: Any) -> None:
    parser = topics.add_parser("demo", help="run Weft on the local cluster")
    parser.add_argument("--port", type=int, default=DEFAULT_API_PORT, help="API server port")
    parser.add_argument("--metrics-port", type=int, default=9990, help="operator metrics port")
    parser.add_argument("--webhook-port", type=int, default=9443, help="admission webhooks port")
    parser.add_argument("--detach", action="store_true", help="return once the demo is up")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    cluster = LocalCluster(default_state_dir(), console)
    try:
        info = cluster.up(api_port=args.port)
        with console.status("installing CRDs and RBAC, starting the operator ..."):
            operator = local_install.start_mesh_control_plane(info, "weft", args.metrics_port)
        console.print(f"operator running (pid {operator.pid}, log {operator.log})")
        gateway = local_install.pod_gateway(info)
        console.print(
            f"meshed pods reach its config and identity servers at {gateway}:"
            f"{mesh.CONFIG_PORT} and :{mesh.IDENTITY_PORT}",
            highlight=False,
        )
        with console.status("starting the admission webhooks ..."):
            webhooks = local_install.start_webhooks(info, "weft", args.webhook_port)
        console.print(f"webhooks running (pid {webhooks.pid}, log {webhooks.log})")
        _apply_samples(info)
        _show(info, console)
    except (ClusterError, BuildError, local_install.InstallError) as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        return 1
    console.print(
        f'\nExplore:  eval "$(weft cluster env)"; kubectl get {SHOWN} -n {DEMO_NAMESPACE}\n'
        f"Operator metrics: http://127.0.0.1:{args.metrics_port}/metrics\n"
        "Stop everything:  weft cluster down"
    )
    if args.detach:
        return 0
    console.print("Following the operator's log (Ctrl-C to stop following; it keeps running).")
    return _follow(operator)


def _apply_samples(info: ClusterInfo) -> None:
    ns = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEMO_NAMESPACE}})
    local_install.kubectl(info, "apply", "-f", "-", stdin=ns)
    examples = manifests.crd_dir() / "examples"
    local_install.kubectl(info, "apply", "-n", DEMO_NAMESPACE, "-f", str(examples))


def _show(info: ClusterInfo, console: Console, wait: float = 30.0) -> None:
    """Wait until the operator has written a status on every sample, then print them."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        items = json.loads(
            local_install.kubectl(info, "get", SHOWN, "-n", DEMO_NAMESPACE, "-o", "json")
        )["items"]
        if items and all(i.get("status", {}).get("conditions") for i in items):
            break
        time.sleep(0.5)
    print(local_install.kubectl(info, "get", SHOWN, "-n", DEMO_NAMESPACE))  # unwrapped table


def _follow(operator: processes.ProcessRecord) -> int:
    try:
        with open(operator.log) as log:
            while processes.alive(operator):
                line = log.readline()
                if line:
                    print(line, end="")
                else:
                    time.sleep(0.2)
    except KeyboardInterrupt:
        return 0
    print("the operator exited; see its log above")
    return 1
