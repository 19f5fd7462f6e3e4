"""The mesh identity an install ships: trust anchors and an issuer they sign.

Generated with the operator's own CA code unless the user gives all three PEMs
(`identity.trustAnchorsPEM`, `identity.issuer.crt`, `identity.issuer.key`), or the
anchors alone with `identity.issuer.external` (the issuer Secret is someone else's:
cert-manager's), or `weft upgrade` reads the running mesh's (`kept`). Given ones are
checked, so a mismatch fails here rather than in every proxy's handshake.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from weft_api.mesh_ca import KeyPair, new_issuer, new_trust_anchor
from weft_cli import certificates
from weft_cli.errors import CliError

ISSUER_KEYS = ("identity.trustAnchorsPEM", "identity.issuer.crt", "identity.issuer.key")


@dataclass(frozen=True)
class MeshIdentity:
    trust_anchors_pem: str
    issuer_crt_pem: str
    issuer_key_pem: str
    generated: bool
    external: bool = False  # the issuer Secret is not rendered: its owner writes it


def generate(trust_domain: str, now: datetime.datetime) -> MeshIdentity:
    """A new anchor signs a new issuer; the anchor's key is dropped right away."""
    anchor = new_trust_anchor(trust_domain, now)
    issuer = new_issuer(anchor, trust_domain, now)
    return MeshIdentity(
        anchor.cert_pem().decode(), issuer.cert_pem().decode(), issuer.key_pem().decode(), True
    )


def given(anchors_pem: str, crt_pem: str, key_pem: str, now: datetime.datetime) -> MeshIdentity:
    anchors = certificates.load(anchors_pem)
    if not anchors:
        raise CliError("identity.trustAnchorsPEM holds no PEM certificate")
    try:
        issuer = KeyPair.from_pem(crt_pem.encode(), key_pem.encode())
    except ValueError as error:
        raise CliError(f"identity.issuer.crt / .key do not load: {error}") from None
    if issuer.cert.public_key() != issuer.key.public_key():
        raise CliError("identity.issuer.key is not the key of identity.issuer.crt")
    try:
        is_ca = issuer.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise CliError("identity.issuer.crt is not a CA certificate (basicConstraints ca=true)")
    if not certificates.signed_by_one_of(issuer.cert, anchors):
        raise CliError("identity.issuer.crt is not signed by any of identity.trustAnchorsPEM")
    if issuer.cert.not_valid_after_utc <= now:
        raise CliError(f"identity.issuer.crt expired on {certificates.day(issuer.cert)}")
    return MeshIdentity(anchors_pem, crt_pem, key_pem, False)


def external(anchors_pem: str) -> MeshIdentity:
    if not certificates.load(anchors_pem):
        raise CliError(
            "identity.issuer.external=true needs identity.trustAnchorsPEM: the anchors "
            "that signed the external issuer"
        )
    return MeshIdentity(anchors_pem, "", "", generated=False, external=True)


def given_in_values(values: dict[str, Any]) -> bool:
    identity = values["identity"]
    pems = (identity["trustAnchorsPEM"], identity["issuer"]["crt"], identity["issuer"]["key"])
    return any(pems) or bool(identity["issuer"]["external"])


def from_values(values: dict[str, Any], now: datetime.datetime) -> MeshIdentity:
    identity = values["identity"]
    pems = (identity["trustAnchorsPEM"], identity["issuer"]["crt"], identity["issuer"]["key"])
    if identity["issuer"]["external"]:
        if pems[1] or pems[2]:
            raise CliError(
                "identity.issuer.external=true: the issuer's crt and key live in its "
                "Secret, not in values; give identity.trustAnchorsPEM only"
            )
        return external(pems[0])
    if not any(pems):
        return generate(identity["trustDomain"], now)
    if not all(pems):
        missing = [key for key, pem in zip(ISSUER_KEYS, pems, strict=True) if not pem]
        raise CliError(
            f"give all of {', '.join(ISSUER_KEYS)} or none; missing {', '.join(missing)}"
        )
    return given(*pems, now)
