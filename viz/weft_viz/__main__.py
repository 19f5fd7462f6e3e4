"""`python -m weft_viz`: the dashboard's server (the `weft-dashboard` Deployment of
`weft viz install`; `weft dashboard` port-forwards to it)."""

from __future__ import annotations

import argparse
import asyncio
import logging

from aiohttp import web
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.api_client import ApiClient

from weft_api import mesh
from weft_api.identity import DEFAULT_TRUST_DOMAIN
from weft_cli.kube import Kube, KubeOptions
from weft_viz.app import DashboardSettings, make_app
from weft_viz.reader import DEFAULT_WINDOW_SECONDS, MeshReader, ReaderSettings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m weft_viz", description=__doc__)
    parser.add_argument("--prometheus", required=True, help="Prometheus' URL")
    parser.add_argument("--listen", default="127.0.0.1:8084", help="HOST:PORT to serve on")
    parser.add_argument(
        "--tap",
        metavar="WEFT_NAMESPACE",
        nargs="?",
        const=mesh.DEFAULT_CONTROL_PLANE_NAMESPACE,
        help="serve live tap to whoever reaches the port, tapping with the CLI's certificate "
        "from the control plane in WEFT_NAMESPACE",
    )
    parser.add_argument(
        "--window", type=int, default=DEFAULT_WINDOW_SECONDS, help="seconds of traffic shown"
    )
    parser.add_argument("--cluster-domain", default="cluster.local")
    parser.add_argument("--trust-domain", default=DEFAULT_TRUST_DOMAIN)
    parser.add_argument("--kubeconfig", help="default: in-cluster (the pod's ServiceAccount)")
    return parser.parse_args(argv)


async def connect(kubeconfig: str | None) -> Kube:
    """In a pod, always its own ServiceAccount (read-only RBAC): never a kubeconfig the
    CLI's search would find in the process' home."""
    if kubeconfig:
        return await Kube.connect(KubeOptions(kubeconfig=kubeconfig))
    configuration = client.Configuration()
    config.load_incluster_config(client_configuration=configuration)
    return Kube(ApiClient(configuration))


async def serve(args: argparse.Namespace) -> None:
    host, _, port = args.listen.rpartition(":")
    kube = await connect(args.kubeconfig)
    async with kube:
        settings = ReaderSettings(args.prometheus, args.window, args.cluster_domain)
        tap = DashboardSettings(
            tap=args.tap is not None, weft_namespace=args.tap or "", trust_domain=args.trust_domain
        )
        app = make_app(MeshReader(kube, settings), tap)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host.strip("[]") or "0.0.0.0", int(port)).start()
        logging.getLogger(__name__).info("dashboard on http://%s (tap %s)", args.listen,
                                         "on" if args.tap is not None else "off")  # fmt: skip
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(serve(parse_args()))


if __name__ == "__main__":
    main()
