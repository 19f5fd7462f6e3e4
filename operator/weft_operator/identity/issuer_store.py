"""The mesh issuer, kept in a Secret of Weft's namespace; the trust roots, in a ConfigMap
that proxies and `weft check` may read.

When allowed, the first operator to start generates them: a trust anchor that signs the
issuer and whose key is then dropped (a new anchor needs a new issuer: rotation is an
explicit act), so the only CA key in the cluster is the issuer's.
"""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass

from kubernetes_asyncio import client
from kubernetes_asyncio.client.api_client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException

from weft_api.mesh import ISSUER_SECRET, TRUST_ROOTS, TRUST_ROOTS_KEY
from weft_api.mesh_ca import KeyPair, new_issuer, new_trust_anchor


class IssuerMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class MeshCA:
    issuer: KeyPair
    trust_roots_pem: bytes


def _decode(secret: client.V1Secret, key: str) -> bytes:
    return base64.b64decode(secret.data[key])


async def _read(core: client.CoreV1Api, namespace: str) -> MeshCA | None:
    try:
        secret = await core.read_namespaced_secret(ISSUER_SECRET, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    issuer = KeyPair.from_pem(_decode(secret, "tls.crt"), _decode(secret, "tls.key"))
    return MeshCA(issuer, _decode(secret, "ca.crt"))


async def load_or_create(
    api: ApiClient, namespace: str, trust_domain: str, generate: bool
) -> MeshCA:
    core = client.CoreV1Api(api)
    found = await _read(core, namespace)
    if found is not None:
        return found
    if not generate:
        raise IssuerMissing(
            f"no Secret {namespace}/{ISSUER_SECRET}: create it with `weft install`, or let "
            "the operator generate one (--generate-identity)"
        )
    now = datetime.datetime.now(datetime.UTC)
    anchor = new_trust_anchor(trust_domain, now)
    issuer = new_issuer(anchor, trust_domain, now)
    roots = anchor.cert_pem()
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name=ISSUER_SECRET),
        type="kubernetes.io/tls",
        string_data={
            "tls.crt": issuer.cert_pem().decode(),
            "tls.key": issuer.key_pem().decode(),
            "ca.crt": roots.decode(),
        },
    )
    try:
        await core.create_namespaced_secret(namespace, secret)
    except ApiException as error:
        if error.status != 409:
            raise
        raced = await _read(core, namespace)  # another replica created it first: use theirs
        assert raced is not None
        return raced
    roots_map = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=TRUST_ROOTS), data={TRUST_ROOTS_KEY: roots.decode()}
    )
    try:
        await core.create_namespaced_config_map(namespace, roots_map)
    except ApiException as error:
        if error.status != 409:
            raise
    return MeshCA(issuer, roots)
