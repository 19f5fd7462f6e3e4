"""The proxy's key and CSR come from a short-lived child process (issue 15: the
long-lived proxy never loads `cryptography`), and OpenSSL, not cryptography, refuses a
leaf that is not for the proxy's key."""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from prometheus_client import CollectorRegistry

from weft_api.csr import certificate_request, new_key
from weft_api.identity import identity_name, spiffe_id
from weft_api.mesh_ca import KeyPair, issue_leaf, new_issuer, new_trust_anchor
from weft_api.proto import identity_pb2_grpc
from weft_operator.identity.issuer_store import MeshCA
from weft_operator.identity.server import server_credentials, serving_identity
from weft_operator.identity.service import IdentityService
from weft_operator.identity.tokens import ServiceAccountRef, TokenRejected
from weft_proxy.identity import certifier as certifier_module
from weft_proxy.identity import keygen
from weft_proxy.identity.certifier import Certifier
from weft_proxy.identity.credentials import Credentials
from weft_proxy.identity.keygen import KeyAndCsr, KeygenFailed, new_key_and_csr

IDENTITY = identity_name("books", "shop")
SPIFFE = spiffe_id("books", "shop")


async def test_the_key_maker_gives_a_key_and_a_csr_for_exactly_this_identity() -> None:
    made = await new_key_and_csr(IDENTITY, SPIFFE)
    csr = x509.load_der_x509_csr(made.csr_der)
    key = serialization.load_pem_private_key(made.key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert csr.is_signature_valid
    assert csr.public_key() == key.public_key()
    sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [IDENTITY]
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [SPIFFE]
    again = await new_key_and_csr(IDENTITY, SPIFFE)
    assert again.key_pem != made.key_pem  # a fresh key each time


async def test_a_key_maker_that_fails_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    """The certifier retries on KeygenFailed; its message is what the proxy logs."""
    monkeypatch.setattr(keygen, "PROGRAM", "weft_proxy.identity.no_such_program")
    with pytest.raises(KeygenFailed, match=r"exited with 1: .*No module named"):
        await new_key_and_csr(IDENTITY, SPIFFE)


def test_a_leaf_for_another_key_is_refused() -> None:
    """What the certifier checks a new leaf with: the TLS context it will serve with."""
    now = datetime.datetime.now(datetime.UTC)
    anchor = new_trust_anchor("cluster.local", now)
    issuer = new_issuer(anchor, "cluster.local", now)
    ours, theirs = new_key(), new_key()
    leaf = issue_leaf(issuer, certificate_request(theirs, IDENTITY, SPIFFE), IDENTITY, SPIFFE, now)
    der = serialization.Encoding.DER

    def holding(key: ec.EllipticCurvePrivateKey) -> Credentials:
        return Credentials(
            IDENTITY,
            KeyPair(leaf, key).key_pem(),
            leaf.public_bytes(der),
            (issuer.cert.public_bytes(der),),
            anchor.cert_pem(),
            leaf.not_valid_after_utc.timestamp(),
        )

    holding(theirs).client_context()
    with pytest.raises(ssl.SSLError, match="KEY_VALUES_MISMATCH"):
        holding(ours).client_context()


async def test_retries_of_a_certification_reuse_its_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """While the identity service is unreachable the proxy retries with back-off; it
    makes a key (a child process) once for the leaf it asks for, not at every retry."""
    made: list[KeyAndCsr] = []

    async def counted(identity: str, spiffe: str) -> KeyAndCsr:
        made.append(await new_key_and_csr(identity, spiffe))
        return made[-1]

    monkeypatch.setattr(certifier_module, "new_key_and_csr", counted)
    token = tmp_path / "token"
    token.write_text("a token")
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    certifier = Certifier(
        identity=IDENTITY,
        spiffe=SPIFFE,
        token_path=token,
        address=f"127.0.0.1:{port}",
        server_identity="weft-operator.weft.serviceaccount.identity.cluster.local",
        trust_roots_pem=new_trust_anchor(
            "cluster.local", datetime.datetime.now(datetime.UTC)
        ).cert_pem(),
        registry=CollectorRegistry(),
    )
    for _ in range(3):
        with pytest.raises(ConnectionRefusedError):
            await certifier.certify()
    assert len(made) == 1


class OneToken:
    """TokenReview stand-in (a review needs an API server: tests/identity's cluster
    tests run the real one): one token, proving books in shop."""

    async def review(self, token: str) -> ServiceAccountRef:
        if token != "books-token":
            raise TokenRejected("unknown token")
        return ServiceAccountRef("shop", "books")


async def test_the_certifier_renews_before_expiry_with_a_fresh_key_each_time(
    tmp_path: Path,
) -> None:
    """The whole path without cryptography in the proxy: the key maker's CSR, the
    identity service's leaf, checked by OpenSSL, renewed at 70% of its 3 s."""
    now = datetime.datetime.now(datetime.UTC)
    anchor = new_trust_anchor("cluster.local", now)
    ca = MeshCA(new_issuer(anchor, "cluster.local", now), anchor.cert_pem())
    server = grpc.aio.server()
    service = IdentityService(
        ca.issuer,
        "cluster.local",
        OneToken(),
        lifetime=datetime.timedelta(seconds=3),
        trust_roots_pem=ca.trust_roots_pem,
    )
    identity_pb2_grpc.add_IdentityServicer_to_server(service, server)
    port = server.add_secure_port("127.0.0.1:0", server_credentials(ca, "weft", "cluster.local"))
    await server.start()
    token = tmp_path / "token"
    token.write_text("books-token")
    certifier = Certifier(
        identity=IDENTITY,
        spiffe=SPIFFE,
        token_path=token,
        address=f"127.0.0.1:{port}",
        server_identity=serving_identity("weft", "cluster.local"),
        trust_roots_pem=anchor.cert_pem(),
        registry=CollectorRegistry(),
    )
    seen: list[Credentials] = []
    renewed = asyncio.Event()

    def rotated(credentials: Credentials) -> None:
        seen.append(credentials)
        if len(seen) == 2:
            renewed.set()

    certifier.on_rotate.append(rotated)
    running = asyncio.create_task(certifier.run())
    try:
        await asyncio.wait_for(renewed.wait(), 60)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await server.stop(None)
    first, second = (x509.load_der_x509_certificate(c.leaf_der) for c in seen[:2])
    assert first.serial_number != second.serial_number
    assert seen[0].key_pem != seen[1].key_pem
    assert seen[0].not_after == int(first.not_valid_after_utc.timestamp())
    sans = first.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [IDENTITY]
