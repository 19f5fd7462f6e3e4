"""`python -m weft_operator`: the operator process (kopf, a Lease for leader election)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
from typing import Any, cast

import kopf
import uvloop
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.api_client import ApiClient
from kubernetes_asyncio.leaderelection import electionconfig, leaderelection
from kubernetes_asyncio.leaderelection.resourcelock.leaselock import LeaseLock
from prometheus_client import start_http_server

from weft_api import logs, mesh
from weft_api.identity import DEFAULT_TRUST_DOMAIN
from weft_api.mesh import IDENTITY_PORT
from weft_operator import handlers
from weft_operator.catalog import MeshSettings
from weft_operator.config_server.server import ServerTls
from weft_operator.config_server.service import config_service
from weft_operator.identity.issuer_store import load_or_create
from weft_operator.identity.server import config_server_credentials, start_identity_server
from weft_operator.kube_writer import KubeWriter
from weft_operator.reconciler import Reconciler

log = logging.getLogger("weft_operator")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="weft-operator")
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    parser.add_argument(
        "--namespace",
        default=os.environ.get("POD_NAMESPACE", "weft"),
        help="namespace of the leader-election Lease",
    )
    parser.add_argument("--metrics-port", type=int, default=9990, help="0 turns metrics off")
    parser.add_argument("--metrics-addr", default="0.0.0.0", help="address of the metrics server")
    parser.add_argument(
        "--config-port", type=int, default=8086, help="config (discovery) gRPC port; 0 turns it off"
    )
    parser.add_argument("--config-addr", default="0.0.0.0", help="address of the config server")
    parser.add_argument(
        "--identity-port", type=int, default=IDENTITY_PORT, help="identity gRPC port; 0: off"
    )
    parser.add_argument("--identity-addr", default="0.0.0.0", help="address of the identity server")
    parser.add_argument("--trust-domain", default=DEFAULT_TRUST_DOMAIN)
    parser.add_argument(
        "--access-model",
        choices=mesh.ACCESS_MODELS,
        default=mesh.ACCESS_MODEL_LINKERD,
        help="without a TrafficTarget, a port no Server governs gets the default inbound "
        f"policy (linkerd) or is denied (smi); a namespace's {mesh.ACCESS_MODEL_ANNOTATION} "
        "annotation overrides it",
    )
    parser.add_argument(
        "--generate-identity",
        action="store_true",
        help="create the trust anchor and issuer at first start if their Secret is absent",
    )
    parser.add_argument(
        "--no-leader-elect",
        dest="leader_elect",
        action="store_false",
        help="run without a Lease (one replica only)",
    )
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--log-format", choices=logs.FORMATS, default=logs.PLAIN)
    return parser.parse_args(argv)


async def _api_client(kubeconfig: str | None) -> ApiClient:
    configuration = client.Configuration()
    if kubeconfig:
        await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)
    return ApiClient(configuration)


def _settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.posting.level = logging.WARNING  # kopf's own Events only for real problems
    settings.watching.server_timeout = 300
    return settings


async def operate(api: ApiClient, args: argparse.Namespace) -> None:
    """Build all state from the API server (nothing on disk) and reconcile until stopped."""
    kubeconfig = args.kubeconfig
    registry = kopf.OperatorRegistry()
    reconciler, writer = Reconciler(), KubeWriter(api)
    handlers.register(registry, reconciler, writer)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        if kubeconfig:
            return kopf.login_with_kubeconfig(**kwargs)
        return kopf.login_with_service_account(**kwargs)

    # Our own identity for kopf: by default it asks getpass for the user's name, which
    # fails for a uid without a passwd entry (arbitrary runAsUser; the local node agent).
    run_kopf = kopf.operator(
        registry=registry,
        settings=_settings(),
        clusterwide=True,
        standalone=True,
        # (kopf types it as a NewType of str it does not export.)
        identity=cast(Any, os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"),
    )
    async with contextlib.AsyncExitStack() as services:
        ca = None
        if args.identity_port:
            ca = await load_or_create(
                api, args.namespace, args.trust_domain, args.generate_identity
            )
            server, _ = await start_identity_server(
                api,
                ca,
                args.namespace,
                args.trust_domain,
                f"{args.identity_addr}:{args.identity_port}",
            )
            services.push_async_callback(server.stop, 5.0)
        if args.config_port:
            tls = None  # without the identity service no proxy has a certificate
            if ca is not None:
                credentials = config_server_credentials(ca, args.namespace, args.trust_domain)
                tls = ServerTls(credentials, args.trust_domain)
            settings = MeshSettings(trust_domain=args.trust_domain, access_model=args.access_model)
            config = await services.enter_async_context(
                config_service(
                    reconciler,
                    writer.carry_out,
                    args.config_addr,
                    args.config_port,
                    tls=tls,
                    settings=settings,
                )
            )
            if ca is not None:  # proxies learn the roots that verify their peers here
                config.hub.set_trust_bundle(ca.trust_roots_pem)
        await run_kopf


async def run(args: argparse.Namespace) -> None:
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig  # kopf's kubeconfig login reads it
    async with await _api_client(args.kubeconfig) as api:
        if not args.leader_elect:
            await operate(api, args)
            return
        identity = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
        lock = LeaseLock("weft-operator", args.namespace, identity, api)

        async def lost() -> None:
            # Another replica may now act on a stale view; restart and rebuild from the API.
            log.error("lost the leader Lease; exiting so that a fresh start rebuilds state")
            _exit(1)

        async def lead() -> None:
            # The election library runs this as a task nobody awaits, and renews the Lease
            # while it lives or not: a leader whose operator ended must end too, or it
            # would hold the Lease doing nothing (and a SIGTERM would never finish).
            try:
                await operate(api, args)
            except asyncio.CancelledError:
                raise  # the Lease was lost: `lost` exits
            except Exception:
                log.exception("the operator failed; exiting so that a restart rebuilds state")
                _exit(1)
            log.info("the operator stopped; exiting")
            _exit(0)

        election = electionconfig.Config(
            lock,
            lease_duration=15,
            renew_deadline=10,
            retry_period=2,
            onstarted_leading=lead,
            onstopped_leading=lost,
        )
        log.info("waiting for the leader Lease %s/weft-operator as %s", args.namespace, identity)
        await leaderelection.LeaderElection(election).run()


def _exit(code: int) -> None:
    """End the process now, from inside the event loop (the election task cannot be
    unwound from here), with the log flushed."""
    logging.shutdown()
    os._exit(code)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logs.configure(logging.DEBUG if args.verbose else logging.INFO, args.log_format)
    if not args.verbose:  # kopf logs every handled event at INFO
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.metrics_addr)
    uvloop.run(run(args))
