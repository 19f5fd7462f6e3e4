"""Obtain this proxy's leaf from the identity service and renew it at ~70% of its life,
serving with the old one until the new one arrives.

The channel to the identity service is TLS, verified against the trust roots (the
service presents a leaf of the mesh issuer, for `server_identity`), so the
ServiceAccount token is never sent to anyone else. gRPC is grpclib's (on h2), as for
the config stream.

No `cryptography` here (issue 15: the proxy's RSS): the key and CSR come from a child
process (keygen.py); OpenSSL, loading the leaf with the key, refuses a leaf for another
key; the renewal is timed by the response's `valid_until`, as linkerd2-proxy does.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Callable
from pathlib import Path

from grpclib.client import Channel
from grpclib.config import Configuration
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError
from prometheus_client import CollectorRegistry, Gauge

from weft_api.proto import identity_grpc, identity_pb2
from weft_proxy.config_client.client import split_address
from weft_proxy.identity.credentials import ALPN_H2, Credentials
from weft_proxy.identity.keygen import KeyAndCsr, KeygenFailed, new_key_and_csr

log = logging.getLogger(__name__)
RENEW_AT = 0.7
RETRY_MIN_S = 1.0
RETRY_MAX_S = 30.0
CALL_TIMEOUT_S = 10.0


class CertifyFailed(Exception):
    pass


class Certifier:
    def __init__(
        self,
        *,
        identity: str,
        spiffe: str,
        token_path: Path,
        address: str,
        server_identity: str,
        trust_roots_pem: bytes,
        registry: CollectorRegistry,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.identity = identity
        self.spiffe = spiffe
        self.token_path = token_path
        self.address = address
        self.server_identity = server_identity
        self.trust_roots_pem = trust_roots_pem
        self.clock = clock
        self.credentials: Credentials | None = None
        self.on_rotate: list[Callable[[Credentials], None]] = []
        self.host, self.port = split_address(address)
        self._obtained = asyncio.Event()
        self._client: tuple[Credentials, ssl.SSLContext] | None = None
        # The key and CSR of the leaf being asked for: retries reuse them (each one
        # made costs a child process), the next renewal makes new ones.
        self._asking: KeyAndCsr | None = None
        # Linkerd's names; a Gauge for the count keeps the exact name (a Counter adds _total).
        self._expiry = Gauge(
            "identity_cert_expiration_timestamp_seconds",
            "When the proxy's current certificate expires",
            registry=registry,
        )
        self._refreshes = Gauge(
            "identity_cert_refresh_count", "Certificates obtained", registry=registry
        )

    async def certify(self) -> Credentials:
        if self._asking is None:
            try:
                self._asking = await new_key_and_csr(self.identity, self.spiffe)
            except KeygenFailed as error:
                raise CertifyFailed(str(error)) from None
        made = self._asking
        request = identity_pb2.CertifyRequest(
            identity=self.identity,
            token=self.token_path.read_text().strip(),
            certificate_signing_request=made.csr_der,
        )
        config = Configuration(ssl_target_name_override=self.server_identity)
        try:
            async with Channel(self.host, self.port, ssl=self._tls(), config=config) as channel:
                stub = identity_grpc.IdentityStub(channel)
                response = await stub.Certify(request, timeout=CALL_TIMEOUT_S)
        except GRPCError as error:
            raise CertifyFailed(f"{error.status.name}: {error.message}") from None
        except (StreamTerminatedError, ProtocolError, TimeoutError) as error:
            raise CertifyFailed(f"{type(error).__name__}: {error}") from None
        if response.valid_until <= self.clock():
            raise CertifyFailed(
                f"the identity service returned a leaf valid until {response.valid_until}"
            )
        roots = response.trust_anchors_pem.encode() or self.trust_roots_pem
        credentials = Credentials(
            self.identity,
            made.key_pem,
            response.leaf_certificate,
            tuple(response.intermediate_certificates),
            roots,
            float(response.valid_until),
        )
        try:  # OpenSSL checks the leaf is a certificate, and for our key
            credentials.client_context()
        except ssl.SSLError as error:
            raise CertifyFailed(
                f"the identity service returned an unusable leaf: {error}"
            ) from None
        self.trust_roots_pem = roots  # a rotation reaches us at renewal
        self._asking = None
        return credentials

    async def current(self) -> Credentials:
        """The current credentials, waiting for the first ones."""
        await self._obtained.wait()
        assert self.credentials is not None
        return self.credentials

    def _tls(self) -> ssl.SSLContext:
        """Verifies the identity service against the trust roots; presents nothing."""
        context = ssl.create_default_context(cadata=self.trust_roots_pem.decode())
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols([ALPN_H2])
        return context

    async def client_context(self) -> ssl.SSLContext:
        """A client TLS context of the current leaf (mTLS to the config server), waiting
        for the first leaf. A connection keeps the context it opened with, so a renewal
        reaches the next connection; the ones open keep theirs."""
        credentials = await self.current()
        if self._client is None or self._client[0] is not credentials:
            self._client = (credentials, credentials.client_context(ALPN_H2))
        return self._client[1]

    def _renew_in(self, credentials: Credentials, obtained_at: float) -> float:
        """At RENEW_AT of the life left when the leaf arrived (a leaf is fresh then)."""
        return max(0.0, RENEW_AT * (credentials.not_after - obtained_at))

    def _install(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self._expiry.set(credentials.not_after)
        self._refreshes.inc()
        self._obtained.set()
        for callback in self.on_rotate:
            callback(credentials)

    async def run(self, ready: asyncio.Event | None = None) -> None:
        """Forever: certify, then renew before expiry; failures retry with backoff."""
        retry = RETRY_MIN_S
        while True:
            try:
                credentials = await self.certify()
                obtained_at = self.clock()
                self._install(credentials)
            except (CertifyFailed, OSError) as error:
                log.warning("certify failed (retry in %.0fs): %s", retry, error)
                await asyncio.sleep(retry * random.uniform(0.5, 1.0))
                retry = min(retry * 2, RETRY_MAX_S)
                continue
            retry = RETRY_MIN_S
            if ready is not None:
                ready.set()
            await asyncio.sleep(self._renew_in(credentials, obtained_at))
