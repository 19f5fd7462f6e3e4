"""The Certify RPC: a proven ServiceAccount token and a CSR in, a short-lived leaf out."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import Protocol

import grpc
from cryptography.hazmat.primitives import serialization
from prometheus_client import Counter

from weft_api.identity import identity_name, spiffe_id
from weft_api.mesh_ca import LEAF_LIFETIME, CertifyError, KeyPair, issue_leaf
from weft_api.proto import identity_pb2, identity_pb2_grpc
from weft_operator.identity.tokens import ServiceAccountRef, TokenRejected

log = logging.getLogger(__name__)
CERTIFICATES = Counter("weft_identity_certify_total", "Certify calls, by outcome", ["outcome"])


class Reviewer(Protocol):
    async def review(self, token: str) -> ServiceAccountRef: ...


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class IdentityService(identity_pb2_grpc.IdentityServicer):
    def __init__(
        self,
        issuer: KeyPair,
        trust_domain: str,
        reviewer: Reviewer,
        clock: Callable[[], datetime.datetime] = _now,
        lifetime: datetime.timedelta = LEAF_LIFETIME,
        trust_roots_pem: bytes = b"",
    ) -> None:
        self.lifetime = lifetime
        self.trust_roots_pem = trust_roots_pem
        self.issuer = issuer
        self.trust_domain = trust_domain
        self.reviewer = reviewer
        self.clock = clock

    async def Certify(
        self,
        request: identity_pb2.CertifyRequest,
        context: grpc.aio.ServicerContext[
            identity_pb2.CertifyRequest, identity_pb2.CertifyResponse
        ],
    ) -> identity_pb2.CertifyResponse:
        try:
            account = await self.reviewer.review(request.token)
        except TokenRejected as error:
            CERTIFICATES.labels(outcome="unauthenticated").inc()
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"token rejected: {error}")
        proven = identity_name(account.name, account.namespace, self.trust_domain)
        if request.identity != proven:
            CERTIFICATES.labels(outcome="denied").inc()
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"the token proves {proven!r}, not {request.identity!r}",
            )
        spiffe = spiffe_id(account.name, account.namespace, self.trust_domain)
        try:
            leaf = issue_leaf(
                self.issuer,
                request.certificate_signing_request,
                proven,
                spiffe,
                self.clock(),
                self.lifetime,
            )
        except CertifyError as error:
            CERTIFICATES.labels(outcome="invalid").inc()
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        CERTIFICATES.labels(outcome="issued").inc()
        log.info("issued a certificate for %s until %s", proven, leaf.not_valid_after_utc)
        der = serialization.Encoding.DER
        return identity_pb2.CertifyResponse(
            leaf_certificate=leaf.public_bytes(der),
            intermediate_certificates=[self.issuer.cert.public_bytes(der)],
            valid_until=int(leaf.not_valid_after_utc.timestamp()),
            trust_anchors_pem=self.trust_roots_pem.decode(),
        )
