"""`python -m weft_webhooks`: the injection, validation and conversion webhooks over HTTPS."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import os
import signal
import tempfile
from dataclasses import replace
from pathlib import Path

import uvloop
from aiohttp import web

from weft_api import logs
from weft_webhooks.certificates import Policy
from weft_webhooks.injection.arguments import add_injector_arguments, injector_settings
from weft_webhooks.serving import drain
from weft_webhooks.serving.app import Lookups, Webhooks, make_app
from weft_webhooks.serving.authority import SecretAuthority
from weft_webhooks.serving.kube import (
    NamespaceAnnotations,
    api_client,
    namespace_servers,
    publish_ca_bundle,
)
from weft_webhooks.serving.tls import CertificateKeeper
from weft_webhooks.serving.trust import TrustAnchors

log = logging.getLogger("weft_webhooks")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="weft-webhooks", description=__doc__)
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    parser.add_argument("--listen-address", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=9443)
    parser.add_argument(
        "--serving-name",
        action="append",
        default=[],
        help="a DNS name the API server calls us by (repeat); e.g. weft-webhooks.weft.svc",
    )
    parser.add_argument(
        "--serving-ip", action="append", default=[], help="an IP the API server calls (repeat)"
    )
    parser.add_argument(
        "--ca-bundle-file", type=Path, help="also write the CA bundle here, for installers"
    )
    parser.add_argument(
        "--renew-interval",
        type=float,
        default=60.0,
        help="seconds between certificate checks and CA bundle publication",
    )
    parser.add_argument(
        "--pod-name",
        default=os.environ.get("POD_NAME", ""),
        help="this replica's pod: once stopped, it serves until its endpoint is gone",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=10.0,
        help="seconds to wait, once stopped, for the endpoint to go (within the pod's grace)",
    )
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--log-format", choices=logs.FORMATS, default=logs.PLAIN)
    add_injector_arguments(parser)
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    async with await api_client(args.kubeconfig) as api:
        with tempfile.TemporaryDirectory(prefix="weft-webhooks-") as key_folder:
            keeper = CertificateKeeper(
                Policy(dns_names=tuple(args.serving_name), ips=tuple(args.serving_ip)),
                Path(key_folder),
                # The CA every replica signs with: one caBundle trusts them all.
                SecretAuthority(api, args.control_plane_namespace),
                publish=functools.partial(publish_ca_bundle, api),
                bundle_file=args.ca_bundle_file,
            )
            namespaces = NamespaceAnnotations(api)
            anchors = TrustAnchors(api, args.control_plane_namespace)
            lookups = Lookups(
                namespaces.get, functools.partial(namespace_servers, api), anchors.get
            )
            # In a cluster the anchors must be known: without them a pod stays unmeshed.
            settings = replace(injector_settings(args), require_trust_anchors=True)
            webhooks = Webhooks(settings, args.cluster_domain, lookups)
            stopping = asyncio.Event()
            runner = web.AppRunner(make_app(webhooks, stopping), access_log=None)
            await runner.setup()
            await keeper.start()
            await web.TCPSite(
                runner, args.listen_address, args.port, ssl_context=keeper.context
            ).start()
            log.info("serving on https://%s:%d", args.listen_address, args.port)
            background = [
                asyncio.create_task(namespaces.keep_current()),
                asyncio.create_task(anchors.keep_current()),
                asyncio.create_task(keeper.keep(args.renew_interval)),
            ]
            try:
                await _until_stopped()
                stopping.set()
                if args.pod_name:
                    await drain.until_unrouted(
                        api, args.control_plane_namespace, args.pod_name, args.drain_timeout
                    )
            finally:
                for task in background:
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.gather(*background)
                await runner.cleanup()


async def _until_stopped() -> None:
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    await stopped.wait()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logs.configure(logging.DEBUG if args.verbose else logging.INFO, args.log_format)
    uvloop.run(serve(args))
