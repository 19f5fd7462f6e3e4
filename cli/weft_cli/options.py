"""Command-line options the commands share. Only argparse here: `weft --help` and
argument errors must not wait for the Kubernetes client, gRPC or pydantic to load."""

from __future__ import annotations

import argparse
import os

from weft_api.identity import DEFAULT_TRUST_DOMAIN
from weft_api.mesh import DEFAULT_CONTROL_PLANE_NAMESPACE

DEFAULT_NAMESPACE = "default"
SCRAPE_WINDOW = "10s"
PROMETHEUS_WINDOW = "1m"
INBOUND, OUTBOUND = "inbound", "outbound"

PROXIES_FILE_FORMAT = """\
    proxies:
      - namespace: shop
        pod: web-0
        deployment: web           # or statefulset, daemonset, job: its workload
        serviceAccount: web       # optional (default: default)
        admin: 127.0.0.1:4191     # the admin port (/metrics)
        tap: 127.0.0.1:4190       # optional: the tap port
"""
OBSERVE_EPILOG = f"""\
Data: the proxies' admin endpoints (port 4191) through the API server's pod proxy, or
Prometheus with --prometheus. A proxies file lists proxies to reach directly:
{PROXIES_FILE_FORMAT}"""


def add_output_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=("table", "json", "yaml"),
        default="table",
        help="table (default; colors on a terminal, plain columns when piped), json or yaml",
    )


def add_kube_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cluster access")
    group.add_argument(
        "--kubeconfig",
        help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, else the local cluster's)",
    )
    group.add_argument("--context", help="kubeconfig context (default: its current context)")


def add_weft_namespace_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weft-namespace",
        default=os.environ.get("WEFT_NAMESPACE", DEFAULT_CONTROL_PLANE_NAMESPACE),
        metavar="NS",
        help="namespace of Weft's control plane (default: $WEFT_NAMESPACE or weft)",
    )


def add_scope_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--namespace", help=f"namespace (default: {DEFAULT_NAMESPACE})")
    parser.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")


def add_source_options(parser: argparse.ArgumentParser, window: bool = True) -> None:
    group = parser.add_argument_group("where the figures come from")
    if window:
        group.add_argument(
            "-w",
            "--window",
            help=f"time window, e.g. 30s, 1m (default: {SCRAPE_WINDOW} scraping the proxies, "
            f"the last {PROMETHEUS_WINDOW} from Prometheus)",
        )
        group.add_argument(
            "--prometheus",
            metavar="URL",
            help="read the proxies' series from this Prometheus (Linkerd's scrape labels: "
            "namespace, pod, deployment) instead of scraping them",
        )
    group.add_argument(
        "--proxies-file",
        metavar="FILE",
        help="reach the proxies listed in this YAML file directly, instead of through the "
        "API server (format below)",
    )
    add_kube_options(parser)
    add_output_option(parser)


def add_tap_filter_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("which requests")
    group.add_argument("--to", metavar="[NS/]SERVICE", help="requests the proxies send to it")
    group.add_argument(
        "--from",
        dest="from_",
        metavar="[NS/]SERVICEACCOUNT",
        help="requests the proxies receive from its pods (by their mTLS identity)",
    )
    group.add_argument("--direction", choices=(INBOUND, OUTBOUND))
    group.add_argument("--path", default="", metavar="PREFIX", help="paths starting so")
    group.add_argument("--method", default="", help="GET, POST, ...")
    group.add_argument("--authority", default="", help="the Host the client asked for")
    group.add_argument("--trust-domain", default=DEFAULT_TRUST_DOMAIN, help="of identities")


def add_watch_arguments(parser: argparse.ArgumentParser) -> None:
    """What `weft tap` and `weft top` share."""
    parser.add_argument(
        "target", nargs="?", help="deploy/NAME, rollout/NAME, rs/NAME, pod/NAME or ns/NAME"
    )
    add_tap_filter_options(parser)
    parser.add_argument("--duration", help="stop after this long, e.g. 30s")
    add_weft_namespace_option(parser)  # where the CLI's tap certificate comes from
    add_scope_options(parser)
    add_source_options(parser, window=False)
