"""What the proxy proves itself with: its leaf, chain and key; and whom it trusts.

Held as bytes (DER certificates, a PEM key) for the ssl module, which is all the
long-lived proxy needs of them: `cryptography` (about 9 MiB of RSS, issue 15) is loaded
only by the short-lived process that makes the key and CSR (identity/keygen.py).
Python's ssl module loads certificates only from files, so the PEM goes to an anonymous
memory file (memfd) read through /proc/self/fd: the key never touches a disk.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass

# What a meshed connection carries, named by ALPN so that the inbound proxy skips
# detection: HTTP/2, HTTP/1 (carried as the client sent it), or opaque bytes.
ALPN_H2 = "h2"
ALPN_HTTP1 = "http/1.1"
ALPN_OPAQUE = "weft.opaque"
ALPN = (ALPN_H2, ALPN_HTTP1, ALPN_OPAQUE)


@dataclass(frozen=True)
class Credentials:
    identity: str
    key_pem: bytes  # PKCS#8
    leaf_der: bytes
    chain_der: tuple[bytes, ...]  # the leaf's issuer first
    trust_roots_pem: bytes
    not_after: float  # the leaf's expiry, seconds since the epoch

    def certificates_pem(self) -> bytes:
        """The leaf, then the chain up to (not including) the trust roots."""
        ders = (self.leaf_der, *self.chain_der)
        return "".join(map(ssl.DER_cert_to_PEM_cert, ders)).encode()

    def _chain_pem(self) -> bytes:
        return self.certificates_pem() + self.key_pem

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
