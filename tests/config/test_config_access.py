"""Who may read a config (issue 15): the config stream is mTLS with the proxy's own
workload certificate, and the server serves a hello only to the identity of the pod it
names (and, from a pod's IP, only to that pod). Refusals are PERMISSION_DENIED with the
reason, counted in `weft_operator_config_refusals_total{reason}`."""

from __future__ import annotations

import asyncio
import datetime
import os
import socket
import ssl
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from config_mesh import NAMESPACE, service, soon
from cryptography.hazmat.primitives import serialization
from prometheus_client import REGISTRY

from weft_api import config_proto
from weft_api.config import ProxyIdentity
from weft_api.csr import certificate_request, new_key
from weft_api.identity import identity_name, spiffe_id
from weft_api.mesh import ProxyEnv
from weft_api.mesh_ca import KeyPair, issue_leaf, new_issuer, new_trust_anchor
from weft_api.proto import discovery_pb2 as dpb
from weft_api.proto import discovery_pb2_grpc as dpb_grpc
from weft_api.proto import identity_pb2_grpc, tap_pb2, tap_pb2_grpc
from weft_operator.config_server.hub import ConfigHub
from weft_operator.config_server.server import ConfigServer, ServerTls
from weft_operator.identity.issuer_store import MeshCA
from weft_operator.identity.server import (
    config_server_credentials,
    server_credentials,
    serving_identity,
)
from weft_operator.identity.service import IdentityService
from weft_operator.identity.tokens import ServiceAccountRef, TokenRejected
from weft_operator.reconciler import Reconciler
from weft_proxy.config_client.backoff import Backoff
from weft_proxy.config_client.client import ConfigClient
from weft_proxy.identity.credentials import Credentials
from weft_resources.base import Kind
from weft_resources.kinds import BY_KIND

DOMAIN = "cluster.local"
CONTROL_PLANE = "weft"
SERVER_NAME = serving_identity(CONTROL_PLANE, DOMAIN)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Ca:
    def __init__(self) -> None:
        self.anchor = new_trust_anchor(DOMAIN, _now())
        self.issuer: KeyPair = new_issuer(self.anchor, DOMAIN, _now())
        self.mesh = MeshCA(self.issuer, self.anchor.cert_pem())

    def credentials(self, account: str, namespace: str = NAMESPACE) -> Credentials:
        key = new_key()
        identity, spiffe = identity_name(account, namespace), spiffe_id(account, namespace)
        leaf = issue_leaf(
            self.issuer, certificate_request(key, identity, spiffe), identity, spiffe, _now()
        )
        return proxy_credentials(identity, KeyPair(leaf, key), self)


def proxy_credentials(identity: str, leaf: KeyPair, ca: Ca) -> Credentials:
    """What the proxy holds of a leaf the identity service issued."""
    der = serialization.Encoding.DER
    return Credentials(
        identity,
        leaf.key_pem(),
        leaf.cert.public_bytes(der),
        (ca.issuer.cert.public_bytes(der),),
        ca.anchor.cert_pem(),
        leaf.cert.not_valid_after_utc.timestamp(),
    )


def channel_credentials(credentials: Credentials) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=credentials.trust_roots_pem,
        private_key=credentials.key_pem,
        certificate_chain=credentials.certificates_pem(),
    )


def pod(name: str, account: str, ip: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"serviceAccountName": account, "containers": [{"name": "app"}]},
    }
    if ip:
        body["status"] = {"podIP": ip, "podIPs": [{"ip": ip}]}
    return body


@dataclass
class TlsMesh:
    ca: Ca
    reconciler: Reconciler
    server: ConfigServer
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def apply(self, *bodies: dict[str, Any]) -> None:
        for body in bodies:
            self.reconciler.observe(BY_KIND[Kind(body["kind"])], "MODIFIED", body)


@pytest.fixture
async def tls_mesh() -> AsyncIterator[TlsMesh]:
    ca = Ca()
    reconciler = Reconciler()
    tls = ServerTls(config_server_credentials(ca.mesh, CONTROL_PLANE, DOMAIN), DOMAIN)
    server = ConfigServer(ConfigHub(reconciler.index), batch_window=0.02, tls=tls, pod_wait=0.3)
    reconciler.add_listener(server.on_change)
    port = await server.start("127.0.0.1", 0)
    mesh = TlsMesh(ca, reconciler, server, port)
    # web-0 is the pod the tests' streams come from (loopback); web-1 shares its account
    mesh.apply(
        pod("web-0", "web", "127.0.0.1"),
        pod("web-1", "web", "10.0.0.6"),
        pod("books-0", "books", "10.0.0.7"),
        service("books", "10.96.0.50"),
    )
    yield mesh
    await server.stop(grace=None)


def refusals(reason: str) -> float:
    value = REGISTRY.get_sample_value("weft_operator_config_refusals_total", {"reason": reason})
    return value or 0.0


async def first_answer(
    address: str,
    identity: ProxyIdentity,
    credentials: grpc.ChannelCredentials | None,
) -> dpb.ConfigUpdate:
    """Open a stream, send a hello, return the first update (or raise its status)."""
    options = [("grpc.ssl_target_name_override", SERVER_NAME)]
    if credentials is None:
        channel = grpc.aio.insecure_channel(address)
    else:
        channel = grpc.aio.secure_channel(address, credentials, options)
    async with channel:
        call = dpb_grpc.ConfigDiscoveryStub(channel).Stream()
        hello = dpb.Hello(identity=config_proto.identity_to_proto(identity))
        await call.write(dpb.ProxyRequest(hello=hello))
        update = await asyncio.wait_for(call.read(), 10)
        call.cancel()
        assert isinstance(update, dpb.ConfigUpdate)
        return update


async def refused(
    mesh: TlsMesh, identity: ProxyIdentity, credentials: Credentials
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await first_answer(mesh.address, identity, channel_credentials(credentials))
    return raised.value


async def test_a_proxy_with_its_own_certificate_is_served_over_mtls(tls_mesh: TlsMesh) -> None:
    web = ProxyIdentity(pod="web-0", namespace=NAMESPACE, service_account="web")
    update = await first_answer(
        tls_mesh.address, web, channel_credentials(tls_mesh.ca.credentials("web"))
    )
    assert update.full


async def test_a_hello_forged_for_another_pod_is_refused_with_the_reason(
    tls_mesh: TlsMesh,
) -> None:
    """The books pod's config asked for with web's certificate (the issue's attack)."""
    before = refusals("wrong-identity")
    books = ProxyIdentity(pod="books-0", namespace=NAMESPACE, service_account="books")
    error = await refused(tls_mesh, books, tls_mesh.ca.credentials("web"))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "books.shop.serviceaccount.identity.cluster.local" in (error.details() or "")
    assert "web.shop.serviceaccount.identity.cluster.local" in (error.details() or "")
    assert refusals("wrong-identity") == before + 1
    assert not tls_mesh.server.hub.sessions  # nothing was built or held for it


async def test_a_hello_that_lies_about_its_service_account_is_refused(
    tls_mesh: TlsMesh,
) -> None:
    before = refusals("wrong-service-account")
    lying = ProxyIdentity(pod="web-0", namespace=NAMESPACE, service_account="books")
    error = await refused(tls_mesh, lying, tls_mesh.ca.credentials("web"))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "ServiceAccount 'books'" in (error.details() or "")
    assert refusals("wrong-service-account") == before + 1


async def test_a_pod_of_the_same_account_cannot_read_its_siblings_config(
    tls_mesh: TlsMesh,
) -> None:
    """web-0 (at 127.0.0.1) asks for web-1's config: same identity, another pod's IP."""
    before = refusals("wrong-pod")
    sibling = ProxyIdentity(pod="web-1", namespace=NAMESPACE, service_account="web")
    error = await refused(tls_mesh, sibling, tls_mesh.ca.credentials("web"))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "from pod shop/web-0 (127.0.0.1), not shop/web-1" in (error.details() or "")
    assert refusals("wrong-pod") == before + 1


async def test_hellos_for_pods_that_do_not_exist_are_refused(tls_mesh: TlsMesh) -> None:
    before = refusals("unknown-pod")
    ghosts = [
        ProxyIdentity(pod=f"ghost-{n}", namespace=NAMESPACE, service_account="web")
        for n in range(20)
    ]
    credentials = tls_mesh.ca.credentials("web")
    errors = await asyncio.gather(*(refused(tls_mesh, ghost, credentials) for ghost in ghosts))
    assert {error.code() for error in errors} == {grpc.StatusCode.PERMISSION_DENIED}
    assert "no pod shop/ghost-3" in (errors[3].details() or "")
    assert refusals("unknown-pod") == before + 20


async def test_a_hello_waits_for_its_new_pod_to_reach_the_index(tls_mesh: TlsMesh) -> None:
    """A new pod's proxy can connect before the operator's watch shows the pod."""
    tls_mesh.server.pod_wait = 10.0
    tls_mesh.apply(pod("web-0", "web", "10.0.0.5"))  # loopback will be web-2's address
    new = ProxyIdentity(pod="web-2", namespace=NAMESPACE, service_account="web")
    answer = asyncio.create_task(
        first_answer(tls_mesh.address, new, channel_credentials(tls_mesh.ca.credentials("web")))
    )
    await soon(lambda: tls_mesh.server.waiting, "the hello to wait for its pod")
    tls_mesh.apply(pod("web-2", "web", "127.0.0.1"))
    assert (await answer).full


@pytest.mark.parametrize("who", ["plain text", "another trust root", "no client certificate"])
async def test_a_client_without_a_mesh_certificate_gets_no_stream(
    tls_mesh: TlsMesh, who: str
) -> None:
    web = ProxyIdentity(pod="web-0", namespace=NAMESPACE, service_account="web")
    if who == "plain text":
        credentials = None
    elif who == "another trust root":
        credentials = channel_credentials(Ca().credentials("web"))
    else:
        credentials = grpc.ssl_channel_credentials(root_certificates=tls_mesh.ca.anchor.cert_pem())
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await first_answer(tls_mesh.address, web, credentials)
    assert raised.value.code() is grpc.StatusCode.UNAVAILABLE  # the handshake failed


async def test_a_stream_ends_when_its_client_certificate_expires(tls_mesh: TlsMesh) -> None:
    """So a renewed certificate reaches the stream: the proxy reconnects with it."""
    ca = tls_mesh.ca
    key = new_key()
    identity, spiffe = identity_name("web", NAMESPACE), spiffe_id("web", NAMESPACE)
    csr = certificate_request(key, identity, spiffe)
    # a leaf whose life ends two seconds from now
    start = _now() - datetime.timedelta(hours=24) + datetime.timedelta(seconds=2)
    leaf = issue_leaf(ca.issuer, csr, identity, spiffe, start)
    short = proxy_credentials(identity, KeyPair(leaf, key), ca)
    web = ProxyIdentity(pod="web-0", namespace=NAMESPACE, service_account="web")
    options = [("grpc.ssl_target_name_override", SERVER_NAME)]
    async with grpc.aio.secure_channel(
        tls_mesh.address, channel_credentials(short), options
    ) as channel:
        call = dpb_grpc.ConfigDiscoveryStub(channel).Stream()
        hello = dpb.Hello(identity=config_proto.identity_to_proto(web))
        await call.write(dpb.ProxyRequest(hello=hello))
        first = await call.read()
        assert isinstance(first, dpb.ConfigUpdate)
        await call.write(dpb.ProxyRequest(ack=dpb.Ack(nonce=first.nonce, version=first.version)))
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await asyncio.wait_for(call.read(), 20)
    assert raised.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "certificate expired" in (raised.value.details() or "")


async def test_the_config_client_reconnects_with_the_renewed_certificate(
    tls_mesh: TlsMesh,
) -> None:
    """Each stream takes the current credentials: a renewal reaches the next stream."""
    issued: list[Credentials] = []

    async def current() -> ssl.SSLContext:
        issued.append(tls_mesh.ca.credentials("web"))
        return issued[-1].client_context()

    web = ProxyIdentity(pod="web-0", namespace=NAMESPACE, service_account="web")
    client = ConfigClient(
        tls_mesh.address,
        web,
        credentials=current,
        server_name=SERVER_NAME,
        backoff=Backoff(base=0.05, cap=0.2),
    )
    running = asyncio.create_task(client.run())
    try:
        await soon(lambda: client.ready, "the first config over mTLS")
        first = next(iter(tls_mesh.server.hub.sessions))
        await tls_mesh.server.stop(grace=None)  # the control plane restarts
        tls_mesh.port = await tls_mesh.server.start("127.0.0.1", tls_mesh.port)
        await soon(lambda: client.streams >= 2, "a second stream")
        assert len(issued) >= 2
        assert first not in tls_mesh.server.hub.sessions
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


def proxy_client(
    mesh: TlsMesh, identity: ProxyIdentity, account: str, **options: Any
) -> ConfigClient:
    credentials = mesh.ca.credentials(account)

    async def current() -> ssl.SSLContext:
        return credentials.client_context()

    options.setdefault("server_name", SERVER_NAME)
    return ConfigClient(
        mesh.address, identity, credentials=current, backoff=Backoff(base=0.05, cap=0.2), **options
    )


async def test_the_config_client_refused_learns_why_and_keeps_trying(tls_mesh: TlsMesh) -> None:
    """The proxy's own client (grpclib) gets the operator's (grpcio) PERMISSION_DENIED
    with its reason, configures nothing from it, and retries with back-off."""
    before = refusals("wrong-identity")
    books = ProxyIdentity(pod="books-0", namespace=NAMESPACE, service_account="books")
    client = proxy_client(tls_mesh, books, "web")
    running = asyncio.create_task(client.run())
    try:
        await soon(lambda: refusals("wrong-identity") >= before + 2, "a refusal, then a retry")
        assert client.last_error.startswith("PERMISSION_DENIED: refused:")
        assert "books.shop.serviceaccount.identity.cluster.local" in client.last_error
        assert not client.ready
        assert client.streams == 0
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_the_config_client_refuses_a_server_without_the_operators_identity(
    tls_mesh: TlsMesh,
) -> None:
    """The server's certificate is of the mesh, but not for the name the proxy expects:
    the handshake fails, so the hello (and the pod's identity) is never sent."""
    web = ProxyIdentity(pod="web-0", namespace=NAMESPACE, service_account="web")
    impostor = identity_name("web", NAMESPACE)  # a name the server's leaf does not carry
    client = proxy_client(tls_mesh, web, "web", server_name=impostor)
    running = asyncio.create_task(client.run())
    try:
        await soon(lambda: client.last_error, "the first attempt to end")
        assert "certificate verify failed" in client.last_error
        assert "Hostname mismatch" in client.last_error
        assert not tls_mesh.server.hub.sessions
        assert not client.ready
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


# --- the proxy process: certificate first, then config ----------------------------------


class Reviewer:
    """TokenReview stand-in: one token, one ServiceAccount."""

    async def review(self, token: str) -> ServiceAccountRef:
        if token != "web-token":
            raise TokenRejected("unknown token")
        return ServiceAccountRef(NAMESPACE, "web")


async def tap_answer(address: str, credentials: grpc.ChannelCredentials | None) -> str:
    """'admitted' once the proxy's tap accepts the stream, else its status."""
    options = [("grpc.ssl_target_name_override", identity_name("web", NAMESPACE))]
    if credentials is None:
        channel = grpc.aio.insecure_channel(address)
    else:
        channel = grpc.aio.secure_channel(address, credentials, options)
    async with channel:
        call = tap_pb2_grpc.TapStub(channel).Observe(tap_pb2.ObserveRequest(), timeout=10)
        try:
            await call.initial_metadata()  # sent at admission; a refusal ends the call
            if call.done():
                return f"{(await call.code()).name}: {await call.details()}"
            return "admitted"
        except grpc.aio.AioRpcError as error:
            return f"{error.code().name}: {error.details()}"
        finally:
            call.cancel()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_the_proxy_process_certifies_then_follows_its_config_over_mtls(
    tls_mesh: TlsMesh, tmp_path: Path
) -> None:
    identity = grpc.aio.server()
    roots = tls_mesh.ca.mesh.trust_roots_pem
    service = IdentityService(tls_mesh.ca.issuer, DOMAIN, Reviewer(), trust_roots_pem=roots)
    identity_pb2_grpc.add_IdentityServicer_to_server(service, identity)
    identity_port = identity.add_secure_port(
        "127.0.0.1:0", server_credentials(tls_mesh.ca.mesh, CONTROL_PLANE, DOMAIN)
    )
    await identity.start()
    token = tmp_path / "token"
    token.write_text("web-token")
    ports = {name: free_port() for name in ("inbound", "outbound", "admin", "tap")}
    env = dict(
        os.environ,
        **{
            ProxyEnv.POD_NAME: "web-0",
            ProxyEnv.POD_NAMESPACE: NAMESPACE,
            ProxyEnv.POD_SERVICE_ACCOUNT: "web",
            ProxyEnv.CONFIG_ADDR: tls_mesh.address,
            ProxyEnv.IDENTITY_ADDR: f"127.0.0.1:{identity_port}",
            ProxyEnv.IDENTITY_TOKEN_FILE: str(token),
            ProxyEnv.TRUST_ANCHORS: tls_mesh.ca.anchor.cert_pem().decode(),
            ProxyEnv.IDENTITY_SERVER_NAME: SERVER_NAME,
            ProxyEnv.TAP_CLIENTS: "cli",
            ProxyEnv.INBOUND_LISTEN_ADDR: f"127.0.0.1:{ports['inbound']}",
            ProxyEnv.OUTBOUND_LISTEN_ADDR: f"127.0.0.1:{ports['outbound']}",
            ProxyEnv.ADMIN_LISTEN_ADDR: f"127.0.0.1:{ports['admin']}",
            ProxyEnv.TAP_LISTEN_ADDR: f"127.0.0.1:{ports['tap']}",
        },
    )
    proxy = await asyncio.create_subprocess_exec(sys.executable, "-m", "weft_proxy", env=env)
    admin = f"http://127.0.0.1:{ports['admin']}"
    try:
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                try:
                    async with http.get(f"{admin}/ready") as response:
                        return response.status == 200
                except aiohttp.ClientConnectionError:
                    return False

            await soon(ready, "the proxy ready: certificate, then config", within=20)  # type: ignore[arg-type]
            # Certified without loading cryptography (~9 MiB in every pod, issue 15): the
            # key and CSR came from a child process.
            maps = await asyncio.to_thread(Path(f"/proc/{proxy.pid}/maps").read_text)
            assert "/cryptography/" not in maps
            sessions = tls_mesh.server.hub.sessions.values()
            assert [session.name for session in sessions] == [f"{NAMESPACE}/web-0"]
            tap = f"127.0.0.1:{ports['tap']}"
            cli = tls_mesh.ca.credentials("weft-cli", CONTROL_PLANE)
            assert await tap_answer(tap, channel_credentials(cli)) == "admitted"
            refusal = await tap_answer(tap, channel_credentials(tls_mesh.ca.credentials("web")))
            assert refusal.startswith("PERMISSION_DENIED: tap: web.shop.serviceaccount")
            assert (await tap_answer(tap, None)).startswith("UNAVAILABLE")  # no plain text
            async with http.post(f"{admin}/shutdown") as response:
                assert response.status == 202
        assert await asyncio.wait_for(proxy.wait(), timeout=15) == 0
    finally:
        if proxy.returncode is None:
            proxy.kill()
            await proxy.wait()
        await identity.stop(None)
