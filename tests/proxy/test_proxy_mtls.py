"""Automatic mTLS between two proxies over real TLS on loopback: a client pod's proxy
originates TLS to a meshed endpoint, proving its own identity and checking the one
discovery names; the server pod's proxy terminates it and learns the client's identity.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from mesh_ca import MeshCa
from proxy_configs import AUTHORITY, allow_all, books, config
from running import RunningProxy

from weft_api.config import (
    Authentication,
    Authorization,
    AuthorizationKind,
    Backend,
    BackendPort,
    DefaultPolicy,
    Endpoint,
    InboundServer,
    Network,
    ProtocolHint,
    ProxyConfig,
    ServerKind,
)
from weft_api.identity import identity_name
from weft_proxy.tap.hub import TapFilter

WEB = identity_name("web", "shop")
BOOKS = identity_name("books", "shop")
CLUSTER_IP = "10.96.0.10"

Start = Callable[..., Awaitable[RunningProxy]]


@pytest.fixture
async def app() -> AsyncIterator[int]:
    """The books application: answers who it is and how the request came."""

    async def handle(request: web.Request) -> web.Response:
        return web.Response(text=f"books {request.path}")

    application = web.Application()
    application.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    await runner.cleanup()


def meshed_books(port: int, identity: str | None = BOOKS) -> ProxyConfig:
    """The client's view: `books` has one endpoint, a meshed pod (as the catalog
    describes one: its identity, and hinted HTTP/2 as Linkerd's destination does)."""
    endpoint = Endpoint(
        "127.0.0.1", port, identity, ProtocolHint.H2 if identity else None, (("pod", "books-0"),)
    )
    backend = Backend("books", "shop", AUTHORITY, 1, (BackendPort(80, (endpoint,)),))
    return config(books(backend))


def requiring_identity(port: int) -> InboundServer:
    """A server that admits only meshed clients, of any identity."""
    mtls_only = Authorization(
        AuthorizationKind.AUTHORIZATION_POLICY,
        "meshed-only",
        (Network("0.0.0.0/0"), Network("::/0")),
        Authentication.TLS_AUTHENTICATED,
        identities=("*",),
    )
    return InboundServer(
        "books-http", ServerKind.SERVER, port, allow_all().protocol, (mtls_only,),
        DefaultPolicy.DENY,
    )  # fmt: skip


class Mesh:
    """A client proxy (`web`) and a server proxy (`books`) in front of the app."""

    def __init__(self, client: RunningProxy, server: RunningProxy, app: int) -> None:
        self.client = client
        self.server = server
        self.app = app

    async def get(self, path: str = "/") -> tuple[int, str, str]:
        url = f"http://127.0.0.1:{self.client.outbound_port}{path}"
        async with (
            aiohttp.ClientSession(headers={"Host": AUTHORITY}) as session,
            session.get(url) as response,
        ):
            error = response.headers.get("weft-proxy-error", "")
            return response.status, await response.text(), error


@pytest.fixture
async def mesh(proxies: Start, app: int) -> Callable[..., Awaitable[Mesh]]:
    async def start(
        client_ca: MeshCa,
        server_ca: MeshCa,
        expected: str | None = BOOKS,
        inbound: tuple[InboundServer, ...] = (),
    ) -> Mesh:
        server = await proxies(config(inbound=inbound), inbound_fallback_port=app)
        server.proxy.use_credentials(server_ca.credentials("books"))
        client = await proxies(meshed_books(server.inbound_port, expected))
        client.proxy.use_credentials(client_ca.credentials("web"))
        return Mesh(client, server, app)

    return start


def with_labels(lines: list[str], **labels: str) -> list[str]:
    return [line for line in lines if all(f'{k}="{v}"' in line for k, v in labels.items())]


async def test_meshed_requests_are_mtls_and_the_server_learns_the_client(
    mesh: Callable[..., Awaitable[Mesh]],
) -> None:
    ca = MeshCa()
    pair = await mesh(ca, ca)
    watcher = pair.server.proxy.tap.watch(TapFilter(direction="inbound"))
    assert await pair.get("/books/1") == (200, "books /books/1", "")
    tapped, _ = await asyncio.wait_for(watcher.next(), 5)
    assert (tapped.path, tapped.tls, tapped.source_identity) == ("/books/1", True, WEB)
    assert not pair.server.proxy.h2_sessions  # HTTP/1 stays HTTP/1 inside mTLS: cheaper
    served = pair.server.metric_lines("request_total")
    assert with_labels(served, direction="inbound", tls="true", client_id=WEB)
    sent = pair.client.metric_lines("request_total")
    assert with_labels(sent, direction="outbound", tls="true", server_id=BOOKS)


async def test_a_server_with_another_identity_is_refused(
    mesh: Callable[..., Awaitable[Mesh]],
) -> None:
    ca = MeshCa()
    pair = await mesh(ca, ca, expected=identity_name("ratings", "shop"))
    status, _, error = await pair.get()
    assert status == 502
    assert "connection to" in error
    assert not pair.server.metric_lines("request_total")  # nothing got through


async def test_a_peer_of_another_trust_root_is_refused(
    mesh: Callable[..., Awaitable[Mesh]],
) -> None:
    pair = await mesh(MeshCa(), MeshCa())
    status, _, _ = await pair.get()
    assert status == 502
    assert not pair.server.metric_lines("request_total")


async def test_plaintext_to_a_server_requiring_identity_is_denied_mtls_admitted(
    mesh: Callable[..., Awaitable[Mesh]], app: int
) -> None:
    ca = MeshCa()
    pair = await mesh(ca, ca, inbound=(requiring_identity(app),))
    plain = f"http://127.0.0.1:{pair.server.inbound_port}/"
    async with aiohttp.ClientSession() as session, session.get(plain) as response:
        assert response.status == 403
    assert (await pair.get())[0] == 200
    allowed = pair.server.metric_lines("inbound_http_authz_allow_total")
    assert with_labels(allowed, authz_name="meshed-only", client_id=WEB)
    denied = pair.server.metric_lines("inbound_http_authz_deny_total")
    assert with_labels(denied, tls="no_identity", client_id="")


async def test_tls_for_another_name_passes_through_untouched(
    proxies: Start, client_hello: Callable[..., bytes]
) -> None:
    """A client's own TLS to the app (not mesh TLS for this pod) is the app's to end."""
    received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def tls_app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.set_result(await reader.read(65536))
        writer.close()

    app_server = await asyncio.start_server(tls_app, "127.0.0.1", 0)
    port = app_server.sockets[0].getsockname()[1]
    server = await proxies(config(), inbound_fallback_port=port)
    server.proxy.use_credentials(MeshCa().credentials("books"))
    hello = client_hello("payments.example.com")
    _, writer = await asyncio.open_connection("127.0.0.1", server.inbound_port)
    writer.write(hello)
    await writer.drain()
    assert await asyncio.wait_for(received, 5) == hello
    writer.close()
    app_server.close()


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


class TcpClient:
    """Opaque TCP into the client proxy, as if redirected to `CLUSTER_IP:80` (a test
    has no iptables: the forward is called with that original destination)."""

    def __init__(self, client: RunningProxy) -> None:
        self.client = client
        self.server: asyncio.Server | None = None
        self.app: asyncio.Server | None = None

    async def start(self) -> TcpClient:
        async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self.client.proxy.outbound_tcp.forward(reader, writer, b"", (CLUSTER_IP, 80))

        self.server = await asyncio.start_server(forward, "127.0.0.1", 0)
        return self

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def roundtrip(self, payload: bytes) -> bytes:
        """Echoed back in full. (No half-close: TLS cannot carry one through Python's
        ssl transport, so a client's EOF is not passed on over mTLS.)"""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(payload)
        try:
            return await asyncio.wait_for(reader.readexactly(len(payload)), 5)
        finally:
            writer.close()


async def tcp_mesh(proxies: Start, ca: MeshCa) -> tuple[TcpClient, RunningProxy]:
    """Client and server proxies in front of an echo app, reached as opaque TCP."""
    echo_server = await asyncio.start_server(echo, "127.0.0.1", 0)
    echo_port = echo_server.sockets[0].getsockname()[1]
    server = await proxies(config())
    server.proxy.use_credentials(ca.credentials("books"))
    client = await proxies(meshed_books(echo_port))  # the endpoint is the app's own port
    client.proxy.use_credentials(ca.credentials("web"))
    client.proxy.outbound_state.connector.peer_port = server.inbound_port
    tcp = await TcpClient(client).start()
    tcp.app = echo_server  # kept: a Server nobody refers to may be collected
    return tcp, server


async def test_opaque_tcp_is_mtls_to_the_peer_proxy_which_forwards_it_by_its_header(
    proxies: Start,
) -> None:
    tcp, server = await tcp_mesh(proxies, MeshCa())
    payload = bytes(range(256)) * 64
    assert await tcp.roundtrip(payload) == payload
    opened = server.metric_lines("tcp_open_total")
    assert with_labels(opened, direction="inbound", tls="true", client_id=WEB)


async def test_rotating_the_trust_anchor_under_load_drops_no_request(
    mesh: Callable[..., Awaitable[Mesh]], proxies: Start
) -> None:
    """Linkerd's rotation: add the new anchor to the bundle, move the leaves to the new
    issuer, drop the old anchor. HTTP keeps its pooled connection; opaque TCP opens a
    connection (a handshake) each time, so it tries every step's credentials."""
    old, new = MeshCa(), MeshCa()
    pair = await mesh(old, old)
    tcp, tcp_server = await tcp_mesh(proxies, old)
    both = old.root_pem + new.root_pem
    steps = [
        (old, both),  # the bundle grows first,
        (new, both),  # then leaves come from the new issuer,
        (new, new.root_pem),  # then the old anchor goes
    ]
    failures: list[str] = []
    now = {"step": 0}  # which step the load saw fail, if any
    done = asyncio.Event()
    counts = {"http": 0, "tcp": 0}

    async def http_load() -> None:
        while not done.is_set():
            status, _, error = await pair.get()
            if status != 200:
                failures.append(f"http {status} {error} at step {now['step']}")
            counts["http"] += 1

    async def tcp_load() -> None:
        while not done.is_set():
            payload = b"ping %d" % counts["tcp"]
            try:
                answer = await tcp.roundtrip(payload)
            except (OSError, EOFError, TimeoutError) as error:
                answer = repr(error).encode()
            if answer != payload:
                failures.append(f"tcp {answer!r} at step {now['step']}")
            counts["tcp"] += 1

    load = [asyncio.create_task(f()) for f in (http_load, http_load, tcp_load)]
    for index, (ca, roots) in enumerate(steps):
        now["step"] = index
        # One proxy at a time, as pods renew at different moments.
        for running, account in ((pair.server, "books"), (pair.client, "web"),
                                 (tcp_server, "books"), (tcp.client, "web")):  # fmt: skip
            running.proxy.use_credentials(ca.credentials(account, trust_roots_pem=roots))
            await asyncio.sleep(0.3)
    done.set()
    await asyncio.gather(*load)
    assert failures == []
    assert counts["http"] > 20
    assert counts["tcp"] > 10
    # After the rotation only the new anchor is trusted: the old issuer's leaves fail.
    stale = await proxies(meshed_books(pair.server.inbound_port))
    stale.proxy.use_credentials(old.credentials("web"))
    stale_mesh = Mesh(stale, pair.server, pair.app)
    assert (await stale_mesh.get())[0] == 502


async def test_a_proxy_that_needs_an_identity_is_ready_only_with_its_certificate(
    proxies: Start,
) -> None:
    running = await proxies(config(), requires_identity=True)
    assert not running.proxy.admin.ready()
    running.proxy.use_credentials(MeshCa().credentials("web"))
    assert running.proxy.admin.ready()


async def test_a_meshed_endpoint_before_the_first_certificate_fails_rather_than_plaintext(
    proxies: Start, app: int
) -> None:
    server = await proxies(config(), inbound_fallback_port=app)
    client = await proxies(meshed_books(server.inbound_port))
    status, _, _ = await Mesh(client, server, app).get()
    assert status == 502
    assert not server.metric_lines("request_total")
