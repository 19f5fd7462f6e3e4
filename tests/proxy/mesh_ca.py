"""A mesh CA for socket tests: the operator's own CA code issues the proxies' leaves,
without the identity service (tests/identity covers that path on the cluster)."""

from __future__ import annotations

import datetime

from cryptography.hazmat.primitives import serialization

from weft_api.csr import certificate_request, new_key
from weft_api.identity import identity_name, spiffe_id
from weft_api.mesh_ca import KeyPair, issue_leaf, new_issuer, new_trust_anchor
from weft_proxy.identity.credentials import Credentials

DOMAIN = "cluster.local"


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class MeshCa:
    """A trust anchor and its issuer; `credentials` is what the identity service would
    hand a proxy of that service account."""

    def __init__(self) -> None:
        self.anchor = new_trust_anchor(DOMAIN, now())
        self.issuer: KeyPair = new_issuer(self.anchor, DOMAIN, now())

    @property
    def root_pem(self) -> bytes:
        return self.anchor.cert.public_bytes(serialization.Encoding.PEM)

    def credentials(
        self, account: str, namespace: str = "shop", trust_roots_pem: bytes | None = None
    ) -> Credentials:
        key = new_key()
        identity = identity_name(account, namespace)
        spiffe = spiffe_id(account, namespace)
        csr = certificate_request(key, identity, spiffe)
        leaf = issue_leaf(self.issuer, csr, identity, spiffe, now())
        roots = trust_roots_pem if trust_roots_pem is not None else self.root_pem
        der = serialization.Encoding.DER
        return Credentials(
            identity,
            KeyPair(leaf, key).key_pem(),
            leaf.public_bytes(der),
            (self.issuer.cert.public_bytes(der),),
            roots,
            leaf.not_valid_after_utc.timestamp(),
        )
