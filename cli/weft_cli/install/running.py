"""The identity of the mesh already running, for `weft upgrade`: its trust roots
(ConfigMap weft-identity-trust-roots) and issuer (Secret weft-identity-issuer), as the
operator's issuer store keeps them. An upgrade renders these, so re-applying the
manifests never replaces the anchors that running proxies trust.

`identity_of` is pure (the objects as the API returns them); `read` fetches them.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from typing import Any

from weft_api.mesh import ISSUER_SECRET, TRUST_ROOTS, TRUST_ROOTS_KEY
from weft_cli.errors import CliError
from weft_cli.install import identity
from weft_cli.install.identity import MeshIdentity
from weft_cli.kube import Kube, KubeOptions

# cert-manager names the Certificate that writes a Secret: such an issuer stays its.
CERT_MANAGER_ANNOTATION = "cert-manager.io/certificate-name"


def _field(secret: dict[str, Any], key: str, where: str) -> str:
    encoded = (secret.get("data") or {}).get(key)
    if not encoded:
        raise CliError(f"{where} has no {key}: it is not an issuer Secret Weft can keep")
    try:
        return base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise CliError(f"{where}: {key} is not base64-encoded PEM") from None


def identity_of(
    secret: dict[str, Any], trust_roots: dict[str, Any] | None, now: datetime.datetime
) -> MeshIdentity:
    """The running identity, checked as given PEMs are. The ConfigMap's bundle wins over
    the Secret's ca.crt: during a rotation it holds the old anchors beside the new."""
    meta = secret.get("metadata") or {}
    where = f"Secret {meta.get('namespace', '')}/{meta.get('name', ISSUER_SECRET)}"
    crt, key = _field(secret, "tls.crt", where), _field(secret, "tls.key", where)
    anchors = ((trust_roots or {}).get("data") or {}).get(TRUST_ROOTS_KEY) or _field(
        secret, "ca.crt", where
    )
    kept = identity.given(anchors, crt, key, now)
    if CERT_MANAGER_ANNOTATION in (meta.get("annotations") or {}):
        return identity.external(kept.trust_anchors_pem)
    return kept


async def read(
    options: KubeOptions, namespace: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The issuer Secret and the trust roots ConfigMap; a mesh without them is an error
    that says what to run instead."""
    async with await Kube.connect(options) as kube:
        secret = await kube.get_or_none(f"/api/v1/namespaces/{namespace}/secrets/{ISSUER_SECRET}")
        roots = await kube.get_or_none(f"/api/v1/namespaces/{namespace}/configmaps/{TRUST_ROOTS}")
    if secret is None:
        raise CliError(
            f"no Weft identity to keep: the Secret {namespace}/{ISSUER_SECRET} does not exist "
            f"(is Weft installed in namespace {namespace}? install it with "
            "`weft install | kubectl apply -f -`)"
        )
    return secret, roots
