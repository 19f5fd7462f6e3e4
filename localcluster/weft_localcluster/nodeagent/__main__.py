"""`python -m weft_localcluster.nodeagent`: the local cluster's node (run by `weft cluster up`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.api_client import ApiClient

from weft_localcluster.build import prometheus_path
from weft_localcluster.nodeagent import api_access, cleanup, network
from weft_localcluster.nodeagent.agent import Agent, AgentSettings
from weft_localcluster.nodeagent.commands import CommandError, tool
from weft_localcluster.nodeagent.images import DEFAULT_SAMPLES_DIR, default_table
from weft_localcluster.nodeagent.kubelet_api import KubeletSettings
from weft_localcluster.nodeagent.locate import POD_LOGS

log = logging.getLogger("weft_localcluster.nodeagent")
SHUTDOWN_GRACE = 2.0  # pods get at most this long when the whole node goes (`down`)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="weft-node-agent", description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, required=True, help="the node's identity")
    parser.add_argument(
        "--proxy-kubeconfig", type=Path, required=True, help="kube-proxy's identity (Services)"
    )
    parser.add_argument("--node-name", required=True)
    parser.add_argument("--state-dir", type=Path, required=True, help="network record, pod logs")
    parser.add_argument("--kubernetes-version", required=True)
    parser.add_argument("--service-cidr", required=True)
    parser.add_argument("--cluster-domain", default="cluster.local")
    parser.add_argument("--samples-dir", type=Path, default=DEFAULT_SAMPLES_DIR)
    parser.add_argument("--crash-backoff", type=float, default=10.0, help="first restart delay")
    parser.add_argument(
        "--client-ca-file", type=Path, help="the CA of the API server's kubelet client certificate"
    )
    parser.add_argument(
        "--streaming-binary", type=Path, help="kubelet streaming server (exec, port-forward)"
    )
    return parser.parse_args(argv)


async def _api(kubeconfig: Path) -> ApiClient:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return ApiClient(configuration)


def kubelet_settings(args: argparse.Namespace, address: str) -> KubeletSettings | None:
    """The kubelet API is served when the API server's client CA is given."""
    if args.client_ca_file is None:
        return None
    return KubeletSettings(
        address=address,
        state_dir=args.state_dir,
        client_ca=args.client_ca_file,
        node_name=args.node_name,
        streaming_binary=args.streaming_binary,
    )


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    net = await network.claim_network(args.state_dir)
    settings = AgentSettings(
        node_name=args.node_name,
        kubernetes_version=args.kubernetes_version,
        service_cidr=args.service_cidr,
        cluster_domain=args.cluster_domain,
        logs_dir=args.state_dir / POD_LOGS,
        crash_backoff=args.crash_backoff,
        kubelet=kubelet_settings(args, net.gateway),
    )
    # Built on demand (build.try_prometheus): until it is, its container fails to start
    # and is restarted with backoff, as an image still being pulled.
    images = default_table(Path(sys.executable).parent, args.samples_dir, prometheus_path())
    async with (
        await _api(args.kubeconfig) as node_api,
        await _api(args.proxy_kubeconfig) as proxy_api,
    ):
        # Pods' in-cluster clients reach the API server through the bridge (api_access).
        relay = await api_access.start_relay(net.gateway, node_api.configuration.host)
        agent = Agent(settings, node_api, proxy_api, net, images)
        running = loop.create_task(agent.run())
        stopping = loop.create_task(stop.wait())
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        log.info("stopping: every pod gets at most %.0fs", SHUTDOWN_GRACE)
        await agent.shut_down(SHUTDOWN_GRACE)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        relay.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if os.geteuid() != 0:
        print(
            "weft-node-agent: pods run in network namespaces, which needs root; "
            "run `weft cluster up` as root (or with sudo)",
            file=sys.stderr,
        )
        return 2
    try:
        for name in ("ip", "setpriv", "iptables"):
            tool(name)
        asyncio.run(serve(args))
    except CommandError as error:
        print(f"weft-node-agent: {error}", file=sys.stderr)
        return 1
    finally:
        removed = cleanup.sweep(args.state_dir)
        if removed:
            log.info("removed %s", ", ".join(removed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
