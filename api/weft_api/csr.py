"""A fresh key and the CSR that asks for exactly this proxy's identity."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def certificate_request(key: ec.EllipticCurvePrivateKey, identity: str, spiffe: str) -> bytes:
    """DER PKCS#10 with the identity as the one DNS SAN and the SPIFFE ID as URI SAN."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))  # identities may exceed a CN's 64 characters
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(identity), x509.UniformResourceIdentifier(spiffe)]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.DER)
