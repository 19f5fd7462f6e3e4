"""The mesh's certificate authority: a trust anchor, an issuer it signs, and short-lived
workload leaves the issuer signs from CSRs. Pure: no I/O, the time is a parameter.

A CSR is trusted for nothing but its public key: the leaf's names are the identity the
caller proved (its ServiceAccount token), and the CSR must ask for exactly that name.
"""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from weft_api.pki import KeyPair as KeyPair  # the CA speaks of key pairs; callers import it here

LEAF_LIFETIME = datetime.timedelta(hours=24)
ISSUER_LIFETIME = datetime.timedelta(days=365)
ANCHOR_LIFETIME = datetime.timedelta(days=3650)
CLOCK_SKEW = datetime.timedelta(seconds=20)  # a peer's clock slightly behind still accepts
MIN_RSA_BITS = 2048


_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


class CertifyError(ValueError):
    """A CSR the issuer refuses; the message says why, for the proxy's log."""


def _ca(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    signer: KeyPair | None,
    now: datetime.datetime,
    lifetime: datetime.timedelta,
    path_length: int | None,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer.cert.subject if signer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if signer is not None:
        # Anchors old and new share a subject during a rotation: the key identifier is
        # what lets a verifier pick the one that signed this issuer.
        authority = x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.key.public_key())
        builder = builder.add_extension(authority, False)
    signing_key = signer.key if signer else key
    return builder.sign(signing_key, hashes.SHA256())


def new_trust_anchor(trust_domain: str, now: datetime.datetime) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _ca(f"root.{trust_domain}", key, None, now, ANCHOR_LIFETIME, path_length=1)
    return KeyPair(cert, key)


def new_issuer(anchor: KeyPair, trust_domain: str, now: datetime.datetime) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    lifetime = min(ISSUER_LIFETIME, anchor.cert.not_valid_after_utc - now)
    cert = _ca(f"identity.{trust_domain}", key, anchor, now, lifetime, path_length=0)
    return KeyPair(cert, key)


def _requested_names(csr: x509.CertificateSigningRequest) -> tuple[list[str], list[str]]:
    try:
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return sans.get_values_for_type(x509.DNSName), sans.get_values_for_type(
        x509.UniformResourceIdentifier
    )


def _check_key(csr: x509.CertificateSigningRequest) -> None:
    key = csr.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1 | ec.SECP384R1):
            raise CertifyError(f"unsupported curve {key.curve.name}: use P-256")
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise CertifyError(f"RSA key of {key.key_size} bits is too small")
    else:
        raise CertifyError("the CSR's key must be ECDSA (P-256) or RSA")


def issue_leaf(
    issuer: KeyPair,
    csr_der: bytes,
    identity: str,
    spiffe: str,
    now: datetime.datetime,
    lifetime: datetime.timedelta = LEAF_LIFETIME,
) -> x509.Certificate:
    """Sign a leaf for `identity` with the CSR's key, if the CSR asks for exactly it."""
    try:
        csr = x509.load_der_x509_csr(csr_der)
    except ValueError:
        raise CertifyError("the CSR is not a DER-encoded PKCS#10 request") from None
    try:
        valid = csr.is_signature_valid
    except (InvalidSignature, ValueError):
        valid = False
    if not valid:
        raise CertifyError("the CSR's signature does not verify")
    _check_key(csr)
    dns, uris = _requested_names(csr)
    if dns != [identity]:
        raise CertifyError(f"the CSR must name exactly {identity!r} as its DNS SAN, not {dns}")
    if any(uri != spiffe for uri in uris):
        raise CertifyError(f"the CSR may only name {spiffe!r} as a URI SAN, not {uris}")
    not_after = min(now + lifetime, issuer.cert.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        # No CN: an identity may exceed its 64 characters. The SAN names the workload and
        # so must be critical (RFC 5280 4.2.1.6, empty subject).
        .subject_name(x509.Name([]))
        .issuer_name(issuer.cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(identity), x509.UniformResourceIdentifier(spiffe)]
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), False
        )
        .sign(issuer.key, hashes.SHA256())
    )
