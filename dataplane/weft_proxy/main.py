"""`python -m weft_proxy`: the proxy process of a meshed pod.

Reads who and where it is from the environment injection sets (weft_api.mesh.ProxyEnv),
obtains its certificate from the identity service, follows its config stream, and
serves the inbound, outbound, admin and tap listeners until /shutdown or SIGTERM, then
drains.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import uvloop
from grpclib.server import Server

from weft_api import logs
from weft_api.config import ProxyIdentity
from weft_api.http2_limits import DEFAULT_LIMITS, FloodLimits
from weft_api.http2_limits import parse as parse_limits
from weft_api.identity import DEFAULT_TRUST_DOMAIN, identity_name, spiffe_id
from weft_api.mesh import (
    DEFAULT_CONTROL_PLANE_NAMESPACE,
    PROXY_ADMIN_PORT,
    PROXY_INBOUND_PORT,
    PROXY_OUTBOUND_PORT,
    PROXY_TAP_PORT,
    TAP_CLIENT_SERVICE_ACCOUNT,
    ProxyEnv,
)
from weft_proxy.compiled import running_compiled
from weft_proxy.config_client.assembler import ProxySnapshot
from weft_proxy.config_client.client import ConfigClient
from weft_proxy.identity.certifier import Certifier
from weft_proxy.identity.credentials import Credentials
from weft_proxy.io.accept import SocketServer, ended_quietly
from weft_proxy.proxy import Proxy
from weft_proxy.tap.service import TapService, start_tap_server, tap_server_context

log = logging.getLogger("weft_proxy")
DRAIN_S = 5.0


def _address(value: str | None, default_port: int) -> tuple[str, int]:
    if not value:
        return "0.0.0.0", default_port
    host, _, port = value.rpartition(":")
    return host or "0.0.0.0", int(port)


def _limits(text: str) -> FloodLimits:
    try:
        return parse_limits(text)
    except ValueError as error:
        raise ValueError(f"{ProxyEnv.HTTP2_LIMITS}: {error}") from None


@dataclass(frozen=True)
class Settings:
    identity: ProxyIdentity
    trust_domain: str
    config_addr: str | None
    identity_addr: str | None
    token_file: Path | None
    trust_anchors_pem: bytes
    identity_server_name: str
    inbound: tuple[str, int]
    outbound: tuple[str, int]
    admin: tuple[str, int]
    tap: tuple[str, int]
    http2_limits: FloodLimits = DEFAULT_LIMITS
    tap_clients: frozenset[str] = frozenset()  # who may tap over mTLS; empty: anyone

    @property
    def has_identity(self) -> bool:
        return bool(self.identity_addr and self.token_file and self.trust_anchors_pem)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        namespace = env.get(ProxyEnv.POD_NAMESPACE, "default")
        account = env.get(ProxyEnv.POD_SERVICE_ACCOUNT, "default")
        token = env.get(ProxyEnv.IDENTITY_TOKEN_FILE)
        trust_domain = env.get(ProxyEnv.TRUST_DOMAIN, DEFAULT_TRUST_DOMAIN)
        server_name = env.get(ProxyEnv.IDENTITY_SERVER_NAME) or identity_name(
            "weft-operator", DEFAULT_CONTROL_PLANE_NAMESPACE, trust_domain
        )
        # Who may tap. Unset: the port stays open (until `weft tap` obtains the CLI's
        # certificate, docs/mtls.md); "cli": the CLI's identity, `weft-cli` in the
        # control plane's namespace (the server name's second label).
        cli = identity_name(TAP_CLIENT_SERVICE_ACCOUNT, server_name.split(".")[1], trust_domain)
        tap_clients = frozenset(
            cli if name == "cli" else name
            for name in (part.strip() for part in env.get(ProxyEnv.TAP_CLIENTS, "").split(","))
            if name
        )
        return cls(
            identity=ProxyIdentity(
                pod=env.get(ProxyEnv.POD_NAME, "unknown"),
                namespace=namespace,
                service_account=account,
                node=env.get(ProxyEnv.NODE_NAME),
            ),
            trust_domain=trust_domain,
            config_addr=env.get(ProxyEnv.CONFIG_ADDR),
            identity_addr=env.get(ProxyEnv.IDENTITY_ADDR),
            token_file=Path(token) if token else None,
            trust_anchors_pem=env.get(ProxyEnv.TRUST_ANCHORS, "").encode(),
            identity_server_name=server_name,
            inbound=_address(env.get(ProxyEnv.INBOUND_LISTEN_ADDR), PROXY_INBOUND_PORT),
            outbound=_address(env.get(ProxyEnv.OUTBOUND_LISTEN_ADDR), PROXY_OUTBOUND_PORT),
            admin=_address(env.get(ProxyEnv.ADMIN_LISTEN_ADDR), PROXY_ADMIN_PORT),
            tap=_address(env.get(ProxyEnv.TAP_LISTEN_ADDR), PROXY_TAP_PORT),
            http2_limits=_limits(env.get(ProxyEnv.HTTP2_LIMITS, "")),
            tap_clients=tap_clients,
        )


def freeze_startup_objects() -> None:
    """Keep what start-up made (modules, the first config) out of the cyclic garbage
    collector's scans: a full collection over them held the event loop for tens of
    milliseconds, a latency spike for every request in flight."""
    gc.collect()
    gc.freeze()


def _certifier(settings: Settings, proxy: Proxy) -> Certifier | None:
    if not settings.has_identity:
        log.warning("no identity settings: this proxy can reach no meshed pod (mTLS only)")
        return None
    assert settings.identity_addr
    assert settings.token_file
    me = settings.identity
    certifier = Certifier(
        identity=identity_name(me.service_account, me.namespace, settings.trust_domain),
        spiffe=spiffe_id(me.service_account, me.namespace, settings.trust_domain),
        token_path=settings.token_file,
        address=settings.identity_addr,
        server_identity=settings.identity_server_name,
        trust_roots_pem=settings.trust_anchors_pem,
        registry=proxy.metrics.registry,
    )
    certifier.on_rotate.append(proxy.use_credentials)
    return certifier


async def _serve_tap(
    service: TapService, address: tuple[str, int], certifier: Certifier, servers: list[Server]
) -> None:
    await certifier.current()

    def current() -> Credentials:
        assert certifier.credentials is not None
        return certifier.credentials

    servers.append((await start_tap_server(service, *address, tap_server_context(current)))[0])


async def run(settings: Settings) -> None:
    proxy = Proxy(
        settings.identity.namespace,
        requires_identity=settings.has_identity,
        http2_limits=settings.http2_limits,
    )
    listeners: list[asyncio.Server | SocketServer] = [
        await SocketServer.start(proxy.on_inbound, *settings.inbound),
        await asyncio.start_server(ended_quietly(proxy.on_outbound), *settings.outbound),
        await asyncio.start_server(ended_quietly(proxy.admin.serve), *settings.admin),
    ]
    tasks = []
    certifier = _certifier(settings, proxy)
    if certifier is not None:
        tasks.append(asyncio.create_task(certifier.run()))
    taps: list[Server] = []
    if certifier is None or not settings.tap_clients:  # plain text, open to anyone
        if certifier is not None:
            log.warning("tap port open to anyone: %s is not set", ProxyEnv.TAP_CLIENTS)
        taps.append((await start_tap_server(TapService(proxy.tap), *settings.tap))[0])
    else:  # mTLS with our leaf, for the identities the install names: after the first leaf
        service = TapService(proxy.tap, settings.tap_clients)
        tasks.append(asyncio.create_task(_serve_tap(service, settings.tap, certifier, taps)))
    if settings.config_addr:

        def apply(snapshot: ProxySnapshot) -> None:
            # Applied as it is validated (a ValueError NACKs it and changes nothing), so
            # a subscription that returns finds its Service already routable.
            proxy.apply(snapshot.config)

        # Certificate first, then config: the stream is mTLS with the proxy's own leaf
        # (the identity service needs no config, so this order cannot deadlock).
        client = ConfigClient(
            settings.config_addr,
            settings.identity,
            validate=apply,
            credentials=None if certifier is None else certifier.client_context,
            server_name=settings.identity_server_name,
        )
        proxy.discover = client.outbound
        tasks.append(asyncio.create_task(client.run()))
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, proxy.shutdown)
    freeze_startup_objects()
    log.info(
        "proxy %s/%s listening (request path %s)",
        settings.identity.namespace,
        settings.identity.pod,
        "compiled" if running_compiled() else "interpreted",
    )
    await proxy.stopping.wait()
    log.info("draining for up to %.0fs", DRAIN_S)
    for listener in listeners:
        listener.close()  # no new connections; those open finish their requests
    if not await proxy.drained(DRAIN_S):
        log.warning("connections still open after %.0fs: closing them", DRAIN_S)
    for tap in taps:
        tap.close()
    for task in tasks:
        task.cancel()


def main() -> None:
    log_format = os.environ.get(ProxyEnv.LOG_FORMAT) or logs.PLAIN
    logs.configure(
        os.environ.get("WEFT_PROXY_LOG", "INFO"),
        log_format if log_format in logs.FORMATS else logs.PLAIN,
    )
    if log_format not in logs.FORMATS:
        log.warning("%s=%r is not one of %s", ProxyEnv.LOG_FORMAT, log_format, logs.FORMATS)
    try:
        settings = Settings.from_env(os.environ)
    except ValueError as error:
        log.error("invalid proxy settings: %s", error)
        sys.exit(2)
    uvloop.run(run(settings))
