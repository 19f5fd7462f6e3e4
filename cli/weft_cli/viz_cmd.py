"""`weft viz install|uninstall` (Prometheus and the dashboard, for `kubectl apply -f -`)
and `weft dashboard` (port-forwards to the dashboard and opens it)."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import webbrowser
from typing import Any

from weft_cli import output
from weft_cli.errors import CliError
from weft_cli.options import add_weft_namespace_option

DEFAULT_LOCAL_PORT = 50750  # Linkerd's `linkerd viz dashboard` port
FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+)")


def register(topics: Any) -> None:
    from weft_viz.install import NAMESPACE

    viz = topics.add_parser(
        "viz",
        help="Prometheus and the dashboard: render their manifests (pipe to kubectl apply -f -)",
        description="Weft's viz: Prometheus scraping the proxies with the shipped scrape "
        "configuration, and the dashboard, in namespace " + NAMESPACE + ".",
    )
    actions = viz.add_subparsers(dest="action", required=True, metavar="install|uninstall")
    for name, helping in (
        ("install", "render the manifests to apply"),
        ("uninstall", "render what to delete (pipe to kubectl delete -f -)"),
    ):
        action = actions.add_parser(name, help=helping)
        action.add_argument("--namespace", default=NAMESPACE, help=f"(default: {NAMESPACE})")
        action.add_argument(
            "--tap",
            action="store_true",
            help="serve live tap from the dashboard: whoever reaches its port sees requests' "
            "paths and identities (off by default)",
        )
        action.add_argument(
            "--prometheus-url",
            default="",
            help="a Prometheus of your own with the shipped scrape config; none is installed",
        )
        action.add_argument("--image", help="the dashboard's image (default: Weft's)")
        add_weft_namespace_option(action)
        action.set_defaults(run=run_viz)

    dashboard = topics.add_parser(
        "dashboard",
        help="open the dashboard (port-forwards to it with kubectl)",
        description="Runs `kubectl port-forward` to the dashboard's Service and opens its "
        "URL in a browser; stops with Ctrl-C.",
    )
    dashboard.add_argument("--namespace", default=NAMESPACE, help=f"(default: {NAMESPACE})")
    dashboard.add_argument(
        "--port", type=int, default=DEFAULT_LOCAL_PORT, help="local port (0: any free one)"
    )
    dashboard.add_argument(
        "--no-browser", action="store_true", help="print the URL only, open no browser"
    )
    dashboard.add_argument("--kubeconfig", help="kubeconfig file (default: kubectl's)")
    dashboard.add_argument("--context", help="kubeconfig context")
    dashboard.set_defaults(run=run_dashboard)


def run_viz(args: argparse.Namespace) -> int:
    from weft_viz.install import VizOptions, manifests, render

    options = VizOptions(
        namespace=args.namespace,
        tap=args.tap,
        prometheus_url=args.prometheus_url,
        control_plane_namespace=args.weft_namespace,
    )
    if args.image:
        options = VizOptions(**{**options.__dict__, "image": args.image})
    if args.action == "install":
        sys.stdout.write(render(options))
        return 0
    import yaml

    # Deleting the namespace deletes what is in it; the cluster-wide RBAC goes by name.
    cluster_wide = [
        o
        for o in manifests(options)
        if o["kind"] in ("Namespace", "ClusterRole", "ClusterRoleBinding")
    ]
    sys.stdout.write(yaml.safe_dump_all(cluster_wide, sort_keys=False))
    return 0


def port_forward_command(args: argparse.Namespace, kubectl: str) -> list[str]:
    from weft_viz.install import DASHBOARD, DASHBOARD_PORT

    command = [kubectl]
    if args.kubeconfig:
        command.append(f"--kubeconfig={args.kubeconfig}")
    if args.context:
        command.append(f"--context={args.context}")
    return [
        *command,
        "-n",
        args.namespace,
        "port-forward",
        "--address=127.0.0.1",
        f"service/{DASHBOARD}",
        f"{args.port or ''}:{DASHBOARD_PORT}",
    ]


def run_dashboard(args: argparse.Namespace) -> int:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise CliError('kubectl is not on PATH (for the local cluster: eval "$(weft cluster env)")')
    command = port_forward_command(args, kubectl)
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        for line in process.stdout:
            found = FORWARDING.search(line)
            if found:
                url = f"http://127.0.0.1:{found.group(1)}/"
                print(f"Weft dashboard: {url}  (Ctrl-C stops the port-forward)", flush=True)
                if not args.no_browser:
                    webbrowser.open(url)
                break
        else:
            reason = process.stderr.read().strip() or f"kubectl exited with {process.wait()}"
            raise CliError(f"cannot port-forward to the dashboard: {reason}")
        for _ in process.stdout:  # kubectl prints a line per connection
            pass
        code = process.wait()
        if code != 0:
            output.warn(f"kubectl port-forward ended: {process.stderr.read().strip()}")
        return code
    except KeyboardInterrupt:
        return 0
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)
