"""What the proxy proves itself with: its leaf, chain and key; and whom it trusts.

Python's ssl module loads certificates only from files, so the PEM goes to an anonymous
memory file (memfd) read through /proc/self/fd: the key never touches a disk.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

# What a meshed connection carries, named by ALPN so that the inbound proxy skips
# detection: HTTP/2 (HTTP/1 is upgraded to it between proxies), HTTP/1 where it cannot
# be (Upgrade, WebSocket), or opaque bytes.
ALPN_H2 = "h2"
ALPN_HTTP1 = "http/1.1"
ALPN_OPAQUE = "weft.opaque"
ALPN = (ALPN_H2, ALPN_HTTP1, ALPN_OPAQUE)


@dataclass(frozen=True)
class Credentials:
    identity: str
    key: ec.EllipticCurvePrivateKey
    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    trust_roots_pem: bytes

    @property
    def not_after(self) -> float:
        return self.leaf.not_valid_after_utc.timestamp()

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def certificates_pem(self) -> bytes:
        """The leaf, then the chain up to (not including) the trust roots."""
        pem = serialization.Encoding.PEM
        return b"".join(cert.public_bytes(pem) for cert in (self.leaf, *self.chain))

    def _chain_pem(self) -> bytes:
        return self.certificates_pem() + self.key_pem()

    def _load(self, context: ssl.SSLContext, alpn: tuple[str, ...]) -> ssl.SSLContext:
        fd = os.memfd_create("weft-identity", os.MFD_CLOEXEC)
        try:
            os.write(fd, self._chain_pem())
            context.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        context.load_verify_locations(cadata=self.trust_roots_pem.decode())
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(list(alpn))
        return context

    def server_context(
        self, alpn: tuple[str, ...] = ALPN, client: ssl.VerifyMode = ssl.CERT_OPTIONAL
    ) -> ssl.SSLContext:
        """Terminates meshed TLS: presents our identity, learns the client's if it has one
        (or, CERT_REQUIRED, refuses a client without one: the tap port)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.verify_mode = client
        return self._load(context, alpn)

    def client_context(self, alpn: str = ALPN_H2) -> ssl.SSLContext:
        """Originates meshed TLS carrying `alpn`: the peer must prove the identity
        discovery names (`server_hostname=<identity>`, checked against its DNS SAN)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = True
        context.verify_mode = ssl.CERT_REQUIRED
        return self._load(context, (alpn,))


@dataclass(frozen=True)
class MeshTls:
    """The TLS contexts of one set of credentials, built once per renewal: connections
    opened since use them, those already open keep theirs."""

    identity: str
    server: ssl.SSLContext
    clients: dict[str, ssl.SSLContext]  # by ALPN protocol

    @classmethod
    def of(cls, credentials: Credentials) -> MeshTls:
        clients = {alpn: credentials.client_context(alpn) for alpn in ALPN}
        return cls(credentials.identity, credentials.server_context(), clients)


def peer_identity(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> str | None:
    """The DNS SAN of a verified peer certificate (the client identity inbound)."""
    cert = ssl_object.getpeercert()
    if not cert:
        return None
    for entry in cert.get("subjectAltName", ()):
        if entry[0] == "DNS":
            return str(entry[1])
    return None
