"""The mesh CA signs exactly the identity asked for, and only with a sound CSR."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from weft_api.csr import certificate_request, new_key
from weft_api.identity import identity_name, spiffe_id
from weft_api.mesh_ca import CertifyError, issue_leaf, new_issuer, new_trust_anchor

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)
IDENTITY = identity_name("books", "shop")
SPIFFE = spiffe_id("books", "shop")


def csr_with(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, *names: x509.GeneralName
) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_a_leaf_chains_to_the_anchor_and_names_the_identity() -> None:
    anchor = new_trust_anchor("cluster.local", NOW)
    issuer = new_issuer(anchor, "cluster.local", NOW)
    key = new_key()
    leaf = issue_leaf(issuer, certificate_request(key, IDENTITY, SPIFFE), IDENTITY, SPIFFE, NOW)
    verifier = (
        PolicyBuilder()
        .store(Store([anchor.cert]))
        .time(NOW + datetime.timedelta(hours=1))
        .build_server_verifier(x509.DNSName(IDENTITY))
    )
    chain = verifier.verify(leaf, [issuer.cert])
    assert chain[-1] == anchor.cert
    assert leaf.public_key() == key.public_key()
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [SPIFFE]
    assert leaf.not_valid_after_utc - NOW == datetime.timedelta(hours=24)


@pytest.mark.parametrize(
    ("names", "reason"),
    [
        ((), "exactly 'books.shop.serviceaccount"),
        ((x509.DNSName("web.shop.serviceaccount.identity.cluster.local"),), "exactly"),
        ((x509.DNSName(IDENTITY), x509.DNSName("evil.example")), "exactly"),
        ((x509.DNSName(IDENTITY), x509.UniformResourceIdentifier("spiffe://x/ns/a/sa/b")), "URI"),
    ],
)
def test_a_csr_asking_for_anything_else_is_refused(
    names: tuple[x509.GeneralName, ...], reason: str
) -> None:
    issuer = new_issuer(new_trust_anchor("cluster.local", NOW), "cluster.local", NOW)
    with pytest.raises(CertifyError, match=reason):
        issue_leaf(issuer, csr_with(new_key(), *names), IDENTITY, SPIFFE, NOW)


def test_weak_keys_and_garbage_are_refused() -> None:
    issuer = new_issuer(new_trust_anchor("cluster.local", NOW), "cluster.local", NOW)
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(CertifyError, match="too small"):
        issue_leaf(issuer, csr_with(weak, x509.DNSName(IDENTITY)), IDENTITY, SPIFFE, NOW)
    with pytest.raises(CertifyError, match="not a DER-encoded"):
        issue_leaf(issuer, b"not a csr", IDENTITY, SPIFFE, NOW)


def test_a_leaf_never_outlives_its_issuer() -> None:
    anchor = new_trust_anchor("cluster.local", NOW)
    issuer = new_issuer(anchor, "cluster.local", NOW)
    late = issuer.cert.not_valid_after_utc - datetime.timedelta(hours=1)
    leaf = issue_leaf(
        issuer, certificate_request(new_key(), IDENTITY, SPIFFE), IDENTITY, SPIFFE, late
    )
    assert leaf.not_valid_after_utc == issuer.cert.not_valid_after_utc


def test_an_issuer_names_the_key_of_its_anchor_so_rotation_can_tell_anchors_apart() -> None:
    """During a rotation two anchors share a subject; verifiers pick by key identifier."""
    anchor = new_trust_anchor("cluster.local", NOW)
    issuer = new_issuer(anchor, "cluster.local", NOW)
    authority = issuer.cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    subject = anchor.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert authority.value.key_identifier == subject.value.digest
