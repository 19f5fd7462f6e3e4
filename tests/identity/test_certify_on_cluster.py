"""Certify on the real API server: projected tokens checked by TokenReview, leaves over a
TLS gRPC channel, renewal before expiry, and an mTLS handshake between two workloads."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from kubernetes_asyncio import client
from kubernetes_asyncio.client.api_client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException
from prometheus_client import CollectorRegistry

from weft_api.identity import identity_name, spiffe_id
from weft_api.mesh import TRUST_ROOTS, TRUST_ROOTS_KEY
from weft_cli import local_install
from weft_localcluster import processes
from weft_localcluster.cluster import ClusterInfo
from weft_localcluster.ports import pick_free as free_port
from weft_localcluster.waiting import eventually
from weft_operator.identity.issuer_store import load_or_create
from weft_operator.identity.server import serving_identity, start_identity_server
from weft_operator.identity.tokens import AUDIENCE
from weft_proxy.identity.certifier import Certifier, CertifyFailed
from weft_proxy.identity.credentials import Credentials, peer_identity


async def token(api: ApiClient, namespace: str, account: str, audience: str = AUDIENCE) -> str:
    core = client.CoreV1Api(api)
    await core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=account))
    )
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[audience], expiration_seconds=600)
    )
    issued = await core.create_namespaced_service_account_token(account, namespace, request)
    value: str = issued.status.token
    return value


class Mesh:
    def __init__(self, api: ApiClient, namespace: str, port: int, roots: bytes) -> None:
        self.api = api
        self.namespace = namespace
        self.port = port
        self.roots = roots

    async def certifier(
        self, tmp: Path, account: str, claimed: str | None = None, audience: str = AUDIENCE
    ) -> Certifier:
        path = tmp / f"{account}-{abs(hash(audience))}.token"
        path.write_text(await token(self.api, self.namespace, account, audience))
        return Certifier(
            identity=claimed or identity_name(account, self.namespace),
            spiffe=spiffe_id(account, self.namespace),
            token_path=path,
            address=f"127.0.0.1:{self.port}",
            server_identity=serving_identity(self.namespace, "cluster.local"),
            trust_roots_pem=self.roots,
            registry=CollectorRegistry(),
        )


@pytest.fixture
async def mesh(api: ApiClient, namespace: str) -> AsyncIterator[Mesh]:
    ca = await load_or_create(api, namespace, "cluster.local", generate=True)
    again = await load_or_create(api, namespace, "cluster.local", generate=False)
    assert again.issuer.cert == ca.issuer.cert  # kept in the Secret, not made anew
    server, port = await start_identity_server(
        api, ca, namespace, "cluster.local", "127.0.0.1:0", datetime.timedelta(seconds=3)
    )
    yield Mesh(api, namespace, port, ca.trust_roots_pem)
    await server.stop(None)


async def test_a_workload_gets_a_leaf_for_its_service_account(mesh: Mesh, tmp_path: Path) -> None:
    credentials = await (await mesh.certifier(tmp_path, "books")).certify()
    assert credentials.identity == identity_name("books", mesh.namespace)
    leaf = x509.load_der_x509_certificate(credentials.leaf_der)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert sans.value.get_values_for_type(x509.DNSName) == [credentials.identity]


async def test_a_token_cannot_claim_another_identity(mesh: Mesh, tmp_path: Path) -> None:
    thief = await mesh.certifier(tmp_path, "web", claimed=identity_name("books", mesh.namespace))
    with pytest.raises(CertifyFailed, match="PERMISSION_DENIED: the token proves"):
        await thief.certify()


async def test_a_token_for_another_audience_is_refused(mesh: Mesh, tmp_path: Path) -> None:
    wrong = await mesh.certifier(tmp_path, "books", audience="https://kubernetes.default.svc")
    with pytest.raises(CertifyFailed, match="UNAUTHENTICATED"):
        await wrong.certify()


async def test_the_leaf_is_renewed_before_it_expires(mesh: Mesh, tmp_path: Path) -> None:
    certifier = await mesh.certifier(tmp_path, "books")
    seen: list[Credentials] = []
    certifier.on_rotate.append(seen.append)
    task = asyncio.create_task(certifier.run())
    try:
        for _ in range(100):
            if len(seen) >= 2:
                break
            await asyncio.sleep(0.1)
    finally:
        task.cancel()
    assert len(seen) >= 2  # leaves of 3 s, renewed at ~2.1 s
    assert seen[0].leaf_der != seen[1].leaf_der
    assert seen[1].key_pem != seen[0].key_pem  # a fresh key each time


async def test_two_workloads_handshake_mtls_and_learn_each_others_identity(
    mesh: Mesh, tmp_path: Path
) -> None:
    server = await (await mesh.certifier(tmp_path, "books")).certify()
    client_side = await (await mesh.certifier(tmp_path, "web")).certify()
    learned: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        learned.set_result(peer_identity(writer.get_extra_info("ssl_object")))
        writer.close()

    listener = await asyncio.start_server(on_client, "127.0.0.1", 0, ssl=server.server_context())
    port = listener.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client_side.client_context(), server_hostname=server.identity
    )
    assert await asyncio.wait_for(learned, 5) == client_side.identity
    assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"
    writer.close()
    with pytest.raises(ssl.SSLCertVerificationError):  # not the identity discovery named
        await asyncio.open_connection(
            "127.0.0.1",
            port,
            ssl=client_side.client_context(),
            server_hostname=identity_name("ratings", mesh.namespace),
        )
    listener.close()


async def test_the_operator_process_generates_the_issuer_and_certifies(
    cluster: ClusterInfo, api: ApiClient, namespace: str, tmp_path: Path
) -> None:
    control_plane, port = "weft-identity-test", free_port()
    operator = local_install.start_operator(
        cluster, control_plane, free_port(), name="weft-operator-identity", identity_port=port
    )
    try:
        core = client.CoreV1Api(api)

        async def roots() -> bytes | None:
            try:
                found = await core.read_namespaced_config_map(TRUST_ROOTS, control_plane)
            except ApiException:
                return None
            return str(found.data[TRUST_ROOTS_KEY]).encode()

        pem = await eventually(roots, "the operator to publish its trust roots", within=60)
        path = tmp_path / "token"
        path.write_text(await token(api, namespace, "books"))
        certifier = Certifier(
            identity=identity_name("books", namespace),
            spiffe=spiffe_id("books", namespace),
            token_path=path,
            address=f"127.0.0.1:{port}",
            server_identity=serving_identity(control_plane, "cluster.local"),
            trust_roots_pem=pem,
            registry=CollectorRegistry(),
        )

        async def certified() -> Credentials | None:
            try:
                return await certifier.certify()
            except CertifyFailed:
                return None  # the server may still be starting

        credentials = await eventually(certified, "a leaf from the operator", within=30)
        assert credentials.identity == identity_name("books", namespace)
    finally:
        processes.stop(operator, Path(cluster.state_dir))


async def test_a_renewal_brings_the_current_trust_bundle(mesh: Mesh, tmp_path: Path) -> None:
    """A proxy started with last rotation's bundle (an extra, retired anchor) trusts
    only the current one after certifying: rotations reach running proxies."""
    from weft_api.mesh_ca import new_trust_anchor

    retired = new_trust_anchor("cluster.local", datetime.datetime.now(datetime.UTC))
    retired_pem = retired.cert.public_bytes(serialization.Encoding.PEM)
    certifier = await mesh.certifier(tmp_path, "books")
    certifier.trust_roots_pem = mesh.roots + retired_pem
    credentials = await certifier.certify()
    assert credentials.trust_roots_pem == mesh.roots
    assert certifier.trust_roots_pem == mesh.roots
